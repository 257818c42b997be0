//! Submitting packages over HTTP, on both backends: checks, idempotence, races, validation.

mod common;
mod publishing;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::Settings;
use plinth_package::{Package, SecretKey};
use plinth_test_artifacts::{HELLO, UNDECLARED_HTTP};
use plinth_test_support::TestDatabase;
use reqwest::StatusCode;
use serde_json::json;

use common::TestApp;
use publishing::{Dev, count, developer, hello, manifest, package_with, submit, submit_ok};

on_both_backends!(
    a_signed_package_enters_review,
    refusals_store_nothing,
    versions_only_go_up,
    the_same_upload_twice_is_the_same_submission,
    same_version_other_content_is_409,
    concurrent_submissions_of_a_version_one_wins,
    undeclared_import_is_rejected_by_validation,
    only_members_and_reviewers_see_a_submission,
    hidden_characters_and_overlong_fields_are_refused,
    a_lookalike_plugin_id_goes_to_review_with_a_finding,
);

on_both_backends_with_host!(a_component_the_host_cannot_link_is_rejected_as_does_not_compile);

async fn nothing_stored(app: &TestApp) -> Result<()> {
    let rows = (
        count(app, "submissions").await?,
        count(app, "artifacts").await?,
    );
    ensure!(rows == (0, 0), "rows were stored: {rows:?}");
    Ok(())
}

async fn a_signed_package_enters_review(app: TestApp) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "acme").await?;
    let reply = submit(&app, &dev.token, hello(&dev, "1.0.0")?)
        .await?
        .expect(StatusCode::CREATED)?;
    let body = &reply.body;
    ensure!(
        body["plugin"] == "acme.hello"
            && body["version"] == "1.0.0"
            && body["status"] == "in_review"
            && body["queue_position"] == 1
            && body["median_review_seconds"].is_null()
            && body["report"]["findings"].is_array()
            && body["decision"].is_null(),
        "{body}"
    );
    let id = body["id"].as_str().context("id")?;
    let fetched = app
        .get(&format!("/v1/submissions/{id}"), Some(&dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        fetched.body["status"] == "in_review" && fetched.body["queue_position"] == 1,
        "{}",
        fetched.body
    );
    // A second plugin queues behind it.
    let second = package_with(&HELLO, "acme.hello-two", "0.1.0", "", None, Some(&dev.key))?;
    let reply = submit(&app, &dev.token, second)
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(reply.body["queue_position"] == 2, "{}", reply.body);
    let listed = app
        .get("/v1/publishers/acme/submissions", Some(&dev.token))
        .await?
        .expect(StatusCode::OK)?;
    let items = listed.body["items"].as_array().context("items")?;
    ensure!(
        items.len() == 2 && items[0]["plugin"] == "acme.hello-two",
        "newest first: {}",
        listed.body
    );
    Ok(())
}

async fn refusals_store_nothing(app: TestApp) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "acme").await?;
    let other = developer(&app, "bob@example.com", "globex").await?;
    // Another publisher's namespace.
    submit(&app, &dev.token, hello(&other, "1.0.0")?)
        .await?
        .expect_error(StatusCode::FORBIDDEN, "wrong_publisher")?;
    // A namespace nobody has.
    let nobody = package_with(&HELLO, "nobody.hello", "1.0.0", "", None, Some(&dev.key))?;
    submit(&app, &dev.token, nobody)
        .await?
        .expect_error(StatusCode::FORBIDDEN, "wrong_publisher")?;
    // Unsigned.
    let unsigned = package_with(&HELLO, "acme.hello", "1.0.0", "", None, None)?;
    submit(&app, &dev.token, unsigned)
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "signature_missing")?;
    // Signed by a key the publisher never registered (bob's key is globex's).
    let foreign = package_with(&HELLO, "acme.hello", "1.0.0", "", None, Some(&other.key))?;
    submit(&app, &dev.token, foreign)
        .await?
        .expect_error(StatusCode::FORBIDDEN, "signature_unknown_key")?;
    let stranger = SecretKey::generate()?;
    let unknown = package_with(&HELLO, "acme.hello", "1.0.0", "", None, Some(&stranger))?;
    submit(&app, &dev.token, unknown)
        .await?
        .expect_error(StatusCode::FORBIDDEN, "signature_unknown_key")?;
    // Content changed after signing: the signature no longer covers it.
    let mut tampered = plinth_package::Package::from_bytes(&hello(&dev, "1.0.0")?)?;
    tampered.readme = Some("changed after signing".to_owned());
    submit(&app, &dev.token, tampered.to_bytes()?)
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "signature_digest_mismatch")?;
    // Not a package at all.
    let garbage = submit(&app, &dev.token, b"definitely not gzip".to_vec())
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_package")?;
    ensure!(
        garbage.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("not a valid Plinth package"),
        "{}",
        garbage.body
    );
    // No token.
    app.send_bytes(
        reqwest::Method::POST,
        "/v1/submissions",
        None,
        "application/octet-stream",
        hello(&dev, "1.0.0")?,
    )
    .await?
    .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    nothing_stored(&app).await
}

async fn versions_only_go_up(app: TestApp) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "acme").await?;
    submit_ok(&app, &dev.token, hello(&dev, "1.2.0")?).await?;
    let lower = submit(&app, &dev.token, hello(&dev, "1.1.9")?)
        .await?
        .expect_error(StatusCode::CONFLICT, "version_not_greater")?;
    ensure!(
        lower.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("1.2.0"),
        "names the latest: {}",
        lower.body
    );
    submit_ok(&app, &dev.token, hello(&dev, "1.3.0")?).await?;
    ensure!(count(&app, "submissions").await? == 2);
    Ok(())
}

async fn the_same_upload_twice_is_the_same_submission(app: TestApp) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "acme").await?;
    let bytes = hello(&dev, "1.0.0")?;
    let first = submit_ok(&app, &dev.token, bytes.clone()).await?;
    let again = submit(&app, &dev.token, bytes)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(again.body["id"] == first.as_str(), "{}", again.body);
    ensure!(count(&app, "submissions").await? == 1);
    ensure!(count(&app, "artifacts").await? == 1);
    Ok(())
}

async fn same_version_other_content_is_409(app: TestApp) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "acme").await?;
    submit_ok(&app, &dev.token, hello(&dev, "1.0.0")?).await?;
    let changed = package_with(
        &HELLO,
        "acme.hello",
        "1.0.0",
        "",
        Some("# Hello\nA different readme."),
        Some(&dev.key),
    )?;
    submit(&app, &dev.token, changed)
        .await?
        .expect_error(StatusCode::CONFLICT, "version_exists")?;
    ensure!(count(&app, "submissions").await? == 1);
    Ok(())
}

async fn concurrent_submissions_of_a_version_one_wins(app: TestApp) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "acme").await?;
    let a = package_with(&HELLO, "acme.hello", "1.0.0", "", Some("A"), Some(&dev.key))?;
    let b = package_with(&HELLO, "acme.hello", "1.0.0", "", Some("B"), Some(&dev.key))?;
    let (ra, rb) = tokio::join!(submit(&app, &dev.token, a), submit(&app, &dev.token, b));
    let mut statuses = [ra?.status, rb?.status];
    statuses.sort();
    ensure!(
        statuses == [StatusCode::CREATED, StatusCode::CONFLICT],
        "{statuses:?}"
    );
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM submissions WHERE plugin_id = 'acme.hello' AND status = 'in_review'",
    )
    .fetch_one(app.db().pool())
    .await?;
    let n: i64 = sqlx::Row::try_get(&row, "n")?;
    ensure!(n == 1, "{n} submissions in review");
    ensure!(count(&app, "submissions").await? == 1);
    Ok(())
}

async fn undeclared_import_is_rejected_by_validation(app: TestApp) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "fixtures").await?;
    let bytes = package_with(
        &UNDECLARED_HTTP,
        "fixtures.undeclared-http",
        "0.1.0",
        "",
        None,
        Some(&dev.key),
    )?;
    let reply = submit(&app, &dev.token, bytes)
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(
        reply.body["status"] == "rejected_by_validation" && reply.body["queue_position"].is_null(),
        "{}",
        reply.body
    );
    let findings = reply.body["report"]["findings"]
        .as_array()
        .context("findings")?;
    let error = findings
        .iter()
        .find(|f| f["severity"] == "error")
        .context("an error finding")?;
    ensure!(
        error["code"].as_str().is_some_and(|c| !c.is_empty())
            && error["message"].as_str().unwrap_or("").contains("http"),
        "{error}"
    );
    // Stored with its report.
    let id = reply.body["id"].as_str().context("id")?;
    let fetched = app
        .get(&format!("/v1/submissions/{id}"), Some(&dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        fetched.body["report"] == reply.body["report"],
        "{}",
        fetched.body
    );
    // Not in the queue.
    let operator = app.operator().await?;
    let queue = app
        .get("/v1/review/queue", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(queue.body["items"] == json!([]), "{}", queue.body);
    Ok(())
}

async fn only_members_and_reviewers_see_a_submission(app: TestApp) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "acme").await?;
    let id = submit_ok(&app, &dev.token, hello(&dev, "1.0.0")?).await?;
    let path = format!("/v1/submissions/{id}");
    let (_, stranger) = app.user("eve@example.com").await?;
    app.get(&path, Some(&stranger))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.get("/v1/submissions/no-such-id", Some(&stranger))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    let operator = app.operator().await?;
    let (_, reviewer) = app.reviewer(&operator, "rita@example.com").await?;
    app.get(&path, Some(&reviewer))
        .await?
        .expect(StatusCode::OK)?;
    app.get(&path, Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    Ok(())
}

/// Too large: a server whose package limit is below the package; the upload is refused with
/// 413 and nothing is stored.
async fn too_large_is_413(app: TestApp) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "acme").await?;
    let bytes = hello(&dev, "1.0.0")?;
    ensure!(
        bytes.len() > 4096,
        "the package is only {} bytes",
        bytes.len()
    );
    let reply = submit(&app, &dev.token, bytes)
        .await?
        .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large")?;
    ensure!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("4096"),
        "names the limit: {}",
        reply.body
    );
    nothing_stored(&app).await
}

fn small_limits() -> Settings {
    let mut settings = Settings::default();
    settings.package_limits.compressed = 4096;
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_is_413_on_sqlite() -> Result<()> {
    too_large_is_413(TestApp::start(TestDatabase::sqlite()?, small_limits()).await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_is_413_on_postgres() -> Result<()> {
    let database = TestDatabase::postgres("too_large_is_413").await?;
    too_large_is_413(TestApp::start(database, small_limits()).await?).await
}

/// The hello plugin as `id` 0.1.0 with its `[plugin]` line `key = …` set to `value` (a TOML
/// string, or an array for `categories`) and `changelog`, signed by `dev`.
fn hello_with(
    dev: &Dev,
    id: &str,
    key: &str,
    value: &str,
    changelog: Option<String>,
) -> Result<Vec<u8>> {
    let text = publishing::manifest(&HELLO, id, "0.1.0", "")?;
    let text = text
        .lines()
        .map(|line| {
            if line.starts_with(&format!("{key} = ")) {
                format!("{key} = {value}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut package = plinth_package::Package::new(
        text,
        std::fs::read(HELLO.wasm)?,
        Some("# Hello\n".into()),
        changelog,
    )?;
    package.sign(&dev.key);
    Ok(package.to_bytes()?)
}

/// A TOML string of `text`.
fn toml_string(text: &str) -> Result<String> {
    Ok(serde_json::to_string(text)?)
}

async fn hidden_characters_and_overlong_fields_are_refused(app: TestApp) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "acme").await?;
    let cases = [
        (
            "name",
            toml_string(&"N".repeat(30_000))?,
            None,
            "plugin.name",
        ),
        // "Invoice" with a right-to-left override and zero-width characters.
        (
            "name",
            toml_string("In\u{200B}vo\u{202E}eci\u{200D}")?,
            None,
            "plugin.name",
        ),
        (
            "description",
            toml_string(&"word ".repeat(100))?,
            None,
            "plugin.description",
        ),
        (
            "categories",
            format!("[{}]", ["\"x\""; 9].join(", ")),
            None,
            "plugin.categories",
        ),
        (
            "categories",
            format!("[{}]", toml_string("tools\u{2066}")?),
            None,
            "plugin.categories[0]",
        ),
        (
            "name",
            toml_string("Hello")?,
            Some("x".repeat(300 * 1024)),
            "CHANGELOG.md",
        ),
        (
            "name",
            toml_string("Hello")?,
            Some("- fixed /* \u{202E} } */".to_owned()),
            "CHANGELOG.md",
        ),
    ];
    for (key, value, changelog, field) in cases {
        let bytes = hello_with(&dev, "acme.hello", key, &value, changelog)?;
        let refused = submit(&app, &dev.token, bytes)
            .await?
            .expect_error(StatusCode::BAD_REQUEST, "display_text")?;
        let message = refused.body["error"]["message"].as_str().unwrap_or("");
        ensure!(message.contains(field), "{field}: {message}");
        ensure!(
            message.len() < 2_000,
            "the message echoes the input: {message}"
        );
    }
    nothing_stored(&app).await
}

async fn a_lookalike_plugin_id_goes_to_review_with_a_finding(app: TestApp) -> Result<()> {
    let operator = app.operator().await?;
    let dev = developer(&app, "ada@example.com", "rt").await?;
    publishing::publish(&app, &dev, &operator, &HELLO, "rt.multi", "0.1.0").await?;
    let lookalike = package_with(&HELLO, "rt.rnulti", "0.1.0", "", None, Some(&dev.key))?;
    let reply = submit(&app, &dev.token, lookalike)
        .await?
        .expect(StatusCode::CREATED)?;
    let findings = reply.body["report"]["findings"]
        .as_array()
        .context("findings")?;
    let finding = findings
        .iter()
        .find(|f| f["code"] == "lookalike_id")
        .with_context(|| format!("no look-alike finding: {}", reply.body))?;
    ensure!(
        reply.body["status"] == "in_review"
            && finding["severity"] == "warning"
            && finding["message"]
                .as_str()
                .is_some_and(|m| m.contains("rt.multi")),
        "{}",
        reply.body
    );
    let queue = app
        .get("/v1/review/queue", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        queue.body.to_string().contains("lookalike_id"),
        "the reviewer does not see it: {}",
        queue.body
    );
    // A new version of the same plugin, and a plugin that only shares letters, are not flagged.
    for (id, version) in [("rt.multi", "0.2.0"), ("rt.multiply", "0.1.0")] {
        let bytes = package_with(&HELLO, id, version, "", None, Some(&dev.key))?;
        let reply = submit(&app, &dev.token, bytes)
            .await?
            .expect(StatusCode::CREATED)?;
        ensure!(
            !reply.body.to_string().contains("lookalike_id"),
            "{}",
            reply.body
        );
    }
    Ok(())
}

/// `hello` with its import of `wasi:cli/exit@0.2.6` renamed to `wasi:cli/run@0.2.66` (the same
/// length, so the binary stays valid): a base WASI name validation accepts, which no host
/// links.
fn hello_importing_what_no_host_links(dev: &Dev) -> Result<Vec<u8>> {
    let from = b"wasi:cli/exit@0.2.6";
    let to = b"wasi:cli/run@0.2.66";
    let mut wasm = std::fs::read(HELLO.wasm)?;
    let at = wasm
        .windows(from.len())
        .position(|w| w == from)
        .context("hello imports no wasi:cli/exit@0.2.6")?;
    wasm[at..at + to.len()].copy_from_slice(to);
    let mut package = Package::new(
        manifest(&HELLO, "acme.hello", "1.0.0", "")?,
        wasm,
        None,
        None,
    )?;
    package.sign(&dev.key);
    Ok(package.to_bytes()?)
}

async fn a_component_the_host_cannot_link_is_rejected_as_does_not_compile(
    app: TestApp,
) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "acme").await?;
    let reply = submit(&app, &dev.token, hello_importing_what_no_host_links(&dev)?)
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(
        reply.body["status"] == "rejected_by_validation",
        "{}",
        reply.body
    );
    let findings = reply.body["report"]["findings"]
        .as_array()
        .context("findings")?;
    ensure!(
        findings.iter().any(|f| f["severity"] == "error"
            && f["code"] == "does_not_compile"
            && f["message"]
                .as_str()
                .is_some_and(|m| m.contains("wasi:cli/run@0.2.66"))),
        "{findings:?}"
    );
    // The unpatched component passes the same check.
    submit_ok(&app, &dev.token, hello(&dev, "1.0.1")?).await?;
    Ok(())
}
