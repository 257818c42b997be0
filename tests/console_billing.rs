//! Billing in the web console, in a real browser (headless Chromium through `chromedriver`)
//! against a `plinth serve` (SQLite) billing through the processor double.
//!
//! One journey: a tenant owner adds a payment method on the processor's hosted page and comes
//! back to the subscription page showing the card; upgrades to `pro` from the plan comparison
//! with an operator's coupon; a month passes (the tenant's plan span is moved back into last
//! month) and a billing run invoices and collects it; the subscription page lists the paid
//! invoice, whose PDF (downloaded with the browser's session) names the invoice, the plan and
//! the coupon.

mod common {
    pub mod api;
    pub mod server;
    pub mod webdriver;
}

use anyhow::{Context, Result, ensure};
use base64::Engine;
use plinth_marketplace::Db;
use plinth_processor_double::{DoubleConfig, ProcessorDouble};
use reqwest::Method;
use serde_json::json;

use common::api::Api;
use common::server::{PlinthServer, bootstrap_with_password};
use common::webdriver::Browser;

const PASSWORD: &str = "a long enough password";
const PROCESSOR_KEY: &str = "sk_test_plinth";
const WEBHOOK_SECRET: &str = "whsec_test";
const OWNER: &str = "owner@acme.example";

/// A free loopback port (bound, then released for `plinth serve` to take).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Logs in as `email` through the log-in page of the server at `base`.
async fn log_in(browser: &Browser, base: &str, email: &str) -> Result<()> {
    browser.goto(&format!("{base}/login")).await?;
    browser.type_into("#email", email).await?;
    browser.type_into("#password", PASSWORD).await?;
    browser.click("form.panel button[type=submit]").await?;
    browser.wait_for_text("header .who", email).await?;
    Ok(())
}

/// The first millisecond of the month before the current one.
fn start_of_last_month() -> Result<i64> {
    let this_month = plinth_marketplace::month::of(plinth_marketplace::clock::now_ms())?;
    Ok(plinth_marketplace::month::of(this_month.start_ms - 1)?.start_ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_in_the_console() -> Result<()> {
    let work = tempfile::tempdir()?;
    let data_dir = work.path().join("data");
    let double = ProcessorDouble::start(DoubleConfig {
        secret_key: PROCESSOR_KEY.into(),
        webhook_url: None,
        webhook_secret: WEBHOOK_SECRET.into(),
    })
    .await?;
    // The processor sends the browser back to the server's public address: it must be known
    // before the server starts.
    let listen = format!("127.0.0.1:{}", free_port()?);
    let base = format!("http://{listen}");
    let processor_url = double.base_url();
    let server = PlinthServer::start_on_with_env(
        &listen,
        &data_dir,
        None,
        &[
            ("PLINTH_BILLING_PROCESSOR_URL", processor_url.as_str()),
            ("PLINTH_BILLING_PROCESSOR_KEY", PROCESSOR_KEY),
            ("PLINTH_BILLING_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("PLINTH_PUBLIC_URL", base.as_str()),
            // Billing runs only when the test asks for one.
            ("PLINTH_BILLING_TICK_SECS", "86400"),
        ],
    )?;
    ensure!(
        server.base == base,
        "the server listens on {}, not {base}",
        server.base
    );
    double.set_webhook_url(&format!("{base}/v1/billing/webhook"));
    let api = Api::at(&base);
    let (ok, operator, stderr) = bootstrap_with_password(&data_dir, None, Some(PASSWORD))?;
    ensure!(ok, "bootstrap failed: {stderr}");

    // An operator's coupon; tenant acme on the free plan, with its owner.
    api.ok(
        Method::POST,
        "/v1/billing/coupons",
        Some(&operator),
        Some(json!({
            "code": "LAUNCH20", "percent_off": 20,
            "duration": "repeating", "duration_months": 3,
        })),
    )
    .await?;
    let (_, owner) = api.account(OWNER).await?;
    let tenant = api.tenant(&owner, "acme", None).await?;
    ensure!(
        tenant["plan"] == "free",
        "acme starts on {}",
        tenant["plan"]
    );

    let browser = Browser::start(1280, 900).await?;
    log_in(&browser, &base, OWNER).await?;

    // The subscription page, linked from the dashboard: no payment method yet.
    browser.goto(&format!("{base}/tenants/acme")).await?;
    browser.click("#billing-link").await?;
    let method = browser
        .wait_for_text("#billing-payment-method", "none")
        .await?;
    ensure!(method == "none", "payment method before any: {method:?}");
    let status = browser.text("#billing-status").await?;
    ensure!(status == "free", "status on the free plan: {status:?}");

    // Add a payment method on the processor's hosted page (Visa 4242 is preselected).
    browser.click("#add-payment-method").await?;
    browser
        .find("form[action^='/checkout/cs_'] #submit")
        .await?;
    let hosted = browser.url().await?;
    ensure!(
        hosted.starts_with(&format!("{processor_url}/checkout/cs_")),
        "the hosted page is at {hosted}"
    );
    browser.click("#submit").await?;
    let method = browser
        .wait_for_text("#billing-payment-method", "visa ending 4242")
        .await?;
    let back = browser.url().await?;
    ensure!(
        back.starts_with(&format!("{base}/tenants/acme/billing")),
        "back on {back} with payment method {method:?}"
    );
    let saved = browser.text("main .notice").await?;
    ensure!(
        saved.contains("payment method is saved"),
        "notice: {saved:?}"
    );
    ensure!(
        browser.text("#add-payment-method").await? == "Change payment method",
        "the button still offers to add a payment method"
    );

    // Upgrade to pro from the plan comparison, with the coupon.
    browser.goto(&format!("{base}/tenants/acme/plans")).await?;
    let prices = browser.text("#plan-prices").await?;
    ensure!(prices.contains("29.00 USD a month"), "prices: {prices:?}");
    browser.type_into("#plan-pro-coupon", "LAUNCH20").await?;
    browser.click("#plan-pro-upgrade").await?;
    browser.wait_for_text("#billing-plan", "pro").await?;
    let status = browser.text("#billing-status").await?;
    ensure!(status == "active", "status after the upgrade: {status:?}");
    let coupon = browser.text("#billing-coupon").await?;
    ensure!(
        coupon.contains("LAUNCH20") && coupon.contains("20% off"),
        "coupon held: {coupon:?}"
    );
    let upgraded = browser.text("main .notice").await?;
    ensure!(upgraded.contains("pro plan"), "notice: {upgraded:?}");
    let next = browser.text("#next-invoice").await?;
    ensure!(
        next.contains("pro plan") && next.contains("Coupon LAUNCH20"),
        "this month so far: {next:?}"
    );

    // A month passes: the tenant was on pro since the start of last month. A billing run
    // invoices last month and collects it from the card.
    let db = Db::open_data_dir(&data_dir).await?;
    let moved = sqlx::query(
        "UPDATE plan_periods SET starts_at = $1 WHERE ends_at IS NULL \
         AND tenant_id = (SELECT id FROM tenants WHERE slug = 'acme')",
    )
    .bind(start_of_last_month()?)
    .execute(db.pool())
    .await?
    .rows_affected();
    db.close().await;
    ensure!(moved == 1, "{moved} open plan spans of acme were moved");
    let report = api
        .ok(Method::POST, "/v1/billing/runs", Some(&operator), None)
        .await?;
    ensure!(report["invoices"] == 1, "billing run: {report}");

    // The invoice is listed, paid, with its PDF.
    browser
        .goto(&format!("{base}/tenants/acme/billing"))
        .await?;
    let invoices = browser.wait_for_text("#invoices", "PL-000001").await?;
    ensure!(invoices.contains("paid"), "invoices: {invoices:?}");
    let href = browser
        .execute("return document.querySelector('#invoices a.invoice-pdf').getAttribute('href');")
        .await?;
    let href = href.as_str().context("no PDF link")?.to_owned();
    ensure!(
        href == "/tenants/acme/invoices/PL-000001/pdf",
        "PDF link {href:?}"
    );
    // Downloaded by the page itself, with the browser's session cookie.
    let download = browser
        .execute_with(
            "return fetch(arguments[0]).then(r => r.arrayBuffer().then(b => {
                 let text = '';
                 for (const byte of new Uint8Array(b)) text += String.fromCharCode(byte);
                 return {status: r.status, type: r.headers.get('content-type'),
                         disposition: r.headers.get('content-disposition'), body: btoa(text)};
             }));",
            json!([href]),
        )
        .await?;
    ensure!(
        download["status"] == 200,
        "PDF download: {}",
        download["status"]
    );
    ensure!(
        download["type"] == "application/pdf"
            && download["disposition"] == "attachment; filename=\"PL-000001.pdf\"",
        "PDF headers: {} / {}",
        download["type"],
        download["disposition"]
    );
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(download["body"].as_str().context("no PDF body")?)?;
    ensure!(
        bytes.starts_with(b"%PDF"),
        "not a PDF: {:?}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(16)])
    );
    let text = lopdf::Document::load_mem(&bytes)?.extract_text(&[1])?;
    for needed in ["PL-000001", "pro plan", "LAUNCH20"] {
        ensure!(text.contains(needed), "the PDF lacks {needed:?}: {text}");
    }

    browser.quit().await?;
    server.stop()?;
    Ok(())
}
