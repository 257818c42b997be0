//! What the passing of time does to billing, in one idempotent step: a running server calls
//! [`tick`] every [`super::BillingSettings::tick_every`], operators may call it
//! (`POST /v1/billing/runs`), and calling it twice at the same time does nothing the first did
//! not.

use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Result;
use crate::state::AppState;

/// What one [`tick`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct TickReport {
    /// Trials that ended.
    pub trials_ended: usize,
    /// Tenants told their trial ends soon.
    pub trials_warned: usize,
    /// Downgrades and cancellations applied at the month's start.
    pub plans_changed: usize,
    /// Invoices issued (or found) for last month.
    pub invoices: usize,
    /// Declined invoices tried again.
    pub retried: usize,
    /// Tenants suspended for unpaid invoices.
    pub suspended: usize,
    /// Quota alerts raised.
    pub alerts: usize,
    /// E-mails sent.
    pub emails_sent: usize,
}

/// Does at `now` what time brings: ends trials (and warns of those ending), applies the
/// downgrades due at the start of the month, issues and collects last month's invoices (with a
/// processor), retries declined invoices that are due, suspends tenants past the grace period,
/// raises quota alerts, and sends the e-mail that is due.
///
/// # Errors
///
/// [`crate::Error::Database`]; the processor's unavailability postpones what needs it instead.
pub async fn tick(state: &AppState, now: i64) -> Result<TickReport> {
    let mut report = TickReport {
        trials_ended: super::subscription::end_trials(state, now).await?,
        trials_warned: super::subscription::warn_trials(state, now).await?,
        plans_changed: super::subscription::apply_pending(state, now).await?,
        ..TickReport::default()
    };
    if state.settings().billing.processor.is_some() {
        let this_month = crate::month::of(now)?;
        let last = crate::month::of(this_month.start_ms - 1)?;
        report.invoices = super::invoices::issue_month(state, &last, now).await?.len();
        report.retried = super::dunning::retry_due(state, now).await?;
    }
    report.suspended = super::dunning::suspend_overdue(state, now).await?;
    report.alerts = super::alerts::check(state, now).await?;
    report.emails_sent = super::outbox::deliver_due(state, now).await?.sent;
    Ok(report)
}

/// Runs [`tick`] every [`super::BillingSettings::tick_every`], from one period after start,
/// until the task is aborted.
pub(crate) fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = state.settings().billing.tick_every;
        // The first tick one period after start: a restarting server does not bill at once.
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match tick(&state, crate::clock::now_ms()).await {
                Ok(report) if report == TickReport::default() => {}
                Ok(report) => tracing::info!(?report, "billing tick"),
                Err(e) => tracing::warn!(error = %e, "the billing tick failed; will retry"),
            }
        }
    })
}
