//! The store of deployment-wide rates ([`plinth_marketplace::rate_leases`]), on both
//! backends: concurrent leases never grant past the limit, unspent requests go back, windows,
//! tenants and kinds are counted apart, and ended windows are pruned. Limiters leasing from one
//! database hold a tenant to its rate between them.

mod common;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, ensure};
use plinth_host::rates::window::{slice_size, wall_clock_ms, window_of};
use plinth_host::rates::{LeaseKey, RateKind, RateLeases};
use plinth_marketplace::rate_leases::{DbLeases, prune};
use plinth_marketplace::rate_limit::RateLimiter;
use sqlx::Row;

use common::TestApp;

on_both_backends!(
    concurrent_leases_never_grant_past_the_limit,
    unspent_requests_go_back_and_ended_windows_are_pruned,
    limiters_on_one_database_share_the_rate,
);

fn key(tenant: &str, kind: RateKind, window: i64) -> LeaseKey {
    LeaseKey {
        tenant: tenant.to_owned(),
        kind,
        window,
    }
}

async fn leased(app: &TestApp, key: &LeaseKey) -> Result<i64> {
    let row = sqlx::query(
        "SELECT leased FROM rate_leases WHERE tenant_id = $1 AND kind = $2 AND window_start = $3",
    )
    .bind(&key.tenant)
    .bind(key.kind.as_str())
    .bind(key.window)
    .fetch_one(app.db().pool())
    .await?;
    Ok(row.try_get("leased")?)
}

async fn concurrent_leases_never_grant_past_the_limit(app: TestApp) -> Result<()> {
    let leases = Arc::new(DbLeases::new(app.db().clone()));
    let window = window_of(wall_clock_ms());
    // Twelve "processes" lease slices of 7 of a limit of 250 until the window is used up.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let leases = Arc::clone(&leases);
        tasks.push(tokio::spawn(async move {
            let key = key("t1", RateKind::Api, window);
            let mut got = 0;
            loop {
                let granted = leases.lease(&key, 7, 250).await?;
                if granted == 0 {
                    return anyhow::Ok(got);
                }
                ensure!(granted <= 7, "granted {granted} of a slice of 7");
                got += granted;
            }
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    ensure!(total == 250, "granted {total} of 250");
    ensure!(leased(&app, &key("t1", RateKind::Api, window)).await? == 250);
    // A lowered limit grants nothing more; a raised one the difference.
    let key1 = key("t1", RateKind::Api, window);
    ensure!(leases.lease(&key1, 7, 100).await? == 0);
    ensure!(leases.lease(&key1, 7, 253).await? == 3);
    // The other kind, another tenant and the next window are counted apart.
    for other in [
        key("t1", RateKind::Outbound, window),
        key("t2", RateKind::Api, window),
        key("t1", RateKind::Api, window + 60_000),
    ] {
        ensure!(leases.lease(&other, 7, 250).await? == 7, "{other:?}");
    }
    // A limit of 0 grants nothing, even to a first lease.
    ensure!(
        leases
            .lease(&key("t3", RateKind::Api, window), 1, 0)
            .await?
            == 0
    );
    Ok(())
}

async fn unspent_requests_go_back_and_ended_windows_are_pruned(app: TestApp) -> Result<()> {
    let leases = DbLeases::new(app.db().clone());
    let now = window_of(wall_clock_ms());
    let current = key("t1", RateKind::Outbound, now);
    ensure!(leases.lease(&current, 10, 12).await? == 10);
    ensure!(leases.lease(&current, 10, 12).await? == 2);
    leases.give_back(&current, 4).await?;
    ensure!(leased(&app, &current).await? == 8);
    ensure!(leases.lease(&current, 10, 12).await? == 4);
    // Giving back more than is leased leaves none, never fewer; an unknown window is a no-op.
    leases.give_back(&current, 100).await?;
    ensure!(leased(&app, &current).await? == 0);
    leases
        .give_back(&key("nobody", RateKind::Api, now), 3)
        .await?;

    let old = key("t1", RateKind::Outbound, now - 3_600_000);
    ensure!(leases.lease(&old, 1, 5).await? == 1);
    ensure!(prune(app.db(), now - 60_000).await? == 1);
    ensure!(
        leased(&app, &current).await? == 0,
        "the current window stays"
    );
    ensure!(prune(app.db(), now - 60_000).await? == 0);
    Ok(())
}

async fn limiters_on_one_database_share_the_rate(app: TestApp) -> Result<()> {
    let limiters: Vec<_> = (0..3)
        .map(|_| RateLimiter::shared(Arc::new(DbLeases::new(app.db().clone()))))
        .collect();
    let limit = 60;
    // Run in a window with time to spare, so the loop stays in one.
    let now = wall_clock_ms();
    if now - window_of(now) > 50_000 {
        tokio::time::sleep(std::time::Duration::from_millis(
            u64::try_from(window_of(now) + 60_000 - now).unwrap_or(0) + 10,
        ))
        .await;
    }
    let window = window_of(wall_clock_ms());
    let mut admitted = 0;
    for i in 0..180_usize {
        if limiters[i % 3]
            .admit("t1", "acme", 60, Instant::now())
            .await
            .is_ok()
        {
            admitted += 1;
        }
    }
    ensure!(admitted == limit, "admitted {admitted} of {limit}");
    let used = leased(&app, &key("t1", RateKind::Api, window)).await?;
    ensure!(used == 60, "leased {used}");
    // Each took at most a slice's worth more than it spent; release gives it back.
    let mut released = 0;
    for limiter in &limiters {
        released += limiter.release().await;
    }
    ensure!(released < 3 * slice_size(60), "released {released}");
    Ok(())
}
