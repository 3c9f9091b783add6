//! Tornado URL specs: a regex anchored at both ends, first match wins; groups
//! are url-decoded into positional `path-args` or named `path-kwargs`.
//!
//! Which route matches is found in one pass over the path by a
//! [`RegexSet`] of every pattern (the lowest index of the matches is the
//! first route, as Tornado tries them in order); only that route's regex
//! then runs again for its groups. Trying each regex in turn cost ~0.5 µs
//! per route before the match (BENCHMARKS.md, scenario a, 200 routes).

use std::collections::HashMap;

use regex::{Regex, RegexSet};

/// One compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    pub pattern: String,
    regex: Regex,
    /// Tornado passes positional groups only when there are no named ones.
    has_named: bool,
    pub handler: String,
    pub name: Option<String>,
    /// The route's settings, passed to the handler's `initialize`.
    pub settings: Vec<(String, String)>,
}

/// The outcome of a match: which route, and its decoded groups.
#[derive(Debug)]
pub struct RouteMatch<'a> {
    pub route: &'a Route,
    pub path_args: Vec<String>,
    pub path_kwargs: Vec<(String, String)>,
}

impl Route {
    /// Compiles `pattern` anchored at both ends (Tornado appends `$` and
    /// matches from the start). The pattern is wrapped, not trimmed: its own
    /// `^`/`$` are harmless inside, and trimming broke an escaped `\$`.
    pub fn new(
        pattern: &str,
        handler: impl Into<String>,
        name: Option<String>,
        settings: Vec<(String, String)>,
    ) -> Result<Self, regex::Error> {
        let anchored = format!("^(?:{pattern})$");
        let regex = Regex::new(&anchored)?;
        Ok(Route {
            pattern: pattern.to_owned(),
            has_named: regex.capture_names().any(|name| name.is_some()),
            regex,
            handler: handler.into(),
            name,
            settings,
        })
    }
}

/// An ordered list of routes.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
    /// Every route's anchored regex, in order (`None` if the set would be
    /// too big to build: then each regex is tried in turn).
    set: Option<RegexSet>,
    by_name: HashMap<String, usize>,
}

impl Router {
    pub fn new(routes: Vec<Route>) -> Self {
        let by_name = routes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.name.clone().map(|n| (n, i)))
            .collect();
        let set = RegexSet::new(routes.iter().map(|r| r.regex.as_str())).ok();
        Router { routes, set, by_name }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The first route whose regex matches the whole path.
    pub fn find(&self, path: &str) -> Option<RouteMatch<'_>> {
        let index = match &self.set {
            Some(set) => set.matches(path).into_iter().next()?,
            None => self.routes.iter().position(|r| r.regex.is_match(path))?,
        };
        let route = &self.routes[index];
        let caps = route.regex.captures(path)?;
        let mut path_args = Vec::new();
        let mut path_kwargs = Vec::new();
        for (i, name) in route.regex.capture_names().enumerate().skip(1) {
            let value = caps.get(i).map(|m| decode(m.as_str())).unwrap_or_default();
            match name {
                Some(name) => path_kwargs.push((name.to_owned(), value)),
                // Tornado: positional args only when there are no named groups.
                None if !route.has_named => path_args.push(value),
                None => {}
            }
        }
        Some(RouteMatch {
            route,
            path_args,
            path_kwargs,
        })
    }

    /// Tornado's `reverse_url`: the route named `name` with its groups filled
    /// in order. Only simple patterns (groups not nested) can be reversed.
    pub fn reverse(&self, name: &str, args: &[&str]) -> Option<String> {
        let route = &self.routes[*self.by_name.get(name)?];
        let pattern = route.pattern.trim_start_matches('^').trim_end_matches('$');
        let mut out = String::new();
        let mut args = args.iter();
        let mut depth = 0usize;
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '(' => {
                    if depth == 0 {
                        let arg = args.next()?;
                        out.push_str(&percent_encoding::utf8_percent_encode(arg, PATH_SEGMENT).to_string());
                    }
                    depth += 1;
                }
                ')' => depth = depth.checked_sub(1)?,
                '\\' if depth == 0 => out.push(chars.next()?),
                c if depth == 0 => out.push(c),
                _ => {}
            }
        }
        Some(out)
    }
}

const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-decodes a group (Tornado's `url_unescape(..., plus=False)`).
fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(specs: &[(&str, &str)]) -> Router {
        Router::new(
            specs
                .iter()
                .map(|(p, h)| Route::new(p, *h, Some(format!("{h}-name")), vec![]).unwrap())
                .collect(),
        )
    }

    #[test]
    fn anchored_first_match_wins() {
        let r = router(&[("/a", "first"), ("/a.*", "second"), ("/a", "third")]);
        assert_eq!(r.find("/a").unwrap().route.handler, "first");
        assert_eq!(r.find("/ab").unwrap().route.handler, "second");
        assert!(r.find("/x/a").is_none());
    }

    #[test]
    fn positional_and_named_groups_are_decoded() {
        let r = router(&[
            ("/items/([0-9]+)/(.*)", "items"),
            ("/users/(?P<name>[^/]+)", "users"),
        ]);
        let m = r.find("/items/42/a%20b").unwrap();
        assert_eq!(m.path_args, ["42", "a b"]);
        let m = r.find("/users/j%C3%BCrgen").unwrap();
        assert_eq!(m.path_kwargs, [("name".to_owned(), "jürgen".to_owned())]);
        assert!(m.path_args.is_empty());
    }

    #[test]
    fn explicit_anchors_and_an_escaped_dollar() {
        let r = router(&[("^/a$", "anchored"), (r"/price\$", "dollar")]);
        assert_eq!(r.find("/a").unwrap().route.handler, "anchored");
        assert_eq!(r.find("/price$").unwrap().route.handler, "dollar");
        assert!(r.find("/price").is_none());
    }

    #[test]
    fn reverse_fills_groups() {
        let r = router(&[("/items/([0-9]+)", "items")]);
        assert_eq!(r.reverse("items-name", &["7"]).as_deref(), Some("/items/7"));
        assert_eq!(r.reverse("nope", &[]), None);
    }

    /// A big table: the set finds the first of several matches near the
    /// end, in the table's order, and its groups.
    #[test]
    fn a_table_of_200_routes_finds_the_first_match_in_order() {
        let mut specs: Vec<(String, String)> = (0..200)
            .map(|i| (format!(r"/api/v1/item{i}/(\d+)"), format!("item{i}")))
            .collect();
        specs.push((r"/api/v1/item198/(.*)".into(), "later".into()));
        let specs: Vec<(&str, &str)> = specs.iter().map(|(p, h)| (p.as_str(), h.as_str())).collect();
        let r = router(&specs);
        assert!(r.set.is_some());
        let m = r.find("/api/v1/item198/42").unwrap();
        assert_eq!(m.route.handler, "item198");
        assert_eq!(m.path_args, ["42"]);
        assert_eq!(r.find("/api/v1/item198/x").unwrap().route.handler, "later");
        assert_eq!(r.find("/api/v1/item1/7").unwrap().route.handler, "item1");
        assert!(r.find("/api/v1/item200/7").is_none());
    }
}
