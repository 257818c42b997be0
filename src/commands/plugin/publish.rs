//! `plinth plugin publish`: submit a package to a marketplace and show the validation report.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::commands::marketplace;

/// Submit a package to a marketplace for review and print its validation report.
///
/// Exits non-zero if the marketplace refuses the upload or validation rejects the package.
#[derive(Debug, clap::Args)]
pub struct PublishCommand {
    /// The signed `.plinth` package to submit.
    #[arg(value_name = "PKG")]
    package: PathBuf,
    /// The marketplace's base URL, e.g. `https://marketplace.example.com`.
    #[arg(long, value_name = "URL", env = "PLINTH_SERVER")]
    server: String,
    /// A publisher member's token or a publisher API key.
    #[arg(long, value_name = "T", env = "PLINTH_TOKEN", hide_env_values = true)]
    token: String,
    /// Print the marketplace's JSON answer instead of text.
    #[arg(long)]
    json: bool,
}

impl PublishCommand {
    /// Uploads the package and reports the answer.
    pub fn execute(self) -> anyhow::Result<()> {
        let bytes = std::fs::read(&self.package)
            .with_context(|| format!("cannot read package {}", self.package.display()))?;
        let (status, body) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
            .block_on(self.upload(bytes))?;
        if !status.is_success() {
            return Err(marketplace::refused("the package", status, &body));
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&body)?);
        } else {
            print!("{}", to_text(&body));
        }
        let outcome = body["status"].as_str().unwrap_or("unknown");
        if outcome == "rejected_by_validation" {
            let errors = findings(&body)
                .iter()
                .filter(|f| f["severity"] == "error")
                .count();
            bail!(
                "validation rejected the package with {errors} error(s); fix them and submit a new version"
            );
        }
        Ok(())
    }

    async fn upload(&self, bytes: Vec<u8>) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let url = format!("{}/v1/submissions", self.server.trim_end_matches('/'));
        let request = reqwest::Client::new()
            .post(&url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        marketplace::send(request, &url).await
    }
}

fn findings(body: &Value) -> Vec<Value> {
    body["report"]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The answer as lines for people.
fn to_text(body: &Value) -> String {
    let text = |key: &str| body[key].as_str().unwrap_or("?").to_owned();
    let mut out = format!(
        "submission {} of {} {}: {}\n",
        text("id"),
        text("plugin"),
        text("version"),
        text("status")
    );
    if let Some(position) = body["queue_position"].as_i64() {
        out.push_str(&format!("queue position: {position}\n"));
    }
    if let Some(seconds) = body["median_review_seconds"].as_i64() {
        out.push_str(&format!("median review time: {seconds} s\n"));
    }
    let findings = findings(body);
    if findings.is_empty() {
        out.push_str("validation: no findings\n");
    }
    for finding in findings {
        out.push_str(&format!(
            "{}[{}]: {}\n",
            finding["severity"].as_str().unwrap_or("?"),
            finding["code"].as_str().unwrap_or("?"),
            finding["message"].as_str().unwrap_or("")
        ));
    }
    out
}
