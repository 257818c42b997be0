//! Helpers for the billing tests: a marketplace billing through the processor double, with
//! e-mail to an SMTP server on loopback, both started per test.

#![allow(
    dead_code,
    reason = "shared by several test binaries; each uses part of it"
)]

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::billing::mail::MailSettings;
use plinth_marketplace::billing::processor::stripe::StripeProcessor;
use plinth_marketplace::clock::DAY_MS;
use plinth_marketplace::usage::Store;
use plinth_processor_double::{DoubleConfig, ProcessorDouble};
use plinth_test_support::TestDatabase;
use plinth_test_support::smtp::{ReceivedMail, SmtpSink};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApp;

/// The processor's API key in the tests.
pub const API_KEY: &str = "sk_test_plinth";

/// Runs each named `async fn(Billing) -> anyhow::Result<()>` on SQLite and PostgreSQL.
#[macro_export]
macro_rules! on_both_backends_billing {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let database = plinth_test_support::TestDatabase::sqlite().expect("SQLite");
                let billing = $crate::billing_support::Billing::start(database).await.expect("start on SQLite");
                super::$name(billing).await.expect("test on SQLite");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let database = plinth_test_support::TestDatabase::postgres(stringify!($name))
                    .await
                    .expect("PostgreSQL");
                let billing = $crate::billing_support::Billing::start(database).await.expect("start on PostgreSQL");
                super::$name(billing).await.expect("test on PostgreSQL");
            }
        }
    )*};
}

/// A marketplace with a host, billing through the double, mailing to the sink.
pub struct Billing {
    pub app: TestApp,
    pub double: ProcessorDouble,
    pub smtp: SmtpSink,
    pub files: tempfile::TempDir,
}

impl Billing {
    /// Starts the double, the SMTP sink and the marketplace; declines are retried after one and
    /// two days, and a tenant past due for five days is suspended.
    pub async fn start(database: TestDatabase) -> Result<Billing> {
        let double = ProcessorDouble::start(DoubleConfig {
            secret_key: API_KEY.to_owned(),
            webhook_url: None,
            webhook_secret: crate::ledger_support::SECRET.to_owned(),
        })
        .await?;
        let smtp = SmtpSink::start().await?;
        let files = tempfile::tempdir()?;
        let mut settings = crate::ledger_support::settings(&files);
        settings.billing.processor = Some(Arc::new(
            StripeProcessor::new(
                &double.base_url(),
                API_KEY.to_owned(),
                Duration::from_secs(10),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        ));
        settings.billing.mail = Some(MailSettings {
            smtp_url: smtp.url(),
            from: "Plinth <billing@plinth.test>".to_owned(),
            timeout: Duration::from_secs(10),
        });
        settings.billing.public_url = "http://console.plinth.test".to_owned();
        settings.billing.retry_after_ms = vec![DAY_MS, 2 * DAY_MS];
        settings.billing.suspend_after_ms = 5 * DAY_MS;
        settings.billing.tick_every = Duration::from_secs(3600);
        let app = TestApp::start_with_host_settings(database, settings).await?;
        double.set_webhook_url(&format!("{}/v1/billing/webhook", app.base));
        Ok(Billing {
            app,
            double,
            smtp,
            files,
        })
    }

    /// Billing's step at `at` (Unix ms), as the server's periodic run would do it then.
    pub async fn tick(&self, at: i64) -> Result<plinth_marketplace::billing::cycle::TickReport> {
        plinth_marketplace::billing::cycle::tick(&self.app.state, at)
            .await
            .map_err(|e| anyhow::anyhow!("billing tick at {at}: {e}"))
    }

    /// Writes the host's usage counters to the database now.
    pub async fn flush_usage(&self) -> Result<()> {
        let meter = self.app.state.runtime()?.host.meter().clone();
        meter
            .flush_to(&Store::new(self.app.db().clone()))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }

    /// The messages to `to` received so far.
    pub fn mail_to(&self, to: &str) -> Vec<ReceivedMail> {
        self.smtp
            .messages()
            .into_iter()
            .filter(|m| m.to.iter().any(|r| r.contains(to)))
            .collect()
    }

    /// Every event the double sent, delivered again (freshly signed); each answer's status.
    pub async fn replay_events(&self) -> Result<Vec<String>> {
        let mut statuses = Vec::new();
        for event in self.double.events() {
            let now = crate::ledger_support::now_secs();
            let signature = self.double.sign(&event.body, now);
            let reply = crate::ledger_support::send(
                &self.app,
                event.body.clone().into_bytes(),
                Some(&signature),
            )
            .await?;
            ensure!(
                reply.status.is_success(),
                "replaying {} ({}) answered {}: {}",
                event.id,
                event.kind,
                reply.status,
                reply.body
            );
            statuses.push(reply.body["status"].as_str().unwrap_or_default().to_owned());
        }
        Ok(statuses)
    }
}

/// Installs `plugin` 0.1.0 in tenant `slug` as `admin`.
pub async fn install(app: &TestApp, admin: &str, slug: &str, plugin: &str) -> Result<()> {
    let shown = app
        .get(&format!("/v1/plugins/{plugin}/versions/0.1.0"), None)
        .await?
        .expect(StatusCode::OK)?;
    app.post(
        &format!("/v1/tenants/{slug}/installs"),
        Some(admin),
        json!({"plugin": plugin, "permissions_digest": shown.body["permissions_digest"], "config": {}}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    Ok(())
}

/// Sends `greet` to tenant `slug` with `key`; the status and body.
pub async fn greet(app: &TestApp, key: &str, slug: &str) -> Result<(StatusCode, Value)> {
    let reply = app
        .post(
            &format!("/v1/tenants/{slug}/events"),
            Some(key),
            json!({"topic": "greet", "payload": "Eve"}),
        )
        .await?;
    Ok((reply.status, reply.body))
}

/// The first millisecond of the month after the one `ms` is in.
pub fn next_month(ms: i64) -> Result<i64> {
    Ok(plinth_marketplace::month::of(ms)?.end_ms)
}

/// A tenant API key for `slug`.
pub async fn api_key(app: &TestApp, admin: &str, slug: &str) -> Result<String> {
    let made = app
        .post(
            &format!("/v1/tenants/{slug}/api-keys"),
            Some(admin),
            json!({"name": "backend"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    Ok(made.body["key"].as_str().context("key")?.to_owned())
}
