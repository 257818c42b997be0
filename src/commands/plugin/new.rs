//! `plinth plugin new`: scaffold a plugin crate that builds as is.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use plinth_package::PluginId;

/// Where the plinth-sdk sources of this build of `plinth` live (recorded at build time).
const BUNDLED_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sdk");

/// Create a new plugin crate: Cargo.toml, plinth.toml and a working `src/lib.rs`.
///
/// The crate depends on the plinth-sdk that ships with this `plinth` (by path; override with
/// PLINTH_SDK_PATH) and builds with `plinth plugin build DIR` unchanged.
#[derive(Debug, clap::Args)]
pub struct NewCommand {
    /// The plugin id: `<publisher>.<name>`, lowercase letters, digits and `-`.
    #[arg(value_name = "ID")]
    id: String,
    /// Where to create the crate (default: `./<name>`).
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The plinth-sdk crate to depend on.
    #[arg(long, env = "PLINTH_SDK_PATH", value_name = "DIR", default_value = BUNDLED_SDK)]
    sdk_path: PathBuf,
}

impl NewCommand {
    /// Writes the scaffold.
    pub fn execute(self) -> anyhow::Result<()> {
        let id: PluginId = self
            .id
            .parse()
            .with_context(|| format!("invalid plugin id {:?}", self.id))?;
        let dir = self.dir.clone().unwrap_or_else(|| PathBuf::from(id.name()));
        if dir.exists()
            && std::fs::read_dir(&dir)
                .with_context(|| format!("cannot read {}", dir.display()))?
                .next()
                .is_some()
        {
            bail!("{} exists and is not empty", dir.display());
        }
        let sdk_path = self.sdk_path.canonicalize().with_context(|| {
            format!(
                "plinth-sdk not found at {} (set PLINTH_SDK_PATH to a plinth-sdk checkout)",
                self.sdk_path.display()
            )
        })?;
        let scaffold = Scaffold::new(&id, &sdk_path)?;
        scaffold
            .write(&dir)
            .with_context(|| format!("cannot create the plugin in {}", dir.display()))?;
        println!("{}", dir.display());
        eprintln!(
            "created plugin {id} in {}; build it with `plinth plugin build {}`",
            dir.display(),
            dir.display()
        );
        Ok(())
    }
}

/// The files of a new plugin crate, rendered from the templates in `template/` (`@name@` marks a value).
#[derive(Debug)]
struct Scaffold {
    files: Vec<(&'static str, String)>,
}

impl Scaffold {
    fn new(id: &PluginId, sdk_path: &Path) -> anyhow::Result<Self> {
        let name = id.name();
        // Package names cannot start with a digit.
        let crate_name = if name.starts_with(|c: char| c.is_ascii_digit()) {
            format!("plugin-{name}")
        } else {
            name.to_string()
        };
        let type_name: String = name
            .split('-')
            .map(|word| {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect();
        // Type names cannot start with a digit.
        let type_name = if type_name.starts_with(|c: char| c.is_ascii_digit()) {
            format!("Plugin{type_name}")
        } else {
            type_name
        };
        let sdk_path = sdk_path
            .to_str()
            .context("the plinth-sdk path is not valid UTF-8")?
            .replace('\\', "/");
        let display_name = type_name.clone();
        let render = |template: &str| {
            template
                .replace("@id@", &id.to_string())
                .replace("@name@", &display_name)
                .replace("@crate_name@", &crate_name)
                .replace("@type_name@", &type_name)
                .replace("@sdk_path@", &sdk_path)
        };
        Ok(Scaffold {
            files: vec![
                ("Cargo.toml", render(include_str!("template/Cargo.toml.in"))),
                (
                    "plinth.toml",
                    render(include_str!("template/plinth.toml.in")),
                ),
                ("src/lib.rs", render(include_str!("template/lib.rs.in"))),
                ("README.md", render(include_str!("template/README.md.in"))),
                (".gitignore", render(include_str!("template/gitignore.in"))),
                (
                    ".cargo/config.toml",
                    render(include_str!("template/cargo-config.toml.in")),
                ),
            ],
        })
    }

    fn write(&self, dir: &Path) -> std::io::Result<()> {
        for (path, contents) in &self.files {
            let path = dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, contents)?;
        }
        Ok(())
    }
}
