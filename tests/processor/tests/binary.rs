//! The standalone double (`plinth-processor-double`), as local development runs it: it says
//! where it listens, refuses a request without the secret key, and serves one with it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};

/// Kills the child when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_serves_the_api_behind_its_key() -> Result<()> {
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_plinth-processor-double"))
            .args(["--listen", "127.0.0.1:0", "--secret-key", "sk_test_bin"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let stdout = child.0.stdout.take().context("stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let base = line
        .trim()
        .strip_prefix("processor double: listening on ")
        .with_context(|| format!("first line: {line:?}"))?
        .to_owned();
    let client = reqwest::Client::new();
    let refused = client
        .post(format!("{base}/v1/customers"))
        .form(&[("name", "Acme")])
        .send()
        .await?;
    ensure!(
        refused.status() == 401,
        "without the key: {}",
        refused.status()
    );
    let made = client
        .post(format!("{base}/v1/customers"))
        .bearer_auth("sk_test_bin")
        .header("Idempotency-Key", "bin-1")
        .form(&[("name", "Acme")])
        .send()
        .await?;
    ensure!(made.status() == 200, "with the key: {}", made.status());
    let body: serde_json::Value = made.json().await?;
    ensure!(
        body["id"].as_str().is_some_and(|id| id.starts_with("cus_")),
        "{body}"
    );
    Ok(())
}
