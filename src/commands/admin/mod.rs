//! `plinth admin`: operator tasks run against the marketplace's storage directly.

pub mod backup;
pub mod bootstrap;
pub mod restore;
pub mod rotate_key;

/// Operator tasks on the marketplace's storage.
#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    Bootstrap(bootstrap::BootstrapCommand),
    Backup(backup::BackupCommand),
    Restore(restore::RestoreCommand),
    RotateKey(rotate_key::RotateKeyCommand),
}

impl AdminCommand {
    /// Runs the subcommand.
    pub fn execute(self) -> anyhow::Result<()> {
        match self {
            AdminCommand::Bootstrap(command) => command.execute(),
            AdminCommand::Backup(command) => command.execute(),
            AdminCommand::Restore(command) => command.execute(),
            AdminCommand::RotateKey(command) => command.execute(),
        }
    }
}
