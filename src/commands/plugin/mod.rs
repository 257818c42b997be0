//! `plinth plugin …`: everything a plugin developer does with a package, on their machine and
//! with a marketplace.

pub mod build;
pub mod inspect;
pub mod new;
pub mod publish;
pub mod run;
pub mod sign;
mod toolchain;
pub mod verify;
pub mod wit;

/// Create, build, sign, verify, inspect, run and publish plugin packages.
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    New(new::NewCommand),
    Build(build::BuildCommand),
    Sign(sign::SignCommand),
    Verify(verify::VerifyCommand),
    Inspect(inspect::InspectCommand),
    Run(run::RunCommand),
    Publish(publish::PublishCommand),
    Wit(wit::WitCommand),
}

impl PluginCommand {
    /// Runs the chosen subcommand.
    pub fn execute(self) -> anyhow::Result<()> {
        match self {
            PluginCommand::New(command) => command.execute(),
            PluginCommand::Build(command) => command.execute(),
            PluginCommand::Sign(command) => command.execute(),
            PluginCommand::Verify(command) => command.execute(),
            PluginCommand::Inspect(command) => command.execute(),
            PluginCommand::Run(command) => command.execute(),
            PluginCommand::Publish(command) => command.execute(),
            PluginCommand::Wit(command) => command.execute(),
        }
    }
}

/// Reads and parses a `.plinth` package file, naming the file in every error.
fn read_package(path: &std::path::Path) -> anyhow::Result<plinth_package::Package> {
    use anyhow::Context as _;
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read package {}", path.display()))?;
    plinth_package::Package::from_bytes(&bytes)
        .with_context(|| format!("{} is not a valid Plinth package", path.display()))
}

/// The engine of a local host (`plugin build`'s compile check, `plugin run`): a few calls at
/// once, with room for a component built by a language runtime (componentize-py: 14 to 38
/// core instances, StarlingMonkey: about 10).
fn local_engine() -> plinth_host::EngineConfig {
    plinth_host::EngineConfig {
        max_instances: 4,
        max_core_instances: 512,
        max_memories: 32,
        max_tables: 512,
        ..plinth_host::EngineConfig::default()
    }
}
