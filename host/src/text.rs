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

/// A cookie value as Tornado sends it (Python's `http.cookies` quoting):
/// as it is when every character is legal in a cookie, else in double
/// quotes with `"` and `\` escaped and `,` `;` as octal (`\054`, `\073`).
/// `None` for a value Tornado refuses (controls, space, non-ASCII) or one
/// holding `%` (which our reader would take for percent-encoding): the
/// caller percent-encodes those instead.
pub fn cookie_quote(value: &str) -> Option<String> {
    const LEGAL: &str = "!#$&'*+-.^_`|~:";
    if value.contains('%') || !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return None;
    }
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || LEGAL.contains(c))
    {
        return Some(value.to_owned());
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\054"),
            ';' => out.push_str("\\073"),
            c => out.push(c),
        }
    }
    out.push('"');
    Some(out)
}

/// A request cookie value as Tornado reads it (`_unquote_cookie`): a value
/// in double quotes loses them and its `\"`, `\\` and `\NNN` (octal) escapes.
pub fn cookie_unquote(value: &str) -> String {
    let Some(inner) = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .filter(|_| value.len() >= 2)
    else {
        return value.to_owned();
    };
    let bytes = inner.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let octal = bytes
                .get(i + 1..i + 4)
                .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
            if let Some(d) = octal {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            } else {
                out.push(bytes[i + 1]);
                i += 2;
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod cookie_tests {
    use super::*;

    #[test]
    fn quoting_round_trips_as_python_does() {
        // http.cookies: legal values as they are, others quoted.
        assert_eq!(cookie_quote("2|abcd|ef|17").as_deref(), Some("2|abcd|ef|17"));
        assert_eq!(
            cookie_quote("2|1:0|4:YWRh|sig=").as_deref(),
            Some("\"2|1:0|4:YWRh|sig=\"")
        );
        assert_eq!(cookie_quote("a\"b;c").as_deref(), Some("\"a\\\"b\\073c\""));
        assert_eq!(cookie_quote("two words"), None);
        assert_eq!(cookie_quote("100%"), None);
        for v in ["plain", "x=y", "a\"b;c,d\\e"] {
            assert_eq!(cookie_unquote(&cookie_quote(v).unwrap()), v);
        }
        assert_eq!(cookie_unquote("\""), "\"");
    }
}
