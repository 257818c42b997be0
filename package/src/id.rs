//! [`PluginId`]: `<publisher>.<name>`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::InvalidValue;

/// Longest publisher or name part of a plugin id.
const MAX_PART: usize = 64;

/// A plugin's id, `<publisher>.<name>` (e.g. `acme.slack-notify`).
///
/// Each part is 1–64 characters of `[a-z0-9]` and inner `-` (not first, not last). The
/// publisher part is the namespace a marketplace publisher owns.
///
/// ```
/// use plinth_package::PluginId;
/// let id: PluginId = "acme.slack-notify".parse()?;
/// assert_eq!(id.publisher(), "acme");
/// assert_eq!(id.name(), "slack-notify");
/// assert!("Acme.x".parse::<PluginId>().is_err());
/// # Ok::<(), plinth_package::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PluginId {
    full: String,
    dot: usize,
}

impl PluginId {
    /// The publisher namespace (before the dot).
    pub fn publisher(&self) -> &str {
        &self.full[..self.dot]
    }

    /// The plugin's name within its publisher (after the dot).
    pub fn name(&self) -> &str {
        &self.full[self.dot + 1..]
    }

    /// The whole id.
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

/// Checks one part of an id (also used for publisher namespaces).
pub(crate) fn check_part(part: &str) -> Result<(), String> {
    if part.is_empty() {
        return Err("a part is empty".into());
    }
    if part.len() > MAX_PART {
        return Err(format!("\"{part}\" is longer than {MAX_PART} characters"));
    }
    if let Some(c) = part
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "'{c}' is not allowed; use lowercase letters, digits and '-'"
        ));
    }
    if part.starts_with('-') || part.ends_with('-') {
        return Err(format!("\"{part}\" starts or ends with '-'"));
    }
    Ok(())
}

impl FromStr for PluginId {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| InvalidValue::new("plugin id", s, reason);
        let Some((publisher, name)) = s.split_once('.') else {
            return Err(invalid("expected <publisher>.<name>".into()));
        };
        if name.contains('.') {
            return Err(invalid("expected exactly one '.'".into()));
        }
        check_part(publisher).map_err(invalid)?;
        check_part(name).map_err(invalid)?;
        Ok(PluginId {
            full: s.to_owned(),
            dot: publisher.len(),
        })
    }
}

impl TryFrom<String> for PluginId {
    type Error = InvalidValue;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PluginId> for String {
    fn from(id: PluginId) -> String {
        id.full
    }
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}
