//! Names people give that others read: an account's, a publisher's, an API key's.

use crate::error::{Error, Result};

/// Checks a display name: 1 to 200 characters once trimmed, none of them invisible or a
/// control (the rule of [`plinth_package::display::hidden_character`]); the trimmed name.
///
/// # Errors
///
/// [`Error::BadRequest`] `invalid_body` naming the field `name`.
pub(crate) fn checked(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::bad_request(
            "invalid_body",
            "field `name` must be 1 to 200 characters",
        ));
    }
    if let Some(c) = plinth_package::display::hidden_character(name) {
        return Err(Error::bad_request(
            "invalid_body",
            format!(
                "field `name` contains the invisible or control character U+{:04X}; remove it",
                u32::from(c)
            ),
        ));
    }
    Ok(name)
}
