//! `plinth plugin new`: scaffold a plugin, in Rust, JavaScript, TypeScript or Python, that
//! builds as is.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use plinth_package::PluginId;

/// Where the SDK sources of this build of `plinth` live (recorded at build time): the Rust
/// crate here, the JavaScript package in `js/`, the Python package in `python/`.
const BUNDLED_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sdk");

/// The language of a new plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// A Rust crate using plinth-sdk, built with cargo.
    Rust,
    /// JavaScript with @plinth/sdk, built by componentize-js.
    Js,
    /// TypeScript with @plinth/sdk, bundled and built by componentize-js.
    Ts,
    /// Python with plinth_sdk, built by componentize-py.
    Python,
}

impl Language {
    /// The SDK this build of `plinth` ships for the language.
    fn bundled_sdk(self) -> PathBuf {
        let root = PathBuf::from(BUNDLED_SDK);
        match self {
            Language::Rust => root,
            Language::Js | Language::Ts => root.join("js"),
            Language::Python => root.join("python"),
        }
    }
}

/// Create a new plugin that builds as is: plinth.toml, the source of a plugin answering
/// `greet` events, a README and a .gitignore; for Rust a crate (Cargo.toml, `src/lib.rs`),
/// for JavaScript, TypeScript and Python a `[build]` section running the language's SDK.
///
/// The plugin depends on the SDK that ships with this `plinth` (by path; override with
/// PLINTH_SDK_PATH) and builds with `plinth plugin build DIR` unchanged.
#[derive(Debug, clap::Args)]
pub struct NewCommand {
    /// The plugin id: `<publisher>.<name>`, lowercase letters, digits and `-`.
    #[arg(value_name = "ID")]
    id: String,
    /// Where to create the plugin (default: `./<name>`).
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The language to write it in.
    #[arg(long, value_enum, default_value_t = Language::Rust)]
    lang: Language,
    /// The SDK to depend on, for the chosen language (default: the one shipped with this
    /// `plinth`: `sdk/`, `sdk/js` or `sdk/python` of its checkout).
    #[arg(long, env = "PLINTH_SDK_PATH", value_name = "DIR")]
    sdk_path: Option<PathBuf>,
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
        let sdk_path = self
            .sdk_path
            .clone()
            .unwrap_or_else(|| self.lang.bundled_sdk());
        let sdk_path = sdk_path.canonicalize().with_context(|| {
            format!(
                "the {:?} SDK was not found at {} (set PLINTH_SDK_PATH to it)",
                self.lang,
                sdk_path.display()
            )
        })?;
        let scaffold = Scaffold::new(&id, &sdk_path, self.lang)?;
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
    fn new(id: &PluginId, sdk_path: &Path, lang: Language) -> anyhow::Result<Self> {
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
        let files = match lang {
            Language::Rust => vec![
                ("Cargo.toml", include_str!("template/Cargo.toml.in")),
                ("plinth.toml", include_str!("template/plinth.toml.in")),
                ("src/lib.rs", include_str!("template/lib.rs.in")),
                ("README.md", include_str!("template/README.md.in")),
                (".gitignore", include_str!("template/gitignore.in")),
                (
                    ".cargo/config.toml",
                    include_str!("template/cargo-config.toml.in"),
                ),
            ],
            Language::Js => vec![
                ("plinth.toml", include_str!("template/js/plinth.toml.in")),
                ("src/plugin.js", include_str!("template/js/plugin.js.in")),
                ("README.md", include_str!("template/js/README.md.in")),
                (".gitignore", include_str!("template/js/gitignore.in")),
            ],
            Language::Ts => vec![
                ("plinth.toml", include_str!("template/ts/plinth.toml.in")),
                ("src/plugin.ts", include_str!("template/ts/plugin.ts.in")),
                (
                    "tsconfig.json",
                    include_str!("template/ts/tsconfig.json.in"),
                ),
                ("README.md", include_str!("template/js/README.md.in")),
                (".gitignore", include_str!("template/js/gitignore.in")),
            ],
            Language::Python => vec![
                (
                    "plinth.toml",
                    include_str!("template/python/plinth.toml.in"),
                ),
                ("app.py", include_str!("template/python/app.py.in")),
                ("README.md", include_str!("template/python/README.md.in")),
                (".gitignore", include_str!("template/python/gitignore.in")),
            ],
        };
        Ok(Scaffold {
            files: files
                .into_iter()
                .map(|(path, template)| (path, render(template)))
                .collect(),
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
