//! Logging values that come from a request.
//!
//! A value logged as is (`tracing::info!(kind = %value)`) lets its sender write a newline and
//! a fake log line, or terminal escape sequences, into the log. [`escaped`] writes control
//! characters as escapes instead; everything else is written unchanged.
//!
//! ```
//! let line = format!("event_type={}", rebuff_axum::log::escaped("ping\n2026 ERROR forged\u{1b}[31m"));
//! assert_eq!(line, r"event_type=ping\n2026 ERROR forged\u{1b}[31m");
//! ```

use std::fmt;

/// `value` for a log line: control characters (C0, DEL, C1) escaped as Rust writes them
/// (`\n`, `\u{1b}`), the rest unchanged. Formats lazily: no allocation.
pub fn escaped(value: &str) -> Escaped<'_> {
    Escaped(value)
}

/// See [`escaped`].
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(char::is_control) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            write!(f, "{}", c.escape_default())?;
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_nothing_else() {
        let e = |s: &str| escaped(s).to_string();
        assert_eq!(e("plain é ✓ \"quoted\""), "plain é ✓ \"quoted\"");
        assert_eq!(e("a\nb\r\tc"), r"a\nb\r\tc");
        assert_eq!(e("\u{1b}[31mred\u{7f}\u{85}"), r"\u{1b}[31mred\u{7f}\u{85}");
        assert!(!e("\u{0}\u{1f}").chars().any(char::is_control));
    }
}
