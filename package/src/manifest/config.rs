//! `[config.<key>]`: the configuration values a tenant sets for an install.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Manifest;

/// One declared configuration key, `[config.<key>]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigField {
    /// The value's type: `string`, `integer` or `boolean`.
    pub r#type: ConfigType,
    /// Shown to the tenant next to the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A secret is never logged nor returned by the API once set, and has no default.
    #[serde(default)]
    pub secret: bool,
    /// An install cannot be completed without a value (or a default).
    #[serde(default)]
    pub required: bool,
    /// The value used when the tenant sets none; must be of [`type`](Self::type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<ConfigValue>,
}

/// The type of a configuration value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigType {
    /// Any UTF-8 text.
    String,
    /// A signed 64-bit integer.
    Integer,
    /// `true` or `false`.
    Boolean,
}

impl ConfigType {
    /// `string`, `integer` or `boolean`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigType::String => "string",
            ConfigType::Integer => "integer",
            ConfigType::Boolean => "boolean",
        }
    }

    /// Checks a tenant-supplied textual value against this type (`integer`: decimal digits
    /// with an optional sign; `boolean`: `true` or `false`).
    pub fn accepts_text(self, value: &str) -> bool {
        match self {
            ConfigType::String => true,
            ConfigType::Integer => value.parse::<i64>().is_ok(),
            ConfigType::Boolean => value == "true" || value == "false",
        }
    }
}

impl fmt::Display for ConfigType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A configuration value as written in TOML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    /// `true` / `false`.
    Boolean(bool),
    /// An integer.
    Integer(i64),
    /// A string.
    String(String),
}

impl ConfigValue {
    /// The type of this value.
    pub fn config_type(&self) -> ConfigType {
        match self {
            ConfigValue::Boolean(_) => ConfigType::Boolean,
            ConfigValue::Integer(_) => ConfigType::Integer,
            ConfigValue::String(_) => ConfigType::String,
        }
    }
}

impl fmt::Display for ConfigValue {
    /// The value as the text a plugin reads through `plinth:plugin/config`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Boolean(b) => write!(f, "{b}"),
            ConfigValue::Integer(i) => write!(f, "{i}"),
            ConfigValue::String(s) => f.write_str(s),
        }
    }
}

impl Manifest {
    /// The configuration keys this (installed) version declares secret that `later` still
    /// declares but no longer as secret, in key order.
    ///
    /// Moving an install to such a version needs the tenant's consent, as a permission change
    /// does; and what was sealed stays sealed whatever `later` says.
    ///
    /// ```
    /// use plinth_package::Manifest;
    /// let with = |secret: bool| Manifest::parse(&format!(
    ///     "[plugin]\nid = \"acme.x\"\nversion = \"1.0.0\"\nname = \"X\"\n\
    ///      description = \"X.\"\nlicense = \"MIT\"\napi = \"^0.1\"\n\
    ///      [permissions]\nconfig = true\n[config.token]\ntype = \"string\"\nsecret = {secret}\n"
    /// ));
    /// let (sealed, plain) = (with(true)?, with(false)?);
    /// assert_eq!(sealed.secrets_made_plain(&plain), ["token"]);
    /// assert!(plain.secrets_made_plain(&sealed).is_empty());
    /// # Ok::<(), plinth_package::Error>(())
    /// ```
    pub fn secrets_made_plain(&self, later: &Manifest) -> Vec<String> {
        self.config
            .iter()
            .filter(|(key, field)| {
                field.secret && later.config.get(*key).is_some_and(|field| !field.secret)
            })
            .map(|(key, _)| key.clone())
            .collect()
    }
}
