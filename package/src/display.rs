//! What a reader is shown of a package: the manifest's name, description, license, categories
//! and configuration descriptions, the README and the changelog. Each is bounded, and none may
//! hide or reorder text: the manifest's fields refuse controls, bidirectional overrides and
//! isolates, zero-width and other invisible characters ([`hidden_character`]); the Markdown
//! files, which need line breaks and may join emoji, refuse the characters that reorder text
//! ([`reordering_character`]).
//!
//! These rules are checked by [`validate()`](crate::validate()) (so `plinth plugin build` shows
//! them) and by a marketplace before it stores a submission; they are not checked when a
//! package is read, so packages published before them still read.
//!
//! | field | at most |
//! |---|---|
//! | `plugin.name` | [`MAX_NAME_CHARS`] characters |
//! | `plugin.description` | [`MAX_DESCRIPTION_CHARS`] characters |
//! | `plugin.license` | [`MAX_LICENSE_CHARS`] characters |
//! | `plugin.categories` | [`MAX_CATEGORIES`] of [`MAX_CATEGORY_CHARS`] characters each |
//! | `config.<key>.description` | [`MAX_CONFIG_DESCRIPTION_CHARS`] characters |
//! | `CHANGELOG.md` | [`MAX_CHANGELOG_BYTES`] bytes |

use std::fmt;

use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

use crate::archive::{CHANGELOG_FILE, Package, README_FILE};

/// Longest `plugin.name`, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest `plugin.description`, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 300;
/// Longest `plugin.license`, in characters.
pub const MAX_LICENSE_CHARS: usize = 100;
/// Most `plugin.categories`.
pub const MAX_CATEGORIES: usize = 8;
/// Longest category, in characters.
pub const MAX_CATEGORY_CHARS: usize = 32;
/// Longest `config.<key>.description`, in characters.
pub const MAX_CONFIG_DESCRIPTION_CHARS: usize = 300;
/// Largest `CHANGELOG.md`, in bytes.
pub const MAX_CHANGELOG_BYTES: usize = 256 * 1024;

/// A field a reader is shown that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayProblem {
    /// The manifest key path (`plugin.name`) or the file name (`CHANGELOG.md`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DisplayProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Invisible characters outside the general categories [`hidden_character`] refuses: the
/// combining grapheme joiner, Hangul and Khmer fillers, and variation selectors.
const INVISIBLE: &[(char, char)] = &[
    ('\u{034F}', '\u{034F}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180F}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{E0100}', '\u{E01EF}'),
];

/// The first character of `text` a one-line display field may not hold: a control (line
/// breaks and tabs included), a format character (bidirectional overrides and isolates,
/// zero-width spaces and joiners, the byte order mark, tags), a line or paragraph separator,
/// a private-use, surrogate or unassigned code point, or another invisible character.
///
/// ```
/// use plinth_package::display::hidden_character;
/// assert_eq!(hidden_character("Slack notify ✓"), None);
/// assert_eq!(hidden_character("Slack\u{202E}yfiton"), Some('\u{202E}'));
/// assert_eq!(hidden_character("Sl\u{200B}ack"), Some('\u{200B}'));
/// ```
pub fn hidden_character(text: &str) -> Option<char> {
    text.chars().find(|&c| {
        c.general_category_group() == GeneralCategoryGroup::Other
            || matches!(
                c.general_category(),
                GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator
            )
            || INVISIBLE
                .iter()
                .any(|(first, last)| (*first..=*last).contains(&c))
    })
}

/// The first character of `text` that reorders the text around it: a bidirectional
/// embedding, override or isolate (the marks, which only settle the direction of what is next
/// to them, are left to right-to-left writing).
///
/// ```
/// use plinth_package::display::reordering_character;
/// assert_eq!(reordering_character("# Changes\n\n- 👩‍💻 faster"), None);
/// assert_eq!(reordering_character("/* \u{2067} */"), Some('\u{2067}'));
/// ```
pub fn reordering_character(text: &str) -> Option<char> {
    text.chars().find(|c| {
        matches!(
            c,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
    })
}

/// Every rule `package`'s display fields break, manifest fields first.
pub fn problems(package: &Package) -> Vec<DisplayProblem> {
    let mut found = Vec::new();
    let plugin = &package.manifest.plugin;
    let mut text = |field: String, value: &str, max: usize| {
        let chars = value.chars().count();
        let message = if chars > max {
            format!("is {chars} characters long; at most {max} are allowed")
        } else if let Some(c) = hidden_character(value) {
            format!(
                "contains the invisible or control character U+{:04X}; remove it",
                u32::from(c)
            )
        } else {
            return;
        };
        found.push(DisplayProblem { field, message });
    };
    text("plugin.name".into(), &plugin.name, MAX_NAME_CHARS);
    text(
        "plugin.description".into(),
        &plugin.description,
        MAX_DESCRIPTION_CHARS,
    );
    text("plugin.license".into(), &plugin.license, MAX_LICENSE_CHARS);
    for (i, category) in plugin.categories.iter().enumerate() {
        text(
            format!("plugin.categories[{i}]"),
            category,
            MAX_CATEGORY_CHARS,
        );
    }
    for (key, field) in &package.manifest.config {
        if let Some(description) = &field.description {
            text(
                format!("config.{key}.description"),
                description,
                MAX_CONFIG_DESCRIPTION_CHARS,
            );
        }
    }
    if plugin.categories.len() > MAX_CATEGORIES {
        found.push(DisplayProblem {
            field: "plugin.categories".into(),
            message: format!(
                "lists {} categories; at most {MAX_CATEGORIES} are allowed",
                plugin.categories.len()
            ),
        });
    }
    if let Some(changelog) = &package.changelog
        && changelog.len() > MAX_CHANGELOG_BYTES
    {
        found.push(DisplayProblem {
            field: CHANGELOG_FILE.into(),
            message: format!(
                "is {} bytes; at most {MAX_CHANGELOG_BYTES} are allowed (keep the recent changes)",
                changelog.len()
            ),
        });
    }
    for (file, content) in [
        (README_FILE, &package.readme),
        (CHANGELOG_FILE, &package.changelog),
    ] {
        if let Some(c) = content.as_deref().and_then(reordering_character) {
            found.push(DisplayProblem {
                field: file.into(),
                message: format!(
                    "contains the bidirectional control character U+{:04X}, which reorders \
                     what a reader sees; remove it",
                    u32::from(c)
                ),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_hidden_character_is_found() {
        for c in [
            '\u{0000}',
            '\n',
            '\t',
            '\u{007F}',
            '\u{0085}',
            '\u{00AD}',
            '\u{061C}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{202A}',
            '\u{202E}',
            '\u{2060}',
            '\u{2066}',
            '\u{2069}',
            '\u{2028}',
            '\u{2029}',
            '\u{FEFF}',
            '\u{E0041}',
            '\u{E000}',
            '\u{034F}',
            '\u{3164}',
            '\u{FE0F}',
        ] {
            let text = format!("Sl{c}ack");
            assert_eq!(hidden_character(&text), Some(c), "U+{:04X}", u32::from(c));
        }
        for fine in [
            "Slack notify",
            "Café Crème",
            "日本語の通知",
            "Émoji ⚡ ok",
            "a-b_c (d)",
        ] {
            assert_eq!(hidden_character(fine), None, "{fine}");
        }
    }
}
