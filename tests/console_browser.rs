//! The web console in a real browser: headless Chromium driven through `chromedriver` against
//! a `plinth serve` (SQLite) seeded through the API, its operator bootstrapped with a password.
//!
//! One journey, in order: a tenant admin logs in, searches the catalog live and opens a detail
//! page, installs with consent (filling a secret in the generated config form) and sees the
//! install and its usage chart on the dashboard; a tenant member sees no install button nor
//! uninstall buttons; a developer uploads a package that validation refuses and sees its
//! findings, then one that passes, replies to a rating and sees a paid plugin's charge on the
//! revenue chart; a reviewer approves the upload from the queue (it is then in the catalog),
//! rejects another submission (after being told a rejection needs a reason code) and sends a
//! third back for changes; the admin updates to a version asking for more, seeing the
//! permission diff, then rolls back; an operator sees the audit chain sound, changes a plan,
//! yanks a version with confirmation and runs a payout. After every page, Chromium's
//! performance log must show no request outside `plinth serve`. Screenshots of each main page,
//! at desktop and phone width, are written to `<target>/tmp/console-screenshots/`.

mod common {
    pub mod api;
    pub mod server;
    pub mod webdriver;
}

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use base64::Engine;
use plinth_package::{Package, SecretKey};
use plinth_test_artifacts::{COUNTER, HELLO, PING_PONG, TRAP, UNDECLARED_HTTP, WEBHOOK_NOTIFY};
use reqwest::Method;
use serde_json::json;

use common::api::{Api, paid_package, signed_package};
use common::server::{PlinthServer, bootstrap_with_password};
use common::webdriver::Browser;

const PASSWORD: &str = "a long enough password";
const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);
/// The billing processor's webhook secret the server is started with.
const WEBHOOK_SECRET: &str = "whsec_console";

/// Where the screenshots go.
fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

/// The browser and the server it must stay within.
struct Session {
    browser: Browser,
    base: String,
}

impl Session {
    /// Opens `path` on the server.
    async fn open(&self, path: &str) -> Result<()> {
        self.browser.goto(&format!("{}{path}", self.base)).await
    }

    /// Fails if the browser requested anything but `plinth serve` since the last check.
    /// `data:` URLs (the browser's own icons, e.g. a date field's) never leave it.
    async fn assert_only_local_requests(&self) -> Result<usize> {
        let urls = self.browser.requested_urls().await?;
        let outside: Vec<&String> = urls
            .iter()
            .filter(|url| !url.starts_with(&format!("{}/", self.base)) && *url != &self.base)
            .filter(|url| !url.starts_with("data:"))
            .collect();
        ensure!(
            outside.is_empty(),
            "requests outside plinth serve: {outside:?}"
        );
        Ok(urls.len())
    }

    /// Fails if a form control of the page has no label (or a button no name).
    async fn assert_labelled(&self) -> Result<()> {
        let unlabelled = self
            .browser
            .execute(
                "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
                   .filter(e => e.tagName === 'BUTTON'
                     ? !(e.textContent.trim() || e.getAttribute('aria-label'))
                     : !((e.labels && e.labels.length) || e.getAttribute('aria-label')))
                   .map(e => e.outerHTML);",
            )
            .await?;
        ensure!(
            unlabelled.as_array().is_some_and(Vec::is_empty),
            "controls without a label on {}: {unlabelled}",
            self.browser.url().await?
        );
        Ok(())
    }

    /// Screenshots of the page at desktop and phone width, named `name-desktop.png` and
    /// `name-phone.png`, after checking every control of it is labelled.
    async fn screenshots(&self, name: &str) -> Result<()> {
        self.assert_labelled().await?;
        let dir = screenshot_dir();
        self.browser
            .screenshot(&dir.join(format!("{name}-desktop.png")))
            .await?;
        self.browser.resize(PHONE.0, PHONE.1).await?;
        self.browser
            .screenshot(&dir.join(format!("{name}-phone.png")))
            .await?;
        self.browser.resize(DESKTOP.0, DESKTOP.1).await?;
        Ok(())
    }

    /// Logs in as `email` through the log-in page.
    async fn log_in(&self, email: &str) -> Result<()> {
        self.open("/login").await?;
        self.browser.type_into("#email", email).await?;
        self.browser.type_into("#password", PASSWORD).await?;
        self.browser.click("form.panel button[type=submit]").await?;
        self.browser.wait_for_text("header .who", email).await?;
        Ok(())
    }

    /// Accepts every `confirm()` dialog of the page shown (forms marked `data-confirm`).
    async fn accept_confirmations(&self) -> Result<()> {
        self.browser
            .execute("window.confirm = () => true; return true;")
            .await
            .map(drop)
    }

    /// Records `decision` (with `reason_code` picked, if given, and `reason`) on the first
    /// submission of the review queue shown.
    async fn decide(&self, decision: &str, reason_code: Option<&str>, reason: &str) -> Result<()> {
        let item = "article.review-item";
        self.browser
            .click(&format!("{item} input[value={decision}]"))
            .await?;
        if let Some(code) = reason_code {
            self.browser
                .execute_with(
                    "document.querySelector(arguments[0]).value = arguments[1]; return true;",
                    json!([format!("{item} select"), code]),
                )
                .await?;
        }
        self.browser
            .type_into(&format!("{item} textarea"), reason)
            .await?;
        self.browser
            .click(&format!("{item} button[type=submit]"))
            .await
    }

    /// Logs out with the header's button.
    async fn log_out(&self) -> Result<()> {
        self.browser.click("header form button").await?;
        self.browser
            .wait_for_text("header .account", "Log in")
            .await?;
        Ok(())
    }
}

/// webhook-notify 0.2.0, which also asks for a key-value store, signed by `key`.
fn webhook_notify_0_2(dir: &Path, key: &SecretKey) -> Result<PathBuf> {
    let manifest = std::fs::read_to_string(Path::new(WEBHOOK_NOTIFY.dir).join("plinth.toml"))?
        .replace("version = \"0.1.0\"", "version = \"0.2.0\"")
        .replace(
            "[permissions]\n",
            "[permissions]\nkv = { max-bytes = 65536 }\n",
        );
    let mut package = Package::new(
        manifest,
        std::fs::read(WEBHOOK_NOTIFY.wasm)?,
        Some("# webhook-notify\n".to_owned()),
        Some("## 0.2.0\n\nRemembers what it sent.\n".to_owned()),
    )?;
    package.sign(key);
    let path = dir.join(package.file_name());
    package.write_to(&path)?;
    Ok(path)
}

/// Signs up `email` with [`PASSWORD`]; returns (id, token).
/// `dev@example.com`, owner of publishers `examples` and `fixtures` with a key registered to
/// each: (token, examples key, fixtures key).
async fn developer_of_examples_and_fixtures(api: &Api) -> Result<(String, SecretKey, SecretKey)> {
    let (developer, key) = api.developer("dev@example.com", "examples").await?;
    api.ok(
        Method::POST,
        "/v1/publishers",
        Some(&developer),
        Some(json!({"namespace": "fixtures", "name": "Fixtures"})),
    )
    .await?;
    let fixtures_key = SecretKey::generate()?;
    api.register_key(&developer, "fixtures", &fixtures_key)
        .await?;
    Ok((developer, key, fixtures_key))
}

async fn account(api: &Api, email: &str) -> Result<(String, String)> {
    api.account(email).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_journey_in_a_browser() -> Result<()> {
    let work = tempfile::tempdir()?;
    let data_dir = work.path().join("data");
    let server = PlinthServer::start_with_args(
        &data_dir,
        None,
        &[
            "--billing-webhook-secret",
            WEBHOOK_SECRET,
            "--payout-hold-days",
            "0",
        ],
    )?;
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };
    let (ok, operator, stderr) = bootstrap_with_password(&data_dir, None, Some(PASSWORD))?;
    ensure!(ok, "bootstrap failed: {stderr}");

    // Seed: a developer with publishers examples and fixtures; hello, webhook-notify and a paid
    // plugin approved, the paid one installed by tenant globex and charged once; tenant acme
    // with an admin and a member; a reviewer and an operator who log in.
    let (developer, key, fixtures_key) = developer_of_examples_and_fixtures(&api).await?;
    for plugin in [&HELLO, &WEBHOOK_NOTIFY] {
        let path = signed_package(work.path(), plugin, &key)?;
        api.publish_and_approve(&path, &developer, &operator)
            .await?;
    }
    let paid = paid_package(
        work.path(),
        &HELLO,
        ("examples.paid-hello", "Paid hello"),
        5000,
        Some(&key),
    )?;
    api.publish_and_approve(&paid, &developer, &operator)
        .await?;
    api.tenant(&operator, "globex", Some("pro")).await?;
    api.install(&operator, "globex", "examples.paid-hello", None, json!({}))
        .await?;
    let subscription = api
        .subscription(&operator, "globex", "examples.paid-hello")
        .await?;
    api.invoice_paid(
        WEBHOOK_SECRET,
        &subscription,
        "in_console_1",
        5000,
        "ch_console_1",
    )
    .await?;
    let (_, admin) = account(&api, "admin@acme.example").await?;
    api.ok(
        Method::POST,
        "/v1/tenants",
        Some(&admin),
        Some(json!({"slug": "acme", "name": "Acme"})),
    )
    .await?;
    account(&api, "member@acme.example").await?;
    api.ok(
        Method::POST,
        "/v1/tenants/acme/members",
        Some(&admin),
        Some(json!({"email": "member@acme.example", "role": "member"})),
    )
    .await?;
    let (reviewer, _) = account(&api, "reviewer@example.com").await?;
    api.ok(
        Method::PUT,
        &format!("/v1/accounts/{reviewer}/roles"),
        Some(&operator),
        Some(json!({"roles": ["reviewer"]})),
    )
    .await?;

    let session = Session {
        browser: Browser::start(DESKTOP.0, DESKTOP.1).await?,
        base: server.base.clone(),
    };
    let browser = &session.browser;

    // The log-in page, then the catalog with live search.
    session.open("/login").await?;
    session.screenshots("login").await?;
    session.log_in("admin@acme.example").await?;
    session.open("/").await?;
    browser.wait_for_text("#results", "Hello").await?;
    browser.type_into("#q", "webhook").await?;
    browser.wait_for_url("/?q=webhook").await?;
    let results = browser.wait_for_text("#results", "1 plugin shown").await?;
    ensure!(
        results.contains("Webhook notify") && !results.contains("Greets"),
        "live search: {results}"
    );
    // Filters: only plugins that call the internet.
    browser
        .execute(
            "document.getElementById('q').value = '';
             const s = document.getElementById('permission');
             s.value = 'http';
             s.dispatchEvent(new Event('change', {bubbles: true}));
             return true;",
        )
        .await?;
    browser.wait_for_url("/?permission=http").await?;
    let filtered = browser.wait_for_text("#results", "1 plugin shown").await?;
    ensure!(filtered.contains("Webhook notify"), "{filtered}");
    browser.type_into("#q", "webhook").await?;
    browser.wait_for_url("/?q=webhook&permission=http").await?;
    session.screenshots("catalog").await?;
    let requests = session.assert_only_local_requests().await?;
    ensure!(requests >= 4, "the performance log saw {requests} requests");

    // The detail page: permissions as sentences with risk levels, an install button.
    browser.click("#results .card h2 a").await?;
    browser.wait_for_text("main h1", "Webhook notify").await?;
    let permissions = browser.text("ul.permissions").await?;
    ensure!(
        permissions.contains("HIGH RISK") && permissions.contains("hooks.example.com"),
        "permissions: {permissions}"
    );
    ensure!(browser.text(".readme").await?.contains("webhook-notify"));
    session.screenshots("detail").await?;
    session.assert_only_local_requests().await?;

    // Install with consent; the secret goes into a password field.
    browser.click("#install").await?;
    browser
        .wait_for_text("main h1", "Install Webhook notify")
        .await?;
    let field_type = browser
        .execute("return document.getElementById('config-webhook-url').type")
        .await?;
    ensure!(field_type == "password", "secret field type {field_type}");
    session.screenshots("install").await?;
    browser
        .type_into(
            "#config-webhook-url",
            "https://hooks.example.com/s3cr3t-hook",
        )
        .await?;
    browser.click("#consent").await?;
    browser.click("#consent-form button[type=submit]").await?;
    browser
        .wait_for_text("main .notice", "is installed")
        .await?;
    ensure!(browser.url().await?.contains("/tenants/acme"));
    let installs = browser.text("#installs").await?;
    ensure!(
        installs.contains("examples.webhook-notify") && installs.contains("0.1.0"),
        "{installs}"
    );
    ensure!(browser.exists("svg#usage-totals").await?, "usage chart");
    browser
        .element_screenshot(
            "section[aria-labelledby=usage-title]",
            &screenshot_dir().join("usage-chart.png"),
        )
        .await?;
    ensure!(
        !browser.source().await?.contains("s3cr3t-hook"),
        "a secret was shown"
    );
    ensure!(browser.exists("#installs button.danger").await?);
    session.screenshots("dashboard").await?;
    session.open("/tenants/acme/plans").await?;
    browser.wait_for_text("#plans", "Installs").await?;
    session.screenshots("plans").await?;
    session.assert_only_local_requests().await?;
    session.log_out().await?;
    api.ok(
        Method::PUT,
        "/v1/plugins/examples.webhook-notify/ratings/acme",
        Some(&admin),
        Some(json!({"stars": 4, "text": "Does what it says."})),
    )
    .await?;

    // A tenant member: no install button, no uninstall buttons.
    session.log_in("member@acme.example").await?;
    session.open("/plugins/examples.hello").await?;
    browser.wait_for_text("main h1", "Hello").await?;
    ensure!(
        !browser.exists("#install").await?,
        "a member got an install button"
    );
    ensure!(browser.exists("#no-install").await?);
    session.open("/tenants/acme").await?;
    browser
        .wait_for_text("#installs", "examples.webhook-notify")
        .await?;
    ensure!(
        !browser.exists("#installs button").await?,
        "a member got install actions"
    );
    session.assert_only_local_requests().await?;
    session.log_out().await?;

    // A developer uploads a package validation refuses, and sees why; then a good one.
    session.log_in("dev@example.com").await?;
    session.open("/developer").await?;
    browser.type_into("#namespace", "tools").await?;
    browser.type_into("#publisher-name", "Tools").await?;
    browser.click("#new-publisher button").await?;
    browser
        .wait_for_text("main .notice", "publisher is created")
        .await?;
    // A key is registered by proving possession (the CLI does it); the portal says how, and
    // revokes it.
    ensure!(browser.exists("#register-key-tools").await?);
    api.register_key(&developer, "tools", &SecretKey::generate()?)
        .await?;
    session.open("/developer").await?;
    session.accept_confirmations().await?;
    browser
        .click("form[action^='/developer/tools/keys/'] button")
        .await?;
    browser.wait_for_text("main .notice", "revoked").await?;
    let bad = signed_package(work.path(), &UNDECLARED_HTTP, &fixtures_key)?;
    browser
        .type_into("#package", &bad.display().to_string())
        .await?;
    browser.click("form.panel button[type=submit]").await?;
    browser
        .wait_for_text("#submission-status", "refused by validation")
        .await?;
    let report = browser.text("#report").await?;
    ensure!(report.contains("error"), "report: {report}");
    session.screenshots("submission-refused").await?;
    session.open("/developer").await?;
    // The good package is dropped onto the drop zone (the script fills the file input).
    let good = signed_package(work.path(), &COUNTER, &key)?;
    let chosen = browser
        .execute_with(
            "const [data, name] = arguments;
             const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
             const files = new DataTransfer();
             files.items.add(new File([bytes], name));
             document.querySelector('.dropzone').dispatchEvent(
               new DragEvent('drop', {dataTransfer: files, bubbles: true, cancelable: true}));
             return document.querySelector('.dropzone .chosen').textContent;",
            json!([
                base64::engine::general_purpose::STANDARD.encode(std::fs::read(&good)?),
                "counter.plinth"
            ]),
        )
        .await?;
    ensure!(chosen == "Chosen: counter.plinth", "drop zone: {chosen}");
    browser.click("form.panel button[type=submit]").await?;
    browser
        .wait_for_text("#submission-status", "waiting for review")
        .await?;
    session.open("/developer").await?;
    browser.wait_for_text("main", "examples.counter").await?;
    ensure!(
        browser.exists("a[href$='.csv'][download]").await?,
        "statement download links"
    );
    browser.wait_for_text("main", "Does what it says.").await?;
    browser
        .type_into("textarea[name=text]", "Thank you!")
        .await?;
    browser.click("form[action$='/reply'] button").await?;
    browser
        .wait_for_text("main", "Your reply: Thank you!")
        .await?;
    // The paid plugin's charge is this month's revenue, drawn as a bar.
    let revenue_bar = browser
        .execute(
            "const bar = document.querySelector('svg[id^=revenue-examples-] rect.chart-bar');
             return bar ? Number(bar.getAttribute('width')) : -1;",
        )
        .await?;
    ensure!(
        revenue_bar.as_f64().is_some_and(|width| width > 0.0),
        "revenue chart bar width: {revenue_bar}"
    );
    browser
        .element_screenshot(
            "figure.chart:has(svg[id^=revenue-examples-])",
            &screenshot_dir().join("revenue-chart.png"),
        )
        .await?;
    session.screenshots("developer").await?;
    session.assert_only_local_requests().await?;
    session.log_out().await?;

    // Two more submissions wait behind it: one to reject, one to send back.
    let trap = api
        .submit(
            &signed_package(work.path(), &TRAP, &fixtures_key)?,
            &developer,
        )
        .await?;
    let ping_pong = api
        .submit(
            &signed_package(work.path(), &PING_PONG, &fixtures_key)?,
            &developer,
        )
        .await?;

    // A reviewer approves the counter from the queue (it is then in the catalog), rejects the
    // trap (a rejection without a reason code is refused) and requests changes of ping-pong.
    session.log_in("reviewer@example.com").await?;
    session.open("/review").await?;
    browser
        .wait_for_text("main", "examples.counter 0.1.0")
        .await?;
    let diff = browser.text("article.review-item ul.permissions").await?;
    ensure!(diff.contains("Added"), "permission diff: {diff}");
    session.screenshots("review").await?;
    session.decide("approve", None, "Looks right.").await?;
    browser
        .wait_for_text("article.review-item h2", "fixtures.trap")
        .await?;
    session
        .decide("reject", None, "Traps on every call.")
        .await?;
    browser
        .wait_for_text("p.error", "a rejection needs field `reason_code`")
        .await?;
    session.open("/review").await?;
    session
        .decide("reject", Some("broken"), "Traps on every call.")
        .await?;
    browser
        .wait_for_text("article.review-item h2", "fixtures.ping-pong")
        .await?;
    session
        .decide(
            "request_changes",
            None,
            "Say in the README why it emits to itself.",
        )
        .await?;
    browser.wait_for_text("main", "The queue is empty.").await?;
    session.assert_only_local_requests().await?;
    for (id, status, reason) in [
        (&trap, "rejected", "Traps on every call."),
        (
            &ping_pong,
            "changes_requested",
            "Say in the README why it emits to itself.",
        ),
    ] {
        let submission = api
            .ok(
                Method::GET,
                &format!("/v1/submissions/{id}"),
                Some(&developer),
                None,
            )
            .await?;
        ensure!(
            submission["status"] == status && submission.to_string().contains(reason),
            "submission {id}: {submission}"
        );
    }
    let (status, _) = api
        .send(Method::GET, "/v1/plugins/examples.counter", None, None)
        .await?;
    ensure!(
        status == 200,
        "the approved plugin is not in the catalog: {status}"
    );
    session.open("/?q=counter").await?;
    browser.wait_for_text("#results", "Counter").await?;
    session.open("/plugins/examples.webhook-notify").await?;
    browser
        .wait_for_text("main", "Publisher's reply: Thank you!")
        .await?;
    browser
        .element_screenshot(
            "section[aria-labelledby=ratings-title]",
            &screenshot_dir().join("rating-histogram.png"),
        )
        .await?;
    session.assert_only_local_requests().await?;
    session.log_out().await?;

    // An update that asks for more: the admin sees the difference, consents, then rolls back.
    let update = webhook_notify_0_2(work.path(), &key)?;
    api.publish_and_approve(&update, &developer, &operator)
        .await?;
    session.log_in("admin@acme.example").await?;
    session.open("/tenants/acme").await?;
    browser.click("#installs a.update").await?;
    browser
        .wait_for_text("#consent-form", "Update from v0.1.0 to v0.2.0")
        .await?;
    let diff = browser.text("#permission-diff").await?;
    ensure!(
        diff.contains("New:") && diff.contains("key-value store"),
        "update diff: {diff}"
    );
    session.screenshots("update").await?;
    browser.click("#consent").await?;
    browser.click("#consent-form button[type=submit]").await?;
    browser.wait_for_text("main .notice", "is updated").await?;
    browser.wait_for_text("#installs", "0.2.0").await?;
    session.accept_confirmations().await?;
    browser.click("#installs button.secondary").await?;
    browser.wait_for_text("main .notice", "rolled back").await?;
    ensure!(browser.text("#installs").await?.contains("0.1.0"));
    session.assert_only_local_requests().await?;
    session.log_out().await?;

    // The operator bootstrapped with a password: the audit chain, a plan change, a yank with
    // confirmation, a payout run.
    session.log_in("operator@plinth.local").await?;
    session.open("/operator").await?;
    browser
        .wait_for_text("#chain-status", "Chain sound")
        .await?;
    ensure!(browser.text("#audit").await?.contains("install.created"));
    ensure!(
        browser
            .text("#billing-events-status")
            .await?
            .starts_with("0 waiting for what they concern, 0 unmatched."),
        "processor events on the operator page"
    );
    session.screenshots("operator").await?;
    browser
        .execute("document.getElementById('plan-acme').value = 'pro'; return true;")
        .await?;
    browser
        .click("form[action='/operator/tenants/acme/plan'] button")
        .await?;
    browser
        .wait_for_text("#tenants td[data-label=Plan]", "pro")
        .await?;
    session.open("/tenants/acme/plans").await?;
    browser
        .click("form[action='/operator/tenants/acme/plan'] button")
        .await?;
    // The first move offered is back down to free.
    browser
        .wait_for_text("#plans thead", "free (current)")
        .await?;
    session.open("/operator").await?;
    browser.type_into("#plugin", "examples.hello").await?;
    browser.type_into("#version", "0.1.0").await?;
    browser
        .execute("document.getElementById('reason_code').value = 'broken'; return true;")
        .await?;
    browser
        .type_into("#reason", "Crashes on empty names.")
        .await?;
    // Without the confirmation box the browser will not send the form.
    browser.click("#plugin-action button").await?;
    ensure!(browser.url().await?.ends_with("/operator"));
    ensure!(!browser.exists(".notice").await?);
    browser.click("#confirm").await?;
    session.accept_confirmations().await?;
    browser.click("#plugin-action button").await?;
    browser.wait_for_text("main .notice", "is yanked").await?;
    let (_, hello) = api
        .send(
            Method::GET,
            "/v1/plugins/examples.hello/versions/0.1.0",
            None,
            None,
        )
        .await?;
    ensure!(hello["yanked"] == true, "{hello}");
    // A payout run pays the developer for the paid plugin's charge.
    session.accept_confirmations().await?;
    browser.type_into("#run_id", "console-1").await?;
    browser
        .click("form[action='/operator/payouts'] button")
        .await?;
    browser
        .wait_for_text("main .notice", "Payout run console-1: 1 payout")
        .await?;
    session.assert_only_local_requests().await?;

    session.browser.quit().await?;
    server.stop().context("stopping the server")?;
    Ok(())
}

/// A tenant admin finds a failed run: the dashboard links an install's run log, which shows
/// its daily chart; filtering to failed runs leaves the trap, whose page shows the error and
/// the log lines the plugin wrote before it failed. The developer sees the failure reported
/// and, once the tenant shares it, the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_in_a_browser() -> Result<()> {
    let work = tempfile::tempdir()?;
    let data_dir = work.path().join("data");
    let server = PlinthServer::start_with_args(&data_dir, None, &[])?;
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };
    let (ok, operator, stderr) = bootstrap_with_password(&data_dir, None, Some(PASSWORD))?;
    ensure!(ok, "bootstrap failed: {stderr}");
    let (developer, key, fixtures_key) = developer_of_examples_and_fixtures(&api).await?;
    for (plugin, key) in [(&HELLO, &key), (&TRAP, &fixtures_key)] {
        let path = signed_package(work.path(), plugin, key)?;
        api.publish_and_approve(&path, &developer, &operator)
            .await?;
    }
    let (_, admin) = account(&api, "admin@acme.example").await?;
    api.ok(
        Method::POST,
        "/v1/tenants",
        Some(&admin),
        Some(json!({"slug": "acme", "name": "Acme"})),
    )
    .await?;
    let trap = "fixtures.trap";
    for plugin in ["examples.hello", trap] {
        api.install(&admin, "acme", plugin, None, json!({})).await?;
    }
    for (topic, payload) in [
        ("greet", json!("Ada")),
        ("run", json!({})),
        ("greet", json!("Bo")),
    ] {
        api.ok(
            Method::POST,
            "/v1/tenants/acme/events",
            Some(&admin),
            Some(json!({"topic": topic, "payload": payload})),
        )
        .await?;
    }

    let session = Session {
        browser: Browser::start(DESKTOP.0, DESKTOP.1).await?,
        base: server.base.clone(),
    };
    let browser = &session.browser;
    session.log_in("admin@acme.example").await?;
    session.open("/tenants/acme").await?;
    browser
        .click(&format!("a[href='/tenants/acme/runs?plugin={trap}']"))
        .await?;
    browser.wait_for_text("main h1", "Run log of Acme").await?;
    ensure!(
        browser.exists(&format!("svg[id='daily-{trap}']")).await?,
        "the daily chart"
    );
    let days = browser.text("#daily-table").await?;
    ensure!(days.contains("trap 1"), "daily table: {days}");
    session.screenshots("run-log").await?;
    // Every install's runs, then only the failed ones.
    browser
        .execute("document.getElementById('filter-plugin').value = ''; return true;")
        .await?;
    browser
        .execute("document.getElementById('filter-outcome').value = 'failed'; return true;")
        .await?;
    browser.click("form.filters button[type=submit]").await?;
    browser
        .wait_for_url("outcome=failed&q=&since=&until=")
        .await?;
    let runs = browser.text("#runs").await?;
    ensure!(
        runs.contains(trap) && runs.contains("trap") && !runs.contains("examples.hello"),
        "failed runs: {runs}"
    );
    browser.click("#runs tbody tr a").await?;
    browser
        .wait_for_text("main h1", "Run of fixtures.trap")
        .await?;
    let error = browser.text("#run-error").await?;
    ensure!(error.contains("trap"), "error: {error}");
    let logs = browser.text("#run-logs").await?;
    ensure!(logs.contains("deliberate panic"), "log lines: {logs}");
    session.screenshots("run").await?;
    session.accept_confirmations().await?;
    browser.click("form[action$='/share'] button").await?;
    browser
        .wait_for_text("main form[action$='/share'] button", "Stop sharing")
        .await?;
    session.assert_only_local_requests().await?;
    session.log_out().await?;

    // The developer: the failure, counted and named by kind, and the shared run.
    session.log_in("dev@example.com").await?;
    session
        .open(&format!("/developer/plugins/{trap}/failures"))
        .await?;
    let failures = browser.text("#failures").await?;
    ensure!(
        failures.contains("trap") && failures.contains("0.1.0: 1") && !failures.contains("acme"),
        "failures: {failures}"
    );
    browser.click("main ul li a").await?;
    browser.wait_for_text("main h1", "shared by acme").await?;
    ensure!(
        browser
            .text("#run-logs")
            .await?
            .contains("deliberate panic")
    );
    session.assert_only_local_requests().await?;

    session.browser.quit().await?;
    server.stop().context("stopping the server")?;
    Ok(())
}
