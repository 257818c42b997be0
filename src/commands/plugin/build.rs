//! `plinth plugin build`: build a plugin's component (a Rust crate with cargo, another language
//! with its `[build]` command, or a prebuilt `--wasm`), validate it, check that the host
//! compiles it, and write its package.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};
use plinth_host::capacity::Footprint;
use plinth_host::trust::TrustPolicy;
use plinth_host::{Host, HostConfig};
use plinth_package::{Package, Report, ValidationContext, validate};
use serde::Serialize;

use crate::commands::keygen::read_secret_key;

/// Build a plugin: compile it to a WebAssembly component, validate it, check that the host
/// compiles and links it, and write the `<id>-<version>.plinth` package (signed when --key is
/// given).
///
/// A directory with Cargo.toml is built with cargo; one whose plinth.toml has a `[build]`
/// section is built by its command (JavaScript, TypeScript, Python, …) against the WIT world
/// its permissions imply; `--wasm` packages a component built some other way. Validation
/// findings are printed; if any is an error, or the host cannot run the component, no package
/// is written.
#[derive(Debug, clap::Args)]
pub struct BuildCommand {
    /// The plugin's directory: plinth.toml, and Cargo.toml or a `[build]` section.
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Package this component instead of building one.
    #[arg(long, value_name = "FILE")]
    wasm: Option<PathBuf>,
    /// Where the compile check caches compiled components (`plugin run` reuses them).
    #[arg(long, value_name = "DIR", default_value = "./plinth-data")]
    data_dir: PathBuf,
    /// Sign the package with this secret key (written by `plinth keygen`).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Where to write the package (default: `./<id>-<version>.plinth`).
    #[arg(long, value_name = "PKG")]
    out: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// What `build --json` prints.
#[derive(Debug, Serialize)]
struct BuildOutput<'a> {
    package: &'a Path,
    id: String,
    version: String,
    digest: String,
    signed: bool,
    report: &'a Report,
    footprint: FootprintOutput,
}

/// What one instance of the component holds, from the compile check.
#[derive(Debug, Serialize)]
struct FootprintOutput {
    core_instances: u32,
    memories: u32,
    tables: u32,
    compile_ms: u128,
}

impl BuildCommand {
    /// Compiles, validates, signs and writes the package.
    pub fn execute(self) -> anyhow::Result<()> {
        // Read the manifest first: a mistake there is reported before a long compile.
        let manifest_path = self.dir.join("plinth.toml");
        let (manifest_toml, manifest) = super::wit::read_manifest_text(&self.dir)?;
        let secret = self.key.as_deref().map(read_secret_key).transpose()?;

        let wasm_path = match (&self.wasm, &manifest.build) {
            (Some(wasm), _) => wasm.clone(),
            (None, Some(build)) => super::toolchain::build(&self.dir, &manifest, build)?,
            (None, None) => compile_component(&self.dir)?,
        };
        let wasm = std::fs::read(&wasm_path)
            .with_context(|| format!("cannot read {}", wasm_path.display()))?;
        let readme = read_optional(&self.dir.join("README.md"))?;
        let changelog = read_optional(&self.dir.join("CHANGELOG.md"))?;
        let mut package = Package::new(manifest_toml, wasm, readme, changelog)
            .with_context(|| manifest_path.display().to_string())?;

        let report = validate(&package, &ValidationContext::local());
        if !self.json {
            for finding in &report.findings {
                eprintln!("{finding}");
            }
        }
        if report.has_errors() {
            if self.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            bail!(
                "validation failed with {} error(s); no package written",
                report.errors().count()
            );
        }
        let started = Instant::now();
        let footprint = compile_check(&package, &self.data_dir)?;
        let compile_ms = started.elapsed().as_millis();
        if !self.json {
            eprintln!(
                "the host compiles it ({:.1} s): {} core instances, {} memories, {} tables per call",
                started.elapsed().as_secs_f64(),
                footprint.core_instances,
                footprint.memories,
                footprint.tables
            );
        }
        if let Some(secret) = &secret {
            package.sign(secret);
        }
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(package.file_name()));
        package
            .write_to(&out)
            .with_context(|| format!("cannot write {}", out.display()))?;

        if self.json {
            let output = BuildOutput {
                package: &out,
                id: package.manifest.plugin.id.to_string(),
                version: package.manifest.plugin.version.to_string(),
                digest: package.digest().to_string(),
                signed: secret.is_some(),
                report: &report,
                footprint: FootprintOutput {
                    core_instances: footprint.core_instances,
                    memories: footprint.memories,
                    tables: footprint.tables,
                    compile_ms,
                },
            };
            println!("{}", serde_json::to_string_pretty(&output)?);
        } else {
            eprintln!(
                "built {} {} ({}{})",
                package.manifest.plugin.id,
                package.manifest.plugin.version,
                package.digest(),
                if secret.is_some() {
                    ", signed"
                } else {
                    ", unsigned"
                }
            );
            println!("{}", out.display());
        }
        Ok(())
    }
}

/// Compiles the component with the host's engine settings (caching it under `data_dir`, as
/// `plugin run` does) and links it against the capabilities its manifest asks for.
fn compile_check(package: &Package, data_dir: &Path) -> anyhow::Result<Footprint> {
    let mut config = HostConfig::new(data_dir.join("compiled"), TrustPolicy::development());
    config.engine = super::local_engine();
    let host = Host::new(config).context("cannot start a local host for the compile check")?;
    host.check_compiles(package)
        .context("the host cannot run this component; no package written")
}

/// Reads a text file that a plugin may or may not have.
fn read_optional(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Runs `cargo build --release --target wasm32-wasip2` for the crate in `dir` and returns the
/// path of the component it produced.
fn compile_component(dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest = dir
        .join("Cargo.toml")
        .canonicalize()
        .with_context(|| format!("{} has no Cargo.toml", dir.display()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo (is Rust installed?)")?;
    if !output.status.success() {
        bail!(
            "cargo build failed for {} (see the compiler output above; is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`)",
            manifest.display()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    find_component(&stdout, &manifest)
        .with_context(|| format!("{} did not produce a .wasm cdylib", manifest.display()))
}

/// Finds, in cargo's JSON messages, the `.wasm` artifact of the package whose manifest is
/// `manifest`.
fn find_component(messages: &str, manifest: &Path) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<CargoMessage>(line).ok())
        .filter(|message| {
            message.reason == "compiler-artifact"
                && message.manifest_path.as_deref() == Some(manifest)
        })
        .flat_map(|message| message.filenames)
        .find(|file| file.extension().is_some_and(|ext| ext == "wasm"))
}

/// The fields of a cargo JSON message that `build` needs.
#[derive(Debug, serde::Deserialize)]
struct CargoMessage {
    reason: String,
    manifest_path: Option<PathBuf>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
}
