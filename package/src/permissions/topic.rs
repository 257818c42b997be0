//! [`Topic`]: an event topic such as `order.created`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::InvalidValue;

/// Longest topic accepted.
const MAX_TOPIC: usize = 255;

/// An event topic: lowercase segments of `[a-z0-9-_]` separated by `.`, e.g. `order.created`.
///
/// ```
/// use plinth_package::Topic;
/// assert!("order.created".parse::<Topic>().is_ok());
/// assert!("Order..created".parse::<Topic>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Topic(String);

impl Topic {
    /// The topic text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Topic {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| InvalidValue::new("topic", s, reason);
        if s.len() > MAX_TOPIC {
            return Err(invalid("a topic is at most 255 characters"));
        }
        for segment in s.split('.') {
            if segment.is_empty() {
                return Err(invalid("segments separated by '.' must not be empty"));
            }
            if !segment
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            {
                return Err(invalid("use lowercase letters, digits, '-' and '_'"));
            }
        }
        Ok(Topic(s.to_owned()))
    }
}

impl TryFrom<String> for Topic {
    type Error = InvalidValue;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Topic> for String {
    fn from(t: Topic) -> String {
        t.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
