//! `plinth plugin wit`: write the WIT world that matches a plugin's manifest.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plinth_package::{Manifest, PluginWit};

/// Write the WIT a plugin targets: package `plinth:app` with the worlds `plugin`,
/// `lifecycle-plugin` and `http-plugin`, importing exactly the capabilities plinth.toml asks
/// for, and every package they depend on.
///
/// Language toolchains import everything in the world they build against, so a plugin built
/// against this world imports nothing its manifest does not declare. `plinth plugin build`
/// writes it to `.plinth/wit` before running `[build].command`; run this to read it, or to
/// point an editor's bindings at it.
#[derive(Debug, clap::Args)]
pub struct WitCommand {
    /// The plugin's directory (it holds plinth.toml).
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Where to write the tree (default: `DIR/wit`). Files plinth writes are replaced.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

impl WitCommand {
    /// Reads the manifest and writes the tree.
    pub fn execute(self) -> anyhow::Result<()> {
        let manifest = read_manifest(&self.dir)?;
        let out = self.out.unwrap_or_else(|| self.dir.join("wit"));
        let wit = write(&manifest, &out)?;
        eprintln!(
            "wrote the worlds of plinth:app to {} (imports: {})",
            out.display(),
            wit.capabilities().join(", ")
        );
        println!("{}", out.display());
        Ok(())
    }
}

/// Reads and checks `dir/plinth.toml`, returning its text and the manifest.
pub(super) fn read_manifest_text(dir: &Path) -> anyhow::Result<(String, Manifest)> {
    let path = dir.join("plinth.toml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let manifest = Manifest::parse(&text).with_context(|| path.display().to_string())?;
    Ok((text, manifest))
}

fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    read_manifest_text(dir).map(|(_, manifest)| manifest)
}

/// Writes the WIT tree of `manifest` under `out`.
pub(super) fn write(manifest: &Manifest, out: &Path) -> anyhow::Result<PluginWit> {
    let wit = PluginWit::for_permissions(&manifest.permissions);
    for (name, text) in wit.files() {
        let path = out.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(wit)
}
