//! The `plinth` command line: one binary for plugin developers, reviewers, tenants and
//! operators. Each subcommand lives in its own file under `commands/`; this file only parses
//! the arguments, sets up logging and dispatches.

use std::process::ExitCode;

use clap::Parser;

mod commands;

/// Plinth: signed, versioned WebAssembly plugins with declared permissions, run in per-tenant
/// sandboxes and distributed through a marketplace.
#[derive(Debug, Parser)]
#[command(name = "plinth", version, propagate_version = true)]
enum Plinth {
    Keygen(commands::keygen::KeygenCommand),
    #[command(subcommand)]
    Plugin(commands::plugin::PluginCommand),
}

impl Plinth {
    fn execute(self) -> anyhow::Result<()> {
        match self {
            Plinth::Keygen(command) => command.execute(),
            Plinth::Plugin(command) => command.execute(),
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PLINTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    match Plinth::parse().execute() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the error and its causes joined by ": ".
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
