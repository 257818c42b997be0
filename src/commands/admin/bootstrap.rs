//! `plinth admin bootstrap`: the first operator and its API token.

use anyhow::Context as _;

use crate::commands::database::{DatabaseArgs, runtime};

/// Create the first operator and print its API token on stdout.
///
/// Refuses if an operator exists. Keep the token: it is shown once (only its hash is stored).
#[derive(Debug, clap::Args)]
pub struct BootstrapCommand {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The operator account's email.
    #[arg(long, default_value = "operator@plinth.local")]
    email: String,
    /// The operator account's display name.
    #[arg(long, default_value = "Operator")]
    name: String,
    /// Read a password from stdin (its first line), so the operator can also log in to the
    /// web console; without it the operator acts only through the printed API token.
    #[arg(long)]
    password_stdin: bool,
}

impl BootstrapCommand {
    /// Creates the operator and prints the token.
    pub fn execute(self) -> anyhow::Result<()> {
        let password = if self.password_stdin {
            Some(read_password()?)
        } else {
            None
        };
        runtime()?.block_on(async {
            let db = self.database.open_with_audit_key(true).await?;
            let made = plinth_marketplace::accounts::bootstrap_operator(
                &db,
                &self.email,
                &self.name,
                password.as_deref(),
            )
            .await;
            db.close().await;
            let made = made.context("cannot bootstrap")?;
            eprintln!(
                "created operator {} ({}); its API token follows, shown once",
                made.user.email, made.user.id
            );
            println!("{}", made.token);
            Ok(())
        })
    }
}

/// The first line of stdin, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(
        !password.is_empty(),
        "--password-stdin: stdin held no password"
    );
    Ok(password.to_owned())
}
