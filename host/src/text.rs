//! Text made safe for where it goes: log lines (no control characters, no
//! forged lines) and HTML (escaped).

use std::fmt::Write as _;

/// The longest line we log from a guest; the rest is cut.
pub const MAX_LINE: usize = 4096;

/// Escapes control characters (terminal escapes, CR, LF, NUL, C1 controls)
/// and cuts the line at `MAX_LINE` bytes.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_LINE));
    for c in text.chars() {
        if out.len() >= MAX_LINE {
            out.push('…');
            break;
        }
        if c.is_control() && c != '\t' {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// An error and every error under it, `: `-separated: what a person reads
/// (our errors keep their underlying error as `source`, not in their text).
pub fn report(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let _ = write!(text, ": {e}");
        source = e.source();
    }
    text
}

/// Escapes `<`, `>`, `&`, `"` and `'` for HTML text and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn escapes_terminal_sequences_and_newlines() {
        assert_eq!(sanitize("\x1b[31mred\x1b[0m"), "\\u{1b}[31mred\\u{1b}[0m");
        assert_eq!(sanitize("a\r\nb\0"), "a\\r\\nb\\u{0}");
        assert_eq!(sanitize("tab\tok é"), "tab\tok é");
    }

    #[test]
    fn cuts_long_lines() {
        let long = "x".repeat(10_000);
        assert!(sanitize(&long).len() < 4100);
    }
}
