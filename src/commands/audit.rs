//! `plinth audit`: the audit log, read from the marketplace's database.

use anyhow::Context as _;
use plinth_marketplace::audit::chain;

use super::database::{DatabaseArgs, print_verdict, runtime};

/// Check the audit log.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    Verify(VerifyCommand),
}

impl AuditCommand {
    /// Runs the subcommand.
    pub fn execute(self) -> anyhow::Result<()> {
        match self {
            AuditCommand::Verify(command) => command.execute(),
        }
    }
}

/// Check that the audit log is the one written: every entry's hash matches its contents and
/// names the entry before it, every entry's seal matches its hash under the audit key
/// (`PLINTH_AUDIT_KEY`, else `DIR/audit.key`), and none is missing at the end. Exits 0 only if
/// it is sound; otherwise names the first entry where the chain breaks.
#[derive(Debug, clap::Args)]
pub struct VerifyCommand {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

impl VerifyCommand {
    /// Verifies the chain.
    pub fn execute(self) -> anyhow::Result<()> {
        runtime()?.block_on(async {
            let db = self.database.open_with_audit_key(false).await?;
            let outcome = chain::verify(&db).await;
            db.close().await;
            print_verdict(
                outcome.context("cannot read the audit log")?,
                self.json,
                |report| {
                    format!(
                        "audit log sound: {} entries ({} from before seals), head {}",
                        report.entries, report.unsealed_entries, report.head_hash
                    )
                },
                |violation| format!("audit log broken at {violation}"),
            )
        })
    }
}
