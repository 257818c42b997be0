//! A failure's signature: what makes failures of a plugin "the same" across tenants, and a
//! message template that names no tenant data.
//!
//! The template keeps the error's first line with the variable parts replaced: numbers by `#`,
//! quoted text (in any quotes) by `"…"`, e-mail addresses by `<email>`, long hexadecimal and id-like words by
//! `<id>`, and the tenant's own id by `<tenant>`. A trap's first wasm frame (`N: 0x… - name`)
//! is kept as its function name, since that is where developers look first. The signature is
//! the error code and the template.

use sha2::{Digest as _, Sha256};

/// The longest template kept, in characters.
const MAX_TEMPLATE_CHARS: usize = 200;

/// The signature and template of a failure with `code` and `message`, for `tenant`.
pub(crate) fn of(code: &str, message: &str, tenant: &str) -> (String, String) {
    let mut template = template(first_line(message), tenant);
    if let Some(frame) = first_frame(message) {
        template.push_str(" at ");
        template.push_str(&frame);
    }
    let digest = Sha256::digest(format!("{code}\n{template}").as_bytes());
    (hex::encode(&digest[..12]), template)
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or_default()
}

/// The function name of the first wasm backtrace frame, e.g. `my_plugin::handle`.
fn first_frame(message: &str) -> Option<String> {
    message.lines().skip(1).find_map(|line| {
        let (_, name) = line.split_once(" - ")?;
        let name = name.trim();
        (!name.is_empty()).then(|| name.chars().take(MAX_TEMPLATE_CHARS / 2).collect())
    })
}

/// `line` with its variable parts replaced (see the module's documentation).
fn template(line: &str, tenant: &str) -> String {
    let line = if tenant.is_empty() {
        line.to_owned()
    } else {
        line.replace(tenant, "<tenant>")
    };
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if out.chars().count() >= MAX_TEMPLATE_CHARS {
            out.push('…');
            break;
        }
        // An apostrophe inside a word (`can't`) quotes nothing.
        let opens_quote = match c {
            '"' | '`' => true,
            '\'' => !out.ends_with(|p: char| p.is_alphanumeric()),
            _ => false,
        };
        match c {
            c if opens_quote => {
                // Quoted text, up to the closing quote (or the end), whatever the quote.
                for next in chars.by_ref() {
                    if next == c {
                        break;
                    }
                }
                out.push_str("\"…\"");
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '@' => {
                let mut word = String::from(c);
                while let Some(&next) = chars.peek() {
                    if next.is_alphanumeric() || "_-.@+".contains(next) {
                        word.push(next);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push_str(&word_template(&word));
            }
            c => out.push(c),
        }
    }
    out
}

/// One word of a message: itself, or the placeholder of what varies.
fn word_template(word: &str) -> String {
    let trimmed = word.trim_end_matches('.');
    let tail = &word[trimmed.len()..];
    let kind = if trimmed.contains('@') && trimmed.contains('.') {
        Some("<email>")
    } else if trimmed
        .chars()
        .all(|c| c.is_ascii_digit() || "._-+".contains(c))
        && trimmed.chars().any(|c| c.is_ascii_digit())
    {
        Some("#")
    } else if trimmed.len() >= 8
        && trimmed.chars().filter(char::is_ascii_digit).count() * 3 >= trimmed.len()
    {
        // Hex digests, UUIDs and other ids: at least a third digits.
        Some("<id>")
    } else {
        None
    };
    match kind {
        Some(placeholder) => format!("{placeholder}{tail}"),
        None => word.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_parts_do_not_split_a_signature() {
        let (a, template) = of(
            "plugin",
            "order 1234 of \"Acme Ltd\" failed for ann@acme.test (tenant t-9f8e)",
            "t-9f8e",
        );
        assert_eq!(
            template,
            "order # of \"…\" failed for <email> (tenant <tenant>)"
        );
        let (b, _) = of(
            "plugin",
            "order 77 of 'Globex' failed for bo@globex.test (tenant t-0000)",
            "t-0000",
        );
        assert_eq!(a, b);
        let (other_code, _) = of("trap", "order 1 of \"x\" failed for a@b.c (tenant t)", "t");
        assert_ne!(a, other_code);
    }

    #[test]
    fn apostrophes_in_words_quote_nothing() {
        let (_, template) = of("plugin", "can't read the user's file 'a.txt'", "");
        assert_eq!(template, "can't read the user's file \"…\"");
    }

    #[test]
    fn ids_become_placeholders_and_words_stay() {
        let (_, template) = of(
            "plugin",
            "digest 3fa85f6457174562b3fc2c963f66afa6 unknown; retry later.",
            "",
        );
        assert_eq!(template, "digest <id> unknown; retry later.");
    }

    #[test]
    fn a_trap_keeps_its_first_frame() {
        let message = "wasm trap: unreachable\nwasm backtrace:\n    0: 0x1a2b - counter::handle\n    1: 0x3c - main";
        let (_, template) = of("trap", message, "");
        assert_eq!(template, "wasm trap: unreachable at counter::handle");
    }

    #[test]
    fn templates_are_bounded() {
        let long = "word ".repeat(500);
        let (_, template) = of("plugin", &long, "");
        assert!(template.chars().count() <= MAX_TEMPLATE_CHARS + 1);
    }
}
