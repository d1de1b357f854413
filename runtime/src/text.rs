//! Text from a guest or a payload, made safe to show on a terminal.
//!
//! Trap messages carry names from a component's `name` section, and errors carry paths and
//! names from files kiln did not write: any of them can hold terminal escape sequences. Both
//! of kiln's printers (the CLI's shell and the `--exe` runner) pass what they print through
//! [`escape_controls`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every character that could steer a terminal written as a Rust-style escape
/// (`\u{1b}`): C0 and C1 control characters and DEL, except line feed and tab (which
/// multi-line messages use), and the Unicode bidirectional formatting characters that
/// reorder what is shown (the "Trojan Source" characters, CVE-2021-42574: U+061C, U+200E,
/// U+200F, U+202A–U+202E, U+2066–U+2069). Text without them is returned as it is, without a
/// copy.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(steers) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().saturating_add(16));
    for c in text.chars() {
        if steers(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn steers(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert!(matches!(
            escape_controls("plain\ttext\nline"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("\u{1b}[31mred\u{7}\r\u{9b}2J\u{7f}"),
            "\\u{1b}[31mred\\u{7}\\u{d}\\u{9b}2J\\u{7f}"
        );
        assert_eq!(
            escape_controls("a\u{202e}b\u{2066}c"),
            "a\\u{202e}b\\u{2066}c"
        );
        assert_eq!(escape_controls("ünïcödé ✓"), "ünïcödé ✓");
    }
}
