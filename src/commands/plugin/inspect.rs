//! `plinth plugin inspect`: show what a package is and exactly what it asks for.

use std::path::PathBuf;

use anyhow::Context as _;
use plinth_package::{Package, wasm};
use serde::Serialize;

/// Show a package's manifest, permissions, imports, exports, digest, sizes, signatures, the
/// toolchain that produced its component, and what one instance of it takes (core instances,
/// initial memory).
#[derive(Debug, clap::Args)]
pub struct InspectCommand {
    /// The `.plinth` package to inspect.
    #[arg(value_name = "PKG")]
    package: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl InspectCommand {
    /// Reads the package and prints the report.
    pub fn execute(self) -> anyhow::Result<()> {
        let size = std::fs::metadata(&self.package)
            .with_context(|| format!("cannot read package {}", self.package.display()))?
            .len();
        let package = super::read_package(&self.package)?;
        let report = Inspection::of(&package, size)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.to_text());
        }
        Ok(())
    }
}

/// Everything `inspect` reports about a package; also its JSON form.
#[derive(Debug, Serialize)]
struct Inspection {
    id: String,
    version: String,
    name: String,
    description: String,
    license: String,
    categories: Vec<String>,
    api: String,
    digest: String,
    permissions: Vec<PermissionView>,
    permissions_digest: String,
    config: Vec<ConfigView>,
    pricing: serde_json::Value,
    imports: Vec<String>,
    exports: Vec<String>,
    toolchain: Vec<String>,
    core_instances: u32,
    initial_memory_bytes: u64,
    sizes: Sizes,
    signatures: Signatures,
}

#[derive(Debug, Serialize)]
struct PermissionView {
    capability: String,
    detail: String,
    sentence: String,
}

#[derive(Debug, Serialize)]
struct ConfigView {
    key: String,
    r#type: String,
    required: bool,
    secret: bool,
}

#[derive(Debug, Serialize)]
struct Sizes {
    package: u64,
    wasm: usize,
    manifest: usize,
    readme: Option<usize>,
    changelog: Option<usize>,
}

#[derive(Debug, Serialize)]
struct Signatures {
    /// The developer key (`ed25519:…`) that signed the package, if any.
    developer: Option<String>,
    /// The marketplace key that countersigned the package, if any.
    marketplace: Option<String>,
}

impl Inspection {
    fn of(package: &Package, package_size: u64) -> anyhow::Result<Self> {
        let manifest = &package.manifest;
        let component = wasm::inspect(&package.wasm).context("plugin.wasm")?;
        Ok(Inspection {
            id: manifest.plugin.id.to_string(),
            version: manifest.plugin.version.to_string(),
            name: manifest.plugin.name.clone(),
            description: manifest.plugin.description.clone(),
            license: manifest.plugin.license.clone(),
            categories: manifest.plugin.categories.clone(),
            api: manifest.plugin.api.to_string(),
            digest: package.digest().to_string(),
            permissions: manifest
                .permissions
                .grants()
                .iter()
                .map(|grant| PermissionView {
                    capability: grant.capability().to_string(),
                    detail: grant.detail(),
                    sentence: grant.sentence(),
                })
                .collect(),
            permissions_digest: manifest.permissions.digest().to_string(),
            config: manifest
                .config
                .iter()
                .map(|(key, field)| ConfigView {
                    key: key.clone(),
                    r#type: field.r#type.to_string(),
                    required: field.required,
                    secret: field.secret,
                })
                .collect(),
            pricing: serde_json::to_value(&manifest.pricing)?,
            imports: component.imports,
            exports: component.exports,
            toolchain: component
                .producers
                .iter()
                .map(|p| {
                    format!("{}: {} {}", p.field, p.name, p.version)
                        .trim_end()
                        .to_owned()
                })
                .collect(),
            core_instances: component.core_instances,
            initial_memory_bytes: component.initial_memory_bytes,
            sizes: Sizes {
                package: package_size,
                wasm: package.wasm.len(),
                manifest: package.manifest_toml.len(),
                readme: package.readme.as_ref().map(String::len),
                changelog: package.changelog.as_ref().map(String::len),
            },
            signatures: Signatures {
                developer: package
                    .signature
                    .developer
                    .as_ref()
                    .map(|signature| signature.key.to_string()),
                marketplace: package
                    .signature
                    .marketplace
                    .as_ref()
                    .map(|signature| signature.key.to_string()),
            },
        })
    }

    fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let none = || "none".to_string();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{} {} — {}", self.id, self.version, self.name);
        let _ = writeln!(out, "  {}", self.description);
        let _ = writeln!(out, "license:     {}", self.license);
        let _ = writeln!(out, "api:         plinth:plugin {}", self.api);
        let _ = writeln!(out, "digest:      {}", self.digest);
        let _ = writeln!(
            out,
            "size:        {} bytes packaged, {} bytes of wasm",
            self.sizes.package, self.sizes.wasm
        );
        let _ = writeln!(
            out,
            "instance:    {} core instances, {:.1} MiB of initial memory",
            self.core_instances,
            self.initial_memory_bytes as f64 / f64::from(1u32 << 20)
        );
        let _ = writeln!(
            out,
            "toolchain:   {}",
            if self.toolchain.is_empty() {
                none()
            } else {
                self.toolchain.join(", ")
            }
        );
        let _ = writeln!(
            out,
            "signed by:   {}",
            self.signatures.developer.clone().unwrap_or_else(none)
        );
        let _ = writeln!(
            out,
            "countersigned by: {}",
            self.signatures.marketplace.clone().unwrap_or_else(none)
        );
        let _ = writeln!(out, "permissions ({}):", self.permissions_digest);
        if self.permissions.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        for permission in &self.permissions {
            let _ = writeln!(out, "  - {}", permission.sentence);
        }
        if !self.config.is_empty() {
            let _ = writeln!(out, "config:");
            for field in &self.config {
                let _ = writeln!(
                    out,
                    "  - {} ({}{}{})",
                    field.key,
                    field.r#type,
                    if field.required { ", required" } else { "" },
                    if field.secret { ", secret" } else { "" }
                );
            }
        }
        let _ = writeln!(out, "imports:");
        for import in &self.imports {
            let _ = writeln!(out, "  - {import}");
        }
        let _ = writeln!(out, "exports:");
        for export in &self.exports {
            let _ = writeln!(out, "  - {export}");
        }
        out
    }
}
