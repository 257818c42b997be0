//! `plinth key …`: a signing key's standing with a marketplace.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::commands::keygen::read_secret_key;
use crate::commands::marketplace;

/// Register signing keys with a marketplace publisher.
#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    Register(RegisterCommand),
}

impl KeyCommand {
    /// Runs the chosen subcommand.
    pub fn execute(self) -> anyhow::Result<()> {
        match self {
            KeyCommand::Register(command) => command.execute(),
        }
    }
}

/// Register a signing key with a publisher, proving you hold it.
///
/// Asks the marketplace for a challenge for this publisher and key, signs it with the secret
/// key (which never leaves this machine) and registers the public key with the signature.
/// Prints the registered key as JSON.
#[derive(Debug, clap::Args)]
pub struct RegisterCommand {
    /// The publisher namespace to register the key to.
    #[arg(long, value_name = "NS")]
    publisher: String,
    /// The secret key written by `plinth keygen`.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The marketplace's base URL, e.g. `https://marketplace.example.com`.
    #[arg(long, value_name = "URL", env = "PLINTH_SERVER")]
    server: String,
    /// A publisher member's token.
    #[arg(long, value_name = "T", env = "PLINTH_TOKEN", hide_env_values = true)]
    token: String,
}

impl RegisterCommand {
    /// Asks for a challenge, signs it and registers the key.
    pub fn execute(self) -> anyhow::Result<()> {
        let secret = read_secret_key(&self.key)?;
        let registered = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
            .block_on(self.register(&secret))?;
        println!("{}", serde_json::to_string_pretty(&registered)?);
        Ok(())
    }

    async fn register(&self, secret: &plinth_package::SecretKey) -> anyhow::Result<Value> {
        let public_key = secret.public_key().to_string();
        let keys = format!(
            "{}/v1/publishers/{}/keys",
            self.server.trim_end_matches('/'),
            self.publisher
        );
        let issued = self
            .post(
                &format!("{keys}/challenges"),
                json!({ "public_key": public_key }),
            )
            .await?;
        let Some(challenge) = issued["challenge"].as_str() else {
            bail!("the marketplace answered a challenge without one: {issued}");
        };
        let signature = secret.prove_possession(&self.publisher, challenge);
        self.post(
            &keys,
            json!({
                "public_key": public_key,
                "challenge": challenge,
                "signature": signature.to_string(),
            }),
        )
        .await
    }

    /// POSTs `body` to `url`; the answer, or an error naming the marketplace's refusal.
    async fn post(&self, url: &str, body: Value) -> anyhow::Result<Value> {
        let request = reqwest::Client::new()
            .post(url)
            .bearer_auth(&self.token)
            .json(&body);
        let (status, answer) = marketplace::send(request, url).await?;
        if !status.is_success() {
            return Err(marketplace::refused("the key", status, &answer));
        }
        Ok(answer)
    }
}
