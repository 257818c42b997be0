//! What the commands that call a marketplace share: sending one request, reading its JSON
//! answer, and telling a refusal in one line.

use anyhow::Context as _;
use serde_json::Value;

/// Sends `request` (to `url`); the answer's status and JSON body (`null` when it has none).
pub async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the marketplace at {url}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .context("the marketplace's answer was cut off")?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// The marketplace's refusal of `what` (`{error:{code, message}}` with `status`) as an error.
pub fn refused(what: &str, status: reqwest::StatusCode, body: &Value) -> anyhow::Error {
    let code = body["error"]["code"].as_str().unwrap_or("http_error");
    let message = body["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| status.to_string());
    anyhow::anyhow!("the marketplace refused {what} ({status}, {code}): {message}")
}
