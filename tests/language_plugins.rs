//! Plugins written in JavaScript/TypeScript and Python, as their authors make and ship them:
//! the SDKs' own tests and generated bindings, every example in `plugins/js` and
//! `plugins/python` built by `plinth plugin build` through its `[build]` command and run by
//! `plinth plugin run`, scaffolds from `plinth plugin new --lang`, and the examples published,
//! approved, installed and called through `plinth serve` (events, kv across calls, outbound
//! HTTP to a loopback server on the allowlist, a host off it, incoming HTTP, typed errors) on
//! SQLite and PostgreSQL.
//!
//! The toolchains (componentize-js, componentize-py) are installed from the SDKs' lockfiles
//! once per run ([`common::sdks`]).

mod common {
    pub mod api;
    pub mod cli;
    pub mod receiver;
    pub mod sdks;
    pub mod server;
}

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use plinth_package::{Manifest, Package};
use plinth_test_support::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};

use common::api::Api;
use common::receiver::Receiver;
use common::sdks::{compiled_data_dir, example, repo, run, signed_copy, toolchains};
use common::server::{PlinthServer, bootstrap};

/// The languages and their directories under `plugins/`.
const LANGUAGES: [&str; 2] = ["js", "python"];

/// `plinth ARGS` in `cwd` with the toolchains on `PATH`; the whole output and whether it
/// succeeded.
fn plinth(cwd: &Path, args: &[&str]) -> Result<(bool, String, String)> {
    let output = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .current_dir(cwd)
        .env("PATH", toolchains()?.path())
        .env_remove("PLINTH_DATABASE_URL")
        .args(args)
        .output()?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// `plinth plugin run PKG --event TOPIC --payload JSON` with the examples' compiled cache
/// (and kv) in `data_dir`.
fn run_event(
    package: &Path,
    topic: &str,
    payload: &str,
    data_dir: &Path,
) -> Result<(bool, String, String)> {
    plinth(
        &repo(),
        &[
            "plugin",
            "run",
            &package.display().to_string(),
            "--event",
            topic,
            "--payload",
            payload,
            "--data-dir",
            &data_dir.display().to_string(),
        ],
    )
}

/// A fresh data dir holding the examples' compiled components (hard links: cache entries
/// are replaced by renames, never written in place), so running them does not compile again.
fn data_dir_with_compiled(parent: &Path) -> Result<PathBuf> {
    let data = parent.join("data");
    let compiled = data.join("compiled");
    std::fs::create_dir_all(&compiled)?;
    if let Ok(entries) = std::fs::read_dir(compiled_data_dir().join("compiled")) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "cwasm") {
                let link = compiled.join(entry.file_name());
                if std::fs::hard_link(&path, &link).is_err() {
                    std::fs::copy(&path, &link)?;
                }
            }
        }
    }
    Ok(data)
}

/// The id in the example's `plinth.toml`.
fn example_id(dir: &str) -> Result<String> {
    let text = std::fs::read_to_string(repo().join("plugins").join(dir).join("plinth.toml"))?;
    Ok(Manifest::parse(&text)?.plugin.id.to_string())
}

#[test]
fn the_sdks_own_tests_pass_and_the_js_bindings_match_wit() -> Result<()> {
    let toolchains = toolchains()?;
    let js = repo().join("sdk/js");
    run(Command::new("npm").args(["test"]).current_dir(&js))?;
    // The checked-in bindings are what `wit/` generates today.
    run(Command::new("npm")
        .args(["run", "bindings:check"])
        .current_dir(&js))?;
    // The SDK's declared types agree with its code and the generated bindings.
    run(Command::new("npm")
        .args(["run", "typecheck"])
        .current_dir(&js))?;
    run(Command::new(toolchains.python_bin.join("python3"))
        .args(["-m", "unittest", "discover", "-s", "tests"])
        .current_dir(repo().join("sdk/python")))?;
    Ok(())
}

#[test]
fn examples_build_and_run_locally_with_typed_errors() -> Result<()> {
    for language in LANGUAGES {
        let work = tempfile::tempdir()?;
        let data = data_dir_with_compiled(work.path())?;

        let hello = example(&format!("{language}/hello"))?;
        let (ok, stdout, stderr) = run_event(&hello, "greet", "\"Ada\"", &data)?;
        ensure!(ok, "{language} hello failed: {stderr}");
        ensure!(
            stdout.trim() == "\"Hello, Ada!\"",
            "{language} hello said {stdout}"
        );
        ensure!(
            stderr.contains("greeting"),
            "{language} hello's log line is missing: {stderr}"
        );
        // A payload that is not a JSON string is the sender's mistake: a typed plugin error.
        let (ok, _, stderr) = run_event(&hello, "greet", "42", &data)?;
        ensure!(!ok, "{language} hello accepted 42");
        ensure!(
            stderr.contains("[plugin_error]") && stderr.contains("(invalid-payload)"),
            "{language} hello's refusal of 42 is not a typed invalid-payload error: {stderr}"
        );

        // The SDK's typed exception for a missing setting, thrown by the plugin, arrives as
        // the matching plugin error.
        let webhook = example(&format!("{language}/webhook-notify"))?;
        let (ok, _, stderr) = run_event(&webhook, "order.created", "{\"id\":1}", &data)?;
        ensure!(
            !ok && stderr.contains("(invalid-config)") && stderr.contains("webhook-url"),
            "{language} webhook-notify without its URL: {stderr}"
        );

        // kv persists across calls (the store lives in the data dir).
        let counter = example(&format!("{language}/counter"))?;
        for expected in [1, 2] {
            let (ok, stdout, stderr) = run_event(&counter, "count", "null", &data)?;
            ensure!(ok, "{language} counter failed: {stderr}");
            let output: Value = serde_json::from_str(&stdout)?;
            ensure!(
                output["count"] == expected,
                "{language} counter said {output}, not {expected}"
            );
        }

        // `inspect` shows what one instance takes and what made it.
        let (ok, stdout, stderr) = plinth(
            &repo(),
            &["plugin", "inspect", &hello.display().to_string(), "--json"],
        )?;
        ensure!(ok, "inspect failed: {stderr}");
        let inspection: Value = serde_json::from_str(&stdout)?;
        ensure!(
            inspection["core_instances"].as_u64().unwrap_or(0) > 1
                && inspection["initial_memory_bytes"].as_u64().unwrap_or(0) > 0
                && inspection["toolchain"]
                    .as_array()
                    .is_some_and(|tools| !tools.is_empty()),
            "{language} inspection: {inspection}"
        );
    }
    Ok(())
}

#[test]
fn a_new_plugin_in_typescript_or_python_builds_and_runs_as_scaffolded() -> Result<()> {
    for (language, name) in [("ts", "greeter-ts"), ("python", "greeter-py")] {
        let work = tempfile::tempdir()?;
        let id = format!("acme.{name}");
        let (ok, _, stderr) = plinth(
            work.path(),
            &["plugin", "new", &id, name, "--lang", language],
        )?;
        ensure!(ok, "plugin new --lang {language} failed: {stderr}");
        let dir = work.path().join(name);
        let package = work.path().join(format!("{id}.plinth"));
        let (ok, _, stderr) = plinth(
            &dir,
            &[
                "plugin",
                "build",
                ".",
                "--out",
                &package.display().to_string(),
            ],
        )?;
        ensure!(ok, "the {language} scaffold does not build: {stderr}");
        let (ok, stdout, stderr) =
            run_event(&package, "greet", "\"Grace\"", &dir.join("plinth-data"))?;
        ensure!(ok, "the {language} scaffold fails: {stderr}");
        ensure!(
            stdout.trim() == "\"Hello, Grace!\"",
            "the {language} scaffold said {stdout}"
        );
    }
    Ok(())
}

/// `plugins/<dir>` re-signed by `key` and, when `allow` is given, with its outbound HTTP
/// allowlist replaced by `allow` (the component is the same: its world imports HTTP either
/// way); written to `out`.
fn for_marketplace(
    dir: &str,
    key: &plinth_package::SecretKey,
    allow: Option<&str>,
    out: &Path,
) -> Result<PathBuf> {
    let built = Package::from_bytes(&std::fs::read(example(dir)?)?)?;
    let manifest = allow.map(|host| {
        built
            .manifest_toml
            .replace("hooks.example.com", host)
            .replace("\"examples.", "\"examples.loopback-")
    });
    signed_copy(&built, manifest, key, out)
}

async fn examples_through_serve(database: Option<TestDatabase>) -> Result<()> {
    toolchains()?;
    let work = tempfile::tempdir()?;
    let data = data_dir_with_compiled(work.path())?;
    let url = database.as_ref().map(TestDatabase::url);
    let (ok, operator, stderr) = bootstrap(&data, url.as_deref())?;
    ensure!(ok, "bootstrap failed: {stderr}");
    // The webhook receiver is on loopback: let plugins reach private addresses.
    let server =
        PlinthServer::start_with_env(&data, url.as_deref(), &[("PLINTH_ALLOW_PRIVATE_HTTP", "1")])?;
    let api = Api::at(&server.base);
    let (developer, key) = api.developer("dev@examples.example", "examples").await?;
    let receiver = Receiver::start().await?;

    let (_, admin) = api.account("admin@acme.example").await?;
    for language in LANGUAGES {
        // A tenant per language: the free plan's install limit holds one language's four.
        let tenant = format!("acme-{language}");
        api.tenant(&admin, &tenant, None).await?;
        let tenant_key = api.api_key(&admin, &tenant).await?;
        let hello = example_id(&format!("{language}/hello"))?;
        let counter = example_id(&format!("{language}/counter"))?;
        let echo = example_id(&format!("{language}/http-echo"))?;
        for dir in ["hello", "counter", "http-echo"] {
            let path = for_marketplace(&format!("{language}/{dir}"), &key, None, work.path())?;
            api.publish_and_approve(&path, &developer, &operator)
                .await?;
        }
        let webhook = for_marketplace(
            &format!("{language}/webhook-notify"),
            &key,
            Some("127.0.0.1"),
            work.path(),
        )?;
        let webhook_id = Package::from_bytes(&std::fs::read(&webhook)?)?
            .manifest
            .plugin
            .id
            .to_string();
        api.publish_and_approve(&webhook, &developer, &operator)
            .await?;

        let started = std::time::Instant::now();
        api.install(&admin, &tenant, &hello, None, json!({}))
            .await?;
        println!(
            "{language}: first install of {hello} answered in {} ms after approval",
            started.elapsed().as_millis()
        );
        api.install(&admin, &tenant, &counter, None, json!({}))
            .await?;
        api.install(&admin, &tenant, &echo, None, json!({})).await?;
        api.install(
            &admin,
            &tenant,
            &webhook_id,
            None,
            json!({"config": {"webhook-url": receiver.url}}),
        )
        .await?;

        let event = |topic: &'static str, payload: Value| {
            let api = api.clone();
            let tenant_key = tenant_key.clone();
            let events = format!("/v1/tenants/{tenant}/events");
            async move {
                api.send(
                    Method::POST,
                    &events,
                    Some(&tenant_key),
                    Some(json!({"topic": topic, "payload": payload})),
                )
                .await
            }
        };
        // Results are per install; find this language's.
        let result_of = |answered: &Value, plugin: &str| -> Value {
            answered["results"]
                .as_array()
                .and_then(|results| results.iter().find(|r| r["plugin"] == plugin))
                .cloned()
                .unwrap_or(Value::Null)
        };

        let (status, answered) = event("greet", json!("Ada")).await?;
        ensure!(status == 200, "greet: {status} {answered}");
        let greeted = result_of(&answered, &hello);
        ensure!(greeted["output"] == "Hello, Ada!", "{language}: {answered}");
        let (_, answered) = event("greet", json!(42)).await?;
        let refused = result_of(&answered, &hello);
        ensure!(
            refused["error"]["code"] == "plugin_error"
                && refused["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("(invalid-payload)")),
            "{language}: a bad payload is not a typed error: {refused}"
        );

        for expected in [1, 2, 3] {
            let (_, answered) = event("count", Value::Null).await?;
            let counted = result_of(&answered, &counter);
            ensure!(
                counted["output"]["count"] == expected,
                "{language}: kv across calls: {counted}, not {expected}"
            );
        }

        let before = receiver.hits().len();
        let (_, answered) = event("order.created", json!({"id": 7})).await?;
        let notified = result_of(&answered, &webhook_id);
        ensure!(
            notified["output"]["status"] == 200,
            "{language}: the webhook was not reached: {answered}"
        );
        let hits = receiver.hits();
        ensure!(
            hits.len() == before + 1 && hits[before].body.contains(r#""order":{"id":7}"#),
            "{language}: the receiver got {hits:?}"
        );
        // A host off the allowlist is refused by the host, which reports the refusal itself.
        api.ok(
            Method::PATCH,
            &format!("/v1/tenants/{tenant}/installs/{webhook_id}"),
            Some(&admin),
            Some(json!({"config": {"webhook-url": "http://192.0.2.1/elsewhere"}})),
        )
        .await?;
        let (_, answered) = event("order.created", json!({"id": 8})).await?;
        let denied = result_of(&answered, &webhook_id);
        ensure!(
            denied["error"]["code"] == "permission_denied"
                && denied["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("192.0.2.1")),
            "{language}: a denied host is not a typed permission_denied naming it: {denied}"
        );
        api.ok(
            Method::PATCH,
            &format!("/v1/tenants/{tenant}/installs/{webhook_id}"),
            Some(&admin),
            Some(json!({"config": {"webhook-url": receiver.url}})),
        )
        .await?;

        let echoed = api
            .client
            .post(format!("{}/p/{tenant}/{echo}/hello?x=1", api.base))
            .bearer_auth(&tenant_key)
            .body("hi")
            .send()
            .await?;
        ensure!(
            echoed.status() == 200,
            "{language}: echo {}",
            echoed.status()
        );
        let echoed: Value = echoed.json().await?;
        ensure!(
            echoed == json!({"method": "POST", "path": "/hello?x=1", "body": "hi"}),
            "{language}: echo answered {echoed}"
        );
        let failed = api
            .client
            .get(format!("{}/p/{tenant}/{echo}/fail", api.base))
            .bearer_auth(&tenant_key)
            .send()
            .await?;
        ensure!(
            failed.status() == 500,
            "{language}: a failing handler answered {}",
            failed.status()
        );
    }
    let status = server.stop()?;
    ensure!(status.success(), "plinth serve exited with {status}");
    common::cli::verify_audit_and_ledger(&data, url.as_deref())
        .context("audit and ledger after the journey")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_publish_install_and_run_through_serve_on_sqlite() -> Result<()> {
    examples_through_serve(None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_publish_install_and_run_through_serve_on_postgres() -> Result<()> {
    examples_through_serve(Some(TestDatabase::postgres("language_plugins").await?)).await
}
