//! Semantic rules of `plinth.toml`, checked after the schema, each reporting a key path.

use std::collections::BTreeSet;
use std::fmt::Display;

use super::{ConfigType, Manifest, PricingModel};
use crate::error::ManifestError;

/// Longest configuration key.
const MAX_CONFIG_KEY: usize = 64;

/// Most schedules one plugin may declare.
const MAX_SCHEDULES: usize = 10;

impl Manifest {
    /// Checks the rules the schema cannot express. Returns the first problem.
    pub(super) fn check(&self) -> Result<(), ManifestError> {
        self.check_plugin()?;
        self.check_permissions()?;
        self.check_config()?;
        self.check_pricing()?;
        self.check_limits()?;
        self.build.as_ref().map_or(Ok(()), |build| build.check())
    }

    fn check_plugin(&self) -> Result<(), ManifestError> {
        let p = &self.plugin;
        for (key, value) in [
            ("name", &p.name),
            ("description", &p.description),
            ("license", &p.license),
        ] {
            if value.trim().is_empty() {
                return Err(ManifestError::new(
                    format!("plugin.{key}"),
                    "must not be empty",
                ));
            }
        }
        for (i, category) in p.categories.iter().enumerate() {
            if category.trim().is_empty() {
                return Err(ManifestError::new(
                    format!("plugin.categories[{i}]"),
                    "must not be empty",
                ));
            }
        }
        for (key, value) in [("homepage", &p.homepage), ("repository", &p.repository)] {
            if let Some(url) = value
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                return Err(ManifestError::new(
                    format!("plugin.{key}"),
                    format!("\"{url}\" is not an http(s) URL"),
                ));
            }
        }
        Ok(())
    }

    fn check_permissions(&self) -> Result<(), ManifestError> {
        let perms = &self.permissions;
        if let Some(kv) = &perms.kv {
            if kv.max_bytes == 0 {
                return Err(ManifestError::new(
                    "permissions.kv.max-bytes",
                    "must be greater than 0",
                ));
            }
            if kv.max_keys == Some(0) {
                return Err(ManifestError::new(
                    "permissions.kv.max-keys",
                    "must be greater than 0",
                ));
            }
        }
        if let Some(http) = &perms.http {
            if http.hosts.is_empty() {
                return Err(ManifestError::new(
                    "permissions.http.hosts",
                    "list at least one host (or remove permissions.http)",
                ));
            }
            no_duplicates("permissions.http.hosts", &http.hosts)?;
        }
        if let Some(events) = &perms.events {
            no_duplicates("permissions.events.subscribe", &events.subscribe)?;
            no_duplicates("permissions.events.emit", &events.emit)?;
        }
        if perms.schedules.len() > MAX_SCHEDULES {
            return Err(ManifestError::new(
                "permissions.schedules",
                format!("declare at most {MAX_SCHEDULES} schedules"),
            ));
        }
        for (i, schedule) in perms.schedules.iter().enumerate() {
            if schedule.cron.is_some() == schedule.every.is_some() {
                return Err(ManifestError::new(
                    format!("permissions.schedules[{i}]"),
                    "give exactly one of `cron` (a pattern) and `every` (an interval)",
                ));
            }
        }
        no_duplicates("permissions.schedules", &perms.schedules)?;
        Ok(())
    }

    fn check_config(&self) -> Result<(), ManifestError> {
        if !self.config.is_empty() && !self.permissions.config {
            return Err(ManifestError::new(
                "config",
                "configuration keys are declared, but permissions.config is not true",
            ));
        }
        for (key, field) in &self.config {
            let path = format!("config.{key}");
            check_config_key(key).map_err(|m| ManifestError::new(&path, m))?;
            let Some(default) = &field.default else {
                continue;
            };
            if field.secret {
                return Err(ManifestError::new(
                    format!("{path}.default"),
                    "a secret has no default; the tenant must set it",
                ));
            }
            if default.config_type() != field.r#type {
                return Err(ManifestError::new(
                    format!("{path}.default"),
                    format!(
                        "expected a {} (as declared by type), found {} {}",
                        field.r#type,
                        article(default.config_type()),
                        default.config_type()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_pricing(&self) -> Result<(), ManifestError> {
        let pricing = &self.pricing;
        if pricing.model == PricingModel::Free {
            if pricing.amount.is_some_and(|a| a != 0) {
                return Err(ManifestError::new(
                    "pricing.amount",
                    "a free plugin has no amount (remove it or choose a paid model)",
                ));
            }
            return Ok(());
        }
        match pricing.amount {
            None => {
                return Err(ManifestError::new(
                    "pricing",
                    format!(
                        "a {} plugin needs an amount (integer minor units, e.g. 500 for 5.00)",
                        pricing.model
                    ),
                ));
            }
            Some(amount) if amount <= 0 => {
                return Err(ManifestError::new(
                    "pricing.amount",
                    format!(
                        "must be greater than 0 for a {} plugin, found {amount}",
                        pricing.model
                    ),
                ));
            }
            Some(_) => {}
        }
        if pricing.currency.is_none() {
            return Err(ManifestError::new(
                "pricing",
                format!(
                    "a {} plugin needs a currency, e.g. currency = \"USD\"",
                    pricing.model
                ),
            ));
        }
        Ok(())
    }

    fn check_limits(&self) -> Result<(), ManifestError> {
        let limits = &self.limits;
        for (key, value) in [
            ("memory-mb", limits.memory_mb),
            ("timeout-ms", limits.timeout_ms),
            ("fuel", limits.fuel),
        ] {
            if value == Some(0) {
                return Err(ManifestError::new(
                    format!("limits.{key}"),
                    "must be greater than 0",
                ));
            }
        }
        Ok(())
    }
}

fn article(t: ConfigType) -> &'static str {
    match t {
        ConfigType::Integer => "an",
        ConfigType::String | ConfigType::Boolean => "a",
    }
}

fn no_duplicates<T: Ord + Display>(path: &str, items: &[T]) -> Result<(), ManifestError> {
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        if !seen.insert(item) {
            return Err(ManifestError::new(
                format!("{path}[{i}]"),
                format!("\"{item}\" is listed twice"),
            ));
        }
    }
    Ok(())
}

/// A config key: 1–64 characters of `[a-z0-9_-]`, starting with a letter or digit.
fn check_config_key(key: &str) -> Result<(), String> {
    let valid = !key.is_empty()
        && key.len() <= MAX_CONFIG_KEY
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "\"{key}\" is not a valid config key (1–64 of a-z, 0-9, '-' and '_', starting with a letter or digit)"
        ))
    }
}
