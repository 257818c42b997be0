//! The `plinth` command line: one binary for plugin developers, reviewers, tenants and
//! operators. Each subcommand lives in its own file under `commands/`; this file only parses
//! the arguments, sets up logging and dispatches.

use std::process::ExitCode;

use clap::Parser;

mod commands;

/// mimalloc rather than the system allocator: the event path allocates per request on every
/// thread, and glibc's malloc spent an eighth of its time there (`perf`, 16 connections);
/// with mimalloc `marketplace/benches/event_path.rs` served 14,700 → 21,500 events/s. Built
/// without transparent huge pages (`no_thp`, see the workspace's `Cargo.toml`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Plinth: signed, versioned WebAssembly plugins with declared permissions, run in per-tenant
/// sandboxes and distributed through a marketplace.
#[derive(Debug, Parser)]
#[command(name = "plinth", version, propagate_version = true)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once at start; its size costs nothing"
)]
enum Plinth {
    Serve(commands::serve::ServeCommand),
    #[command(subcommand)]
    Admin(commands::admin::AdminCommand),
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    Keygen(commands::keygen::KeygenCommand),
    #[command(subcommand)]
    Key(commands::key::KeyCommand),
    #[command(subcommand)]
    Ledger(commands::ledger::LedgerCommand),
    #[command(subcommand)]
    Plugin(commands::plugin::PluginCommand),
}

impl Plinth {
    fn execute(self) -> anyhow::Result<()> {
        match self {
            Plinth::Serve(command) => command.execute(),
            Plinth::Admin(command) => command.execute(),
            Plinth::Audit(command) => command.execute(),
            Plinth::Keygen(command) => command.execute(),
            Plinth::Key(command) => command.execute(),
            Plinth::Ledger(command) => command.execute(),
            Plinth::Plugin(command) => command.execute(),
        }
    }
}

fn main() -> ExitCode {
    let command = Plinth::parse();
    // A server reports what it does; a one-shot command only what goes wrong.
    let (default_filter, json) = match &command {
        Plinth::Serve(serve) => (
            "info",
            serve.log_format() == commands::serve::LogFormat::Json,
        ),
        // PLINTH_LOG_FORMAT=json: one JSON object a line, for log collectors.
        _ => (
            "warn",
            std::env::var("PLINTH_LOG_FORMAT").is_ok_and(|format| format == "json"),
        ),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PLINTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }

    match command.execute() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the error and its causes joined by ": ".
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
