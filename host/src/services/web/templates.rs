//! Templates: minijinja (Jinja syntax), one directory per app, rendered by
//! the host for every guest language. Autoescape is on (HTML; JSON for
//! `*.json`), as Tornado escapes every `{{ }}`. A template error names the
//! file and the line. Loaded templates are cached until [`Templates::reload`]
//! (`serve --watch` calls it when a file in the directory changes).

use std::error::Error as _;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use minijinja::{AutoEscape, Environment, Value};

/// The app's template directory and its loaded templates.
pub struct Templates {
    dir: PathBuf,
    env: ArcSwap<Environment<'static>>,
}

/// A template that could not be loaded or rendered: its file, the line (when
/// minijinja knows it) and what went wrong.
#[derive(Debug, Clone)]
pub struct TemplateError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl Templates {
    pub fn new(dir: PathBuf) -> Self {
        let env = ArcSwap::from_pointee(environment(&dir));
        Templates { dir, env }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Drops every loaded template: the next render reads the files again.
    pub fn reload(&self) {
        self.env.store(Arc::new(environment(&self.dir)));
    }

    /// Renders template `name` (a path inside the directory; `..` is refused)
    /// with `context`.
    pub fn render(&self, name: &str, context: Value) -> Result<String, TemplateError> {
        let env = self.env.load();
        env.get_template(name)
            .and_then(|template| template.render(context))
            .map_err(|e| self.error(name, &e))
    }

    fn error(&self, name: &str, e: &minijinja::Error) -> TemplateError {
        let file = self.dir.join(e.name().unwrap_or(name));
        let mut message = match e.detail() {
            Some(detail) => format!("{}: {detail}", e.kind()),
            None => e.kind().to_string(),
        };
        // An error raised inside a function or an included template carries
        // its cause underneath.
        let mut source = e.source();
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        TemplateError {
            file,
            line: e.line(),
            message,
        }
    }
}

fn environment(dir: &Path) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_loader(minijinja::path_loader(dir));
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".json") {
            AutoEscape::Json
        } else {
            AutoEscape::Html
        }
    });
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_escaped_and_names_file_and_line_on_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ok.html"), "<p>{{ name }}</p>").unwrap();
        std::fs::write(dir.path().join("bad.html"), "line one\n{% if %}\n").unwrap();
        let t = Templates::new(dir.path().to_owned());
        let out = t
            .render("ok.html", minijinja::context! { name => "<b>&" })
            .unwrap();
        assert_eq!(out, "<p>&lt;b&gt;&amp;</p>");
        let e = t.render("bad.html", Value::UNDEFINED).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.to_string().contains("bad.html:2:"), "{e}");
        assert!(t.render("../etc/passwd", Value::UNDEFINED).is_err());
    }

    #[test]
    fn reload_reads_changed_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.html");
        std::fs::write(&file, "one").unwrap();
        let t = Templates::new(dir.path().to_owned());
        assert_eq!(t.render("t.html", Value::UNDEFINED).unwrap(), "one");
        std::fs::write(&file, "two").unwrap();
        assert_eq!(t.render("t.html", Value::UNDEFINED).unwrap(), "one", "cached");
        t.reload();
        assert_eq!(t.render("t.html", Value::UNDEFINED).unwrap(), "two");
    }
}
