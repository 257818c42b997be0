//! `plinth ledger`: the revenue-share ledger, read from the marketplace's database.

use anyhow::Context as _;
use plinth_marketplace::ledger::verify;

use super::database::{DatabaseArgs, print_verdict, runtime};

/// Check the revenue-share ledger.
#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {
    Verify(VerifyCommand),
}

impl LedgerCommand {
    /// Runs the subcommand.
    pub fn execute(self) -> anyhow::Result<()> {
        match self {
            LedgerCommand::Verify(command) => command.execute(),
        }
    }
}

/// Check every invariant of the ledger: each transaction balances per currency, no posting is
/// orphaned, cached balances equal the sums of postings, no payout exceeded the available
/// balance; and, re-derived from what is recorded of each charge (its split policy and
/// lifetime, fee, refunds, disputes and release) and each payout, what every account should
/// hold, compared posting by posting and balance by balance. Exits 0 only if all hold;
/// otherwise names the first violation (for a charge: the charge, the account, and what it
/// should and does hold).
#[derive(Debug, clap::Args)]
pub struct VerifyCommand {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

impl VerifyCommand {
    /// Verifies the ledger.
    pub fn execute(self) -> anyhow::Result<()> {
        runtime()?.block_on(async {
            let db = self.database.open().await?;
            let outcome = verify::verify(&db).await;
            db.close().await;
            print_verdict(
                outcome.context("cannot read the ledger")?,
                self.json,
                |report| {
                    format!(
                        "ledger sound: {} transactions, {} postings, {} accounts, {} charges, {} payouts",
                        report.transactions,
                        report.postings,
                        report.accounts,
                        report.charges,
                        report.payouts
                    )
                },
                |violation| format!("ledger broken: {violation}"),
            )
        })
    }
}
