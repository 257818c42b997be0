//! `plinth.toml`: the [`Manifest`], parsed strictly.
//!
//! Unknown keys are errors; every error names the key path of the offending value, e.g.
//! `permissions.http.hosts[1]: "https://x" is not a valid host (remove the scheme; give only the
//! host)`. After the schema, semantic rules are checked (a secret has no default, declaring
//! config keys needs `permissions.config`, paid pricing needs an amount and a currency, …).

mod build;
mod check;
mod config;
mod pricing;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::canonical::Canonical;
use crate::error::{Error, ManifestError};
use crate::id::PluginId;
use crate::permissions::Permissions;

pub use build::Build;
pub use config::{ConfigField, ConfigType, ConfigValue};
pub use pricing::{Currency, Limits, Pricing, PricingModel};

/// The version of the `plinth:plugin` WIT package this platform provides. A manifest's `api`
/// range must be satisfied by it.
pub const PLUGIN_API_VERSION: semver::Version = semver::Version::new(0, 1, 0);

/// A parsed and checked `plinth.toml`.
///
/// ```
/// use plinth_package::Manifest;
/// let manifest = Manifest::parse(r#"
/// [plugin]
/// id = "acme.hello"
/// version = "0.1.0"
/// name = "Hello"
/// description = "Says hello."
/// license = "MIT"
/// api = "^0.1"
///
/// [permissions]
/// events = { subscribe = ["greeting.requested"] }
/// "#)?;
/// assert_eq!(manifest.plugin.id.publisher(), "acme");
///
/// let err = Manifest::parse("[plugin]\nid = \"acme.hello\"\nflavour = 1\n").unwrap_err();
/// assert!(err.to_string().contains("flavour"));
/// # Ok::<(), plinth_package::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// `[plugin]`: identity and compatibility.
    pub plugin: PluginInfo,
    /// `[permissions]`: the capabilities the plugin asks tenants for.
    #[serde(default)]
    pub permissions: Permissions,
    /// `[config.<key>]`: configuration keys a tenant fills in, by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, ConfigField>,
    /// `[pricing]`: free unless stated.
    #[serde(default)]
    pub pricing: Pricing,
    /// `[limits]`: resources requested per call.
    #[serde(default)]
    pub limits: Limits,
    /// `[build]`: how a plugin in another language than Rust is built (absent for a crate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
}

/// `[plugin]`: who the plugin is and what it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginInfo {
    /// `<publisher>.<name>`, e.g. `acme.slack-notify`.
    pub id: PluginId,
    /// The version of this release (semver).
    pub version: semver::Version,
    /// Display name.
    pub name: String,
    /// One or two sentences for the catalog.
    pub description: String,
    /// SPDX license expression, e.g. `MIT`.
    pub license: String,
    /// Catalog categories, e.g. `["notifications"]`.
    #[serde(default)]
    pub categories: Vec<String>,
    /// The range of `plinth:plugin` versions the plugin works with, e.g. `^0.1`.
    pub api: semver::VersionReq,
    /// Project home page URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// Source repository URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

/// Domain string of the manifest's canonical encoding.
const CANONICAL_DOMAIN: &str = "plinth-manifest/v1";

impl Manifest {
    /// Parses and checks `plinth.toml`.
    ///
    /// # Errors
    ///
    /// [`Error::Manifest`] naming the key path of the first problem found.
    pub fn parse(toml_text: &str) -> Result<Manifest, Error> {
        Ok(Self::parse_inner(toml_text)?)
    }

    fn parse_inner(toml_text: &str) -> Result<Manifest, ManifestError> {
        let deserializer = toml::Deserializer::parse(toml_text)
            .map_err(|e| ManifestError::new("", located(toml_text, &e)))?;
        let manifest: Manifest = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let path = if path == "." { String::new() } else { path };
            if path.is_empty() {
                ManifestError::new("", located(toml_text, &inner))
            } else {
                ManifestError::new(path, inner.message())
            }
        })?;
        manifest.check()?;
        Ok(manifest)
    }

    /// Whether `api` is satisfied by [`PLUGIN_API_VERSION`].
    pub fn api_is_supported(&self) -> bool {
        self.plugin.api.matches(&PLUGIN_API_VERSION)
    }

    /// The canonical encoding of the parsed manifest, as covered by the package digest.
    pub(crate) fn canonical_bytes(&self) -> Vec<u8> {
        let mut c = Canonical::new(CANONICAL_DOMAIN);
        let p = &self.plugin;
        c.str(p.id.as_str())
            .str(&p.version.to_string())
            .str(&p.name)
            .str(&p.description)
            .str(&p.license)
            .strs(&p.categories)
            .str(&p.api.to_string())
            .opt_str(p.homepage.as_deref())
            .opt_str(p.repository.as_deref());
        self.permissions.encode(&mut c);
        c.u64(self.config.len() as u64);
        for (key, field) in &self.config {
            c.str(key)
                .str(field.r#type.as_str())
                .opt_str(field.description.as_deref())
                .bool(field.secret)
                .bool(field.required);
            match &field.default {
                None => c.bool(false),
                Some(value) => c
                    .bool(true)
                    .str(value.config_type().as_str())
                    .str(&value.to_string()),
            };
        }
        c.str(self.pricing.model.as_str());
        match self.pricing.amount {
            Some(amount) => c.bool(true).i64(amount),
            None => c.bool(false),
        };
        c.opt_str(self.pricing.currency.as_ref().map(Currency::as_str));
        c.opt_u64(self.limits.memory_mb)
            .opt_u64(self.limits.timeout_ms)
            .opt_u64(self.limits.fuel);
        self.permissions.encode_schedules(&mut c);
        // Appended only when present, so the digests of manifests without it are unchanged.
        if let Some(build) = &self.build {
            c.str("build")
                .strs(&build.command)
                .opt_str(build.world.as_deref());
        }
        c.into_bytes()
    }
}

/// A TOML error message prefixed with its line and column.
fn located(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {}", error.message())
        }
        None => error.message().to_owned(),
    }
}
