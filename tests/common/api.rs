//! A JSON client for a `plinth serve` under test, and signed packages of the plugins.

#![allow(
    dead_code,
    reason = "shared by several test binaries; each uses part of it"
)]

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use plinth_package::{Package, SecretKey};
use plinth_test_artifacts::TestPlugin;
use serde_json::{Value, json};

/// A JSON client for one server.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    /// A client for the server at `base` (`http://127.0.0.1:PORT`).
    pub fn at(base: &str) -> Api {
        Api {
            base: base.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    pub async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value> {
        let (status, value) = self.send(method.clone(), path, token, body).await?;
        ensure!(
            (200..300).contains(&status),
            "{method} {path} answered {status}: {value}"
        );
        Ok(value)
    }

    /// Signs up and logs in; returns (account id, session token).
    pub async fn account(&self, email: &str) -> Result<(String, String)> {
        let password = "a long enough password";
        let account = self
            .ok(
                reqwest::Method::POST,
                "/v1/accounts",
                None,
                Some(json!({"email": email, "password": password, "name": email})),
            )
            .await?;
        let session = self
            .ok(
                reqwest::Method::POST,
                "/v1/tokens",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await?;
        Ok((
            account["id"].as_str().context("account id")?.to_owned(),
            session["token"].as_str().context("token")?.to_owned(),
        ))
    }
}

/// `plugin` packaged as it is in `plugins/`, signed by `key`, written to `dir`.
pub fn signed_package(dir: &Path, plugin: &TestPlugin, key: &SecretKey) -> Result<PathBuf> {
    let manifest = std::fs::read_to_string(Path::new(plugin.dir).join("plinth.toml"))?;
    let wasm = std::fs::read(plugin.wasm)?;
    let readme = format!("# {}\n", plugin.name);
    let mut package = Package::new(manifest, wasm, Some(readme), None)?;
    package.sign(key);
    let path = dir.join(package.file_name());
    package.write_to(&path)?;
    Ok(path)
}

/// `plugin`'s `plinth.toml` with the top-level `fields` (e.g. `("version", "0.2.0")`) given
/// new string values and `extra` appended (to `[permissions]`, the examples' last table).
fn rewritten_manifest(plugin: &TestPlugin, fields: &[(&str, &str)], extra: &str) -> Result<String> {
    let text = std::fs::read_to_string(Path::new(plugin.dir).join("plinth.toml"))?;
    let mut manifest = String::new();
    for line in text.lines() {
        let field = fields
            .iter()
            .find(|(name, _)| line.starts_with(&format!("{name} = ")));
        match field {
            Some((name, value)) => manifest.push_str(&format!("{name} = \"{value}\"\n")),
            None => {
                manifest.push_str(line);
                manifest.push('\n');
            }
        }
    }
    manifest.push_str(extra);
    manifest.push('\n');
    Ok(manifest)
}

/// A package of `plugin`'s component with `manifest`, signed by `key` when one is given,
/// written to `dir`.
fn write_package(
    dir: &Path,
    plugin: &TestPlugin,
    manifest: String,
    key: Option<&SecretKey>,
) -> Result<PathBuf> {
    let mut package = Package::new(manifest, std::fs::read(plugin.wasm)?, None, None)?;
    if let Some(key) = key {
        package.sign(key);
    }
    let path = dir.join(package.file_name());
    package.write_to(&path)?;
    Ok(path)
}

/// `plugin` as `version`, with `extra` appended to its `[permissions]`, signed by `key`,
/// written to `dir`.
pub fn versioned_package(
    dir: &Path,
    plugin: &TestPlugin,
    key: &SecretKey,
    version: &str,
    extra: &str,
) -> Result<PathBuf> {
    let manifest = rewritten_manifest(plugin, &[("version", version)], extra)?;
    write_package(dir, plugin, manifest, Some(key))
}

/// `plugin` under id `id`, signed by `key`, written to `dir`.
pub fn renamed_package(
    dir: &Path,
    plugin: &TestPlugin,
    key: &SecretKey,
    id: &str,
) -> Result<PathBuf> {
    let manifest = rewritten_manifest(plugin, &[("id", id)], "")?;
    write_package(dir, plugin, manifest, Some(key))
}

/// `plugin`'s component under id `id` and display name `name`, billed `amount` cents of USD a
/// month, signed by `key` when one is given, written to `dir`.
pub fn paid_package(
    dir: &Path,
    plugin: &TestPlugin,
    (id, name): (&str, &str),
    amount: u64,
    key: Option<&SecretKey>,
) -> Result<PathBuf> {
    let pricing =
        format!("\n[pricing]\nmodel = \"monthly\"\namount = {amount}\ncurrency = \"USD\"");
    let manifest = rewritten_manifest(plugin, &[("id", id), ("name", name)], &pricing)?;
    write_package(dir, plugin, manifest, key)
}

impl Api {
    /// Signs up `email`, creates publisher `namespace` and registers a new signing key with
    /// it; returns (session token, secret key).
    pub async fn developer(&self, email: &str, namespace: &str) -> Result<(String, SecretKey)> {
        let (_, token) = self.account(email).await?;
        self.ok(
            reqwest::Method::POST,
            "/v1/publishers",
            Some(&token),
            Some(json!({"namespace": namespace, "name": namespace})),
        )
        .await?;
        let key = SecretKey::generate()?;
        self.register_key(&token, namespace, &key).await?;
        Ok((token, key))
    }

    /// Registers `key` to publisher `namespace` as `token`, proving possession as
    /// `plinth key register` does (a challenge, signed by the key); the registered key.
    pub async fn register_key(
        &self,
        token: &str,
        namespace: &str,
        key: &SecretKey,
    ) -> Result<Value> {
        let keys = format!("/v1/publishers/{namespace}/keys");
        let public_key = key.public_key().to_string();
        let issued = self
            .ok(
                reqwest::Method::POST,
                &format!("{keys}/challenges"),
                Some(token),
                Some(json!({"public_key": public_key})),
            )
            .await?;
        let challenge = issued["challenge"].as_str().unwrap_or_default();
        self.ok(
            reqwest::Method::POST,
            &keys,
            Some(token),
            Some(json!({
                "public_key": public_key,
                "challenge": challenge,
                "signature": key.prove_possession(namespace, challenge).to_string(),
            })),
        )
        .await
    }

    /// Submits the package at `path` as `developer`; the id of the submission, which must
    /// have passed validation and be waiting for review.
    pub async fn submit(&self, path: &Path, developer: &str) -> Result<String> {
        let response = self
            .client
            .post(format!("{}/v1/submissions", self.base))
            .bearer_auth(developer)
            .header("content-type", "application/octet-stream")
            .body(std::fs::read(path)?)
            .send()
            .await?;
        let status = response.status();
        let submission: Value = response.json().await?;
        ensure!(
            status == 201 && submission["status"] == "in_review",
            "submission: {status} {submission}"
        );
        Ok(submission["id"]
            .as_str()
            .context("submission id")?
            .to_owned())
    }

    /// Publishes the package at `path` as the developer and has `reviewer` approve it.
    pub async fn publish_and_approve(
        &self,
        path: &Path,
        developer: &str,
        reviewer: &str,
    ) -> Result<()> {
        let id = self.submit(path, developer).await?;
        self.ok(
            reqwest::Method::POST,
            &format!("/v1/submissions/{id}/decision"),
            Some(reviewer),
            Some(json!({"decision": "approve", "reason": "Reviewed in a test."})),
        )
        .await?;
        Ok(())
    }
}

impl Api {
    /// Creates tenant `slug` as `token` (its owner from then on); `plan` needs an operator.
    pub async fn tenant(&self, token: &str, slug: &str, plan: Option<&str>) -> Result<Value> {
        let mut body = json!({"slug": slug, "name": slug});
        if let Some(plan) = plan {
            body["plan"] = json!(plan);
        }
        self.ok(
            reqwest::Method::POST,
            "/v1/tenants",
            Some(token),
            Some(body),
        )
        .await
    }

    /// Installs `version` of `plugin` (its latest if `None`) into `tenant` as `admin`,
    /// consenting to the permissions the catalog shows for it; the fields of `extra` (e.g.
    /// `config`, `update_policy`) go into the request too. The install as answered.
    pub async fn install(
        &self,
        admin: &str,
        tenant: &str,
        plugin: &str,
        version: Option<&str>,
        extra: Value,
    ) -> Result<Value> {
        let version = match version {
            Some(version) => version.to_owned(),
            None => self
                .ok(
                    reqwest::Method::GET,
                    &format!("/v1/plugins/{plugin}"),
                    None,
                    None,
                )
                .await?["latest_version"]
                .as_str()
                .context("latest_version")?
                .to_owned(),
        };
        let shown = self
            .ok(
                reqwest::Method::GET,
                &format!("/v1/plugins/{plugin}/versions/{version}"),
                None,
                None,
            )
            .await?;
        let mut body = json!({
            "plugin": plugin, "version": version,
            "permissions_digest": shown["permissions_digest"],
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        self.ok(
            reqwest::Method::POST,
            &format!("/v1/tenants/{tenant}/installs"),
            Some(admin),
            Some(body),
        )
        .await
    }

    /// A new API key of `tenant`, created by `admin`.
    pub async fn api_key(&self, admin: &str, tenant: &str) -> Result<String> {
        let key = self
            .ok(
                reqwest::Method::POST,
                &format!("/v1/tenants/{tenant}/api-keys"),
                Some(admin),
                Some(json!({"name": "backend"})),
            )
            .await?;
        Ok(key["key"].as_str().context("api key")?.to_owned())
    }
}

impl Api {
    /// The id of `tenant`'s subscription to `plugin`, as `admin` sees it.
    pub async fn subscription(&self, admin: &str, tenant: &str, plugin: &str) -> Result<String> {
        let subscriptions = self
            .ok(
                reqwest::Method::GET,
                &format!("/v1/tenants/{tenant}/subscriptions"),
                Some(admin),
                None,
            )
            .await?;
        Ok(subscriptions["items"]
            .as_array()
            .and_then(|items| items.iter().find(|s| s["plugin_id"] == plugin))
            .and_then(|s| s["id"].as_str())
            .with_context(|| format!("no subscription to {plugin}: {subscriptions}"))?
            .to_owned())
    }

    /// Tells the billing webhook, signed with `secret` as the processor signs it, that invoice
    /// `invoice` of `subscription` was paid: `amount` cents of USD, charge `charge`.
    pub async fn invoice_paid(
        &self,
        secret: &str,
        subscription: &str,
        invoice: &str,
        amount: u64,
        charge: &str,
    ) -> Result<()> {
        let now = plinth_marketplace::clock::now_ms() / 1000;
        let event = json!({
            "id": format!("evt_{invoice}"), "object": "event", "type": "invoice.paid",
            "created": now,
            "data": {"object": {
                "id": invoice, "object": "invoice", "subscription": subscription,
                "amount_paid": amount, "currency": "usd", "charge": charge, "status": "paid",
            }},
        });
        let payload = serde_json::to_vec(&event)?;
        let signature =
            plinth_marketplace::ledger::webhook::signature_header(secret, now, &payload)?;
        let response = self
            .client
            .post(format!("{}/v1/billing/webhook", self.base))
            .header("content-type", "application/json")
            .header("Stripe-Signature", signature)
            .body(payload)
            .send()
            .await?;
        let status = response.status();
        ensure!(
            status.is_success(),
            "webhook: {status} {}",
            response.text().await?
        );
        Ok(())
    }
}
