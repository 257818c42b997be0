//! The audit log: entries written with the changes they record, a hash chain that shows any
//! edit, deletion or reordering, and who may read which entries. On both backends.

mod common;
mod publishing;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::audit::chain::{self, GENESIS_HASH};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::TestApp;
use publishing::developer;

on_both_backends!(
    changes_are_recorded_in_a_sound_chain,
    an_edited_entry_is_named,
    deleted_and_reordered_entries_are_found,
    concurrent_appends_keep_the_chain_sound,
    tenant_owners_see_only_their_tenant,
);

/// Operator, a developer with a publisher and key, tenant `acme` owned by `owner`.
async fn some_history(app: &TestApp) -> Result<(String, String)> {
    let operator = app.operator().await?;
    let dev = developer(app, "dev@example.com", "acme").await?;
    app.delete(
        &format!("/v1/publishers/acme/keys/{}", dev.key_id),
        Some(&dev.token),
    )
    .await?
    .expect(StatusCode::OK)?;
    let (_, owner) = app.user("owner@example.com").await?;
    app.post(
        "/v1/tenants",
        Some(&owner),
        json!({"slug": "acme-corp", "name": "Acme Corp"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    app.post(
        "/v1/tenants/acme-corp/api-keys",
        Some(&owner),
        json!({"name": "ci"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    Ok((operator, owner))
}

async fn entries(app: &TestApp, token: &str, query: &str) -> Result<Vec<Value>> {
    let page = app
        .get(&format!("/v1/audit{query}"), Some(token))
        .await?
        .expect(StatusCode::OK)?;
    Ok(page.body["items"].as_array().context("items")?.clone())
}

async fn changes_are_recorded_in_a_sound_chain(app: TestApp) -> Result<()> {
    let (operator, _) = some_history(&app).await?;
    let items = entries(&app, &operator, "").await?;
    let actions: Vec<&str> = items.iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in [
        "publisher.created",
        "publisher_key.added",
        "publisher_key.revoked",
        "tenant.created",
        "tenant_key.created",
    ] {
        ensure!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    // The chain links: seq from 1, each entry naming the hash before it.
    let mut prev = GENESIS_HASH.to_owned();
    for (n, entry) in items.iter().enumerate() {
        ensure!(entry["seq"] == json!(n + 1), "{entry}");
        ensure!(entry["prev_hash"] == json!(prev), "{entry}");
        prev = entry["hash"].as_str().context("hash")?.to_owned();
    }
    let report = chain::verify(app.db())
        .await?
        .map_err(|v| anyhow::anyhow!("{v}"))?;
    ensure!(report.entries == i64::try_from(items.len())?);
    ensure!(report.head_hash == prev);
    let status = app
        .get("/v1/audit/verify", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(status.body["sound"] == true, "{}", status.body);
    Ok(())
}

async fn an_edited_entry_is_named(app: TestApp) -> Result<()> {
    let (operator, _) = some_history(&app).await?;
    let items = entries(&app, &operator, "?action=publisher_key.revoked").await?;
    let target = items.first().context("a revocation entry")?;
    let seq = target["seq"].as_i64().context("seq")?;
    sqlx::query("UPDATE audit_log SET details = $1 WHERE seq = $2")
        .bind(r#"{"key_id":"someone-else"}"#)
        .bind(seq)
        .execute(app.db().pool())
        .await?;
    let violation = chain::verify(app.db())
        .await?
        .err()
        .context("an edited entry must break the chain")?;
    ensure!(violation.seq == seq, "{violation}");
    ensure!(
        violation.id.as_deref() == target["id"].as_str(),
        "{violation}"
    );
    ensure!(violation.problem.contains("edited"), "{violation}");
    let status = app
        .get("/v1/audit/verify", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(status.body["sound"] == false, "{}", status.body);
    ensure!(status.body["violation"]["seq"] == seq, "{}", status.body);
    Ok(())
}

async fn deleted_and_reordered_entries_are_found(app: TestApp) -> Result<()> {
    let (operator, _) = some_history(&app).await?;
    let count = entries(&app, &operator, "").await?.len();
    ensure!(count >= 4, "{count} entries");
    let last = i64::try_from(count)?;
    let pool = app.db().pool();

    // Deleting the newest entry: the head still names it.
    sqlx::query("DELETE FROM audit_log WHERE seq = $1")
        .bind(last)
        .execute(pool)
        .await?;
    let violation = chain::verify(app.db())
        .await?
        .err()
        .context("tail deletion")?;
    ensure!(violation.problem.contains("head"), "{violation}");

    // Deleting one in the middle: a gap.
    sqlx::query("DELETE FROM audit_log WHERE seq = 2")
        .execute(pool)
        .await?;
    let violation = chain::verify(app.db()).await?.err().context("gap")?;
    ensure!(
        violation.seq == 2 && violation.problem.contains("missing"),
        "{violation}"
    );

    // Renumbering to close the gap: the next entry names a hash that is not its predecessor's.
    for seq in 3..last {
        sqlx::query("UPDATE audit_log SET seq = $1 WHERE seq = $2")
            .bind(seq - 1)
            .bind(seq)
            .execute(pool)
            .await?;
    }
    let violation = chain::verify(app.db()).await?.err().context("renumbered")?;
    ensure!(violation.seq == 2, "{violation}");
    Ok(())
}

async fn concurrent_appends_keep_the_chain_sound(app: TestApp) -> Result<()> {
    let (_, owner) = some_history(&app).await?;
    let before = chain::verify(app.db())
        .await?
        .map_err(|v| anyhow::anyhow!("{v}"))?;
    let mut tasks = Vec::new();
    for n in 0..12 {
        let client = app.client.clone();
        let url = format!("{}/v1/tenants/acme-corp/api-keys", app.base);
        let owner = owner.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(owner)
                .json(&json!({"name": format!("key-{n}")}))
                .send()
                .await
                .map(|r| r.status())
        }));
    }
    for task in tasks {
        let status = task.await??;
        ensure!(status == StatusCode::CREATED, "{status}");
    }
    let after = chain::verify(app.db())
        .await?
        .map_err(|v| anyhow::anyhow!("{v}"))?;
    ensure!(
        after.entries == before.entries + 12,
        "{after:?} after {before:?}"
    );
    Ok(())
}

async fn tenant_owners_see_only_their_tenant(app: TestApp) -> Result<()> {
    let (operator, owner) = some_history(&app).await?;
    let (_, other) = app.user("other@example.com").await?;
    app.post(
        "/v1/tenants",
        Some(&other),
        json!({"slug": "globex", "name": "Globex"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    app.post(
        "/v1/tenants/globex/api-keys",
        Some(&other),
        json!({"name": "theirs"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;

    let mine = entries(&app, &owner, "?tenant=acme-corp").await?;
    ensure!(!mine.is_empty());
    let acme_id = mine[0]["tenant_id"].clone();
    ensure!(mine.iter().all(|e| e["tenant_id"] == acme_id), "{mine:?}");
    // Another tenant's log is not found; the whole log needs the operator.
    app.get("/v1/audit?tenant=globex", Some(&owner))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.get("/v1/audit", Some(&owner))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.get("/v1/audit", None)
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    app.get("/v1/audit/verify", Some(&owner))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    // The operator pages through everything.
    let all = entries(&app, &operator, "").await?;
    let first_two = app
        .get("/v1/audit?limit=2", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    let cursor = first_two.body["next_cursor"].as_i64().context("cursor")?;
    let rest = entries(&app, &operator, &format!("?after={cursor}")).await?;
    ensure!(
        rest.len() + 2 == all.len(),
        "{} + 2 != {}",
        rest.len(),
        all.len()
    );
    app.get("/v1/audit?limit=0", Some(&operator))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_query")?;
    Ok(())
}
