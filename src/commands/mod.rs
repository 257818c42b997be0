//! One module per subcommand. Each holds a clap struct whose doc comments are its `--help`
//! and an `execute` method; none of them holds business logic of its own.

pub mod admin;
pub mod audit;
pub mod database;
pub mod key;
pub mod keygen;
pub mod ledger;
pub mod marketplace;
pub mod plugin;
pub mod serve;
