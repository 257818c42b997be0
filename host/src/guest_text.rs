//! Text a guest controls (log lines, stdout and stderr, error and panic messages), made safe to
//! keep and to print.
//!
//! Two rules, applied wherever such text leaves the sandbox:
//! - **escaped**: control characters (newlines, carriage returns, terminal escapes, …), Unicode
//!   line separators and bidirectional overrides are written as `\n`, `\u{1b}`, … so no guest
//!   text can start a forged line in a server log or restyle an operator's terminal;
//! - **bounded**: text is cut to a byte budget (on a character boundary, counting the escaped
//!   form) with a visible marker, so a guest cannot make the host keep, log or answer with more
//!   than it allows.

use std::fmt::Write as _;

/// Longest error text of a plugin (its `plugin-error` message, a panic line, a trap) kept in a
/// call's error, in bytes, marker included. The error reaches API answers, logs and the circuit
/// breaker's recent failures, so it is held to a few KiB whatever the plugin returned.
pub const MAX_ERROR_TEXT_BYTES: usize = 4096;

/// What ends text cut by [`escape_within`].
const ELLIPSIS: &str = "…";

/// `text` escaped (see the module notes) and cut to at most `max` bytes, ending in `…` when
/// cut; and whether it was cut. Stops reading `text` at the budget, so a huge input costs no
/// more than `max`.
pub fn escape_within(text: &str, max: usize) -> (String, bool) {
    let mut kept = String::with_capacity(text.len().min(max));
    let mut escaped = String::new();
    // Room for the ellipsis is only needed if the text does not fit: track the last cut
    // point that would leave it.
    let room = max.saturating_sub(ELLIPSIS.len());
    let mut cut_at = None;
    for c in text.chars() {
        escaped.clear();
        push_escaped(&mut escaped, c);
        if kept.len() + escaped.len() > room && cut_at.is_none() {
            cut_at = Some(kept.len());
        }
        if kept.len() + escaped.len() > max {
            kept.truncate(cut_at.unwrap_or(kept.len()));
            if kept.len() + ELLIPSIS.len() <= max {
                kept.push_str(ELLIPSIS);
            }
            return (kept, true);
        }
        kept.push_str(&escaped);
    }
    (kept, false)
}

/// `text` with its control characters escaped, whole.
pub fn escape(text: &str) -> String {
    escape_within(text, usize::MAX).0
}

/// A guest's error text as a call's error keeps it: escaped, and past
/// [`MAX_ERROR_TEXT_BYTES`] cut with a marker naming the original size, e.g.
/// `xxxx… [cut: 8388608 bytes in all]`.
pub fn bounded_error(text: &str) -> String {
    if text.len() <= MAX_ERROR_TEXT_BYTES && !text.chars().any(needs_escape) {
        return text.to_owned();
    }
    let marker = format!(" [cut: {} bytes in all]", text.len());
    let (mut kept, cut) = escape_within(text, MAX_ERROR_TEXT_BYTES.saturating_sub(marker.len()));
    if cut {
        kept.push_str(&marker);
    }
    kept
}

/// Whether `c` is written escaped.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Line and paragraph separators.
            '\u{2028}' | '\u{2029}'
            // Bidirectional marks, embeddings, overrides and isolates.
            | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    if !needs_escape(c) {
        out.push(c);
        return;
    }
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        other => {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(other));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_separators_and_bidi_overrides_are_escaped() {
        assert_eq!(
            escape("a\nb\r\tc\u{1b}[31md\u{7f}\u{85}\u{2028}\u{202e}é✓"),
            "a\\nb\\r\\tc\\u{1b}[31md\\u{7f}\\u{85}\\u{2028}\\u{202e}é✓"
        );
        assert_eq!(
            escape("plain text, même accentué"),
            "plain text, même accentué"
        );
    }

    #[test]
    fn cutting_respects_the_budget_and_character_boundaries() {
        assert_eq!(escape_within("short", 5), ("short".to_owned(), false));
        let (cut, was_cut) = escape_within("abcdef", 5);
        assert!(was_cut);
        assert_eq!(cut, "ab…");
        // Multi-byte characters are never split; the escaped form counts.
        let (cut, _) = escape_within("éééééé", 7);
        assert_eq!(cut, "éé…");
        assert!(cut.len() <= 7);
        let (cut, _) = escape_within("\n\n\n\n\n", 6);
        assert_eq!(cut, "\\n…");
        // A budget too small for the ellipsis keeps nothing.
        assert_eq!(escape_within("abcdef", 2), (String::new(), true));
    }

    #[test]
    fn error_text_is_capped_with_the_original_size() {
        let huge = "x".repeat(8 << 20);
        let kept = bounded_error(&huge);
        assert!(kept.len() <= MAX_ERROR_TEXT_BYTES, "{}", kept.len());
        assert!(kept.ends_with("… [cut: 8388608 bytes in all]"), "{kept}");
        assert_eq!(bounded_error("fine"), "fine");
        assert_eq!(bounded_error("two\nlines"), "two\\nlines");
    }
}
