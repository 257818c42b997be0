//! The audit log: entries written with the changes they record, a hash chain that shows any
//! edit, deletion or reordering, seals under a key outside the database that show a tail
//! rewritten with every hash recomputed, and who may read which entries. On both backends.

mod common;
mod publishing;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::audit::chain::{self, GENESIS_HASH, Hashed};
use plinth_marketplace::audit::key::AuditKey;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use common::TestApp;
use publishing::developer;

on_both_backends!(
    changes_are_recorded_in_a_sound_chain,
    an_edited_entry_is_named,
    deleted_and_reordered_entries_are_found,
    concurrent_appends_keep_the_chain_sound,
    tenant_owners_see_only_their_tenant,
    a_tail_rewritten_with_recomputed_hashes_is_found,
    the_log_verifies_only_under_its_own_key,
    a_log_from_before_seals_is_sealed_once,
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

/// Rewrites entries `from..` as someone who can write the database but has no audit key would:
/// `edit` changes entry `from`'s details, then every hash from there on is recomputed, each
/// entry relinked to its new predecessor, and the head moved to the new last hash. Seals are
/// left as they were, or cleared with `strip_seals`.
async fn rewrite_tail(app: &TestApp, from: i64, edit: &str, strip_seals: bool) -> Result<()> {
    let pool = app.db().pool();
    let rows = sqlx::query(
        "SELECT seq, id, at, actor_kind, actor_id, action, tenant_id, subject, details, hash \
         FROM audit_log ORDER BY seq",
    )
    .fetch_all(pool)
    .await?;
    let mut prev = GENESIS_HASH.to_owned();
    for row in &rows {
        let seq: i64 = row.try_get("seq")?;
        if seq < from {
            prev = row.try_get("hash")?;
            continue;
        }
        let details: String = if seq == from {
            edit.to_owned()
        } else {
            row.try_get("details")?
        };
        let (id, actor_kind, action, subject): (String, String, String, String) = (
            row.try_get("id")?,
            row.try_get("actor_kind")?,
            row.try_get("action")?,
            row.try_get("subject")?,
        );
        let actor_id: Option<String> = row.try_get("actor_id")?;
        let tenant_id: Option<String> = row.try_get("tenant_id")?;
        let hash = Hashed {
            seq,
            id: &id,
            at: row.try_get("at")?,
            actor_kind: &actor_kind,
            actor_id: actor_id.as_deref(),
            action: &action,
            tenant_id: tenant_id.as_deref(),
            subject: &subject,
            details: &details,
            prev_hash: &prev,
        }
        .hash();
        let sql = if strip_seals {
            "UPDATE audit_log SET details = $1, prev_hash = $2, hash = $3, seal = NULL WHERE seq = $4"
        } else {
            "UPDATE audit_log SET details = $1, prev_hash = $2, hash = $3 WHERE seq = $4"
        };
        sqlx::query(sql)
            .bind(&details)
            .bind(&prev)
            .bind(&hash)
            .bind(seq)
            .execute(pool)
            .await?;
        prev = hash;
    }
    let head = if strip_seals {
        "UPDATE audit_head SET hash = $1, seal = NULL WHERE id = 1"
    } else {
        "UPDATE audit_head SET hash = $1 WHERE id = 1"
    };
    sqlx::query(head).bind(&prev).execute(pool).await?;
    Ok(())
}

async fn a_tail_rewritten_with_recomputed_hashes_is_found(app: TestApp) -> Result<()> {
    let (operator, _) = some_history(&app).await?;
    let count = i64::try_from(entries(&app, &operator, "").await?.len())?;
    ensure!(count >= 4, "{count} entries");
    // Every hash and link recomputed: the chain alone would pass; the seals do not.
    rewrite_tail(&app, 2, r#"{"forged":true}"#, false).await?;
    let violation = chain::verify(app.db())
        .await?
        .err()
        .context("a rewritten tail must not verify")?;
    ensure!(
        violation.seq == 2 && violation.problem.contains("seal does not match"),
        "{violation}"
    );
    let status = app
        .get("/v1/audit/verify", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        status.body["sound"] == false && status.body["violation"]["seq"] == 2,
        "{}",
        status.body
    );
    // Seals cleared from there on: an unsealed entry after sealed ones is named.
    rewrite_tail(&app, 2, r#"{"forged":true}"#, true).await?;
    let violation = chain::verify(app.db()).await?.err().context("stripped")?;
    ensure!(
        violation.seq == 2 && violation.problem.contains("no seal"),
        "{violation}"
    );
    // The whole log rewritten, every seal and the head's cleared: it does not pass as a log
    // from before seals.
    rewrite_tail(&app, 1, r#"{"forged":true}"#, true).await?;
    let violation = chain::verify(app.db())
        .await?
        .err()
        .context("all stripped")?;
    ensure!(
        violation.problem.contains("no entry of the log is sealed"),
        "{violation}"
    );
    Ok(())
}

async fn the_log_verifies_only_under_its_own_key(app: TestApp) -> Result<()> {
    some_history(&app).await?;
    ensure!(
        chain::verify(app.db()).await?.is_ok(),
        "sound under its key"
    );
    let other = app.db().clone().with_audit_key(AuditKey::generate()?.0);
    let violation = chain::verify(&other)
        .await?
        .err()
        .context("another key must not verify the log")?;
    ensure!(
        violation.seq == 1 && violation.problem.contains("seal does not match"),
        "{violation}"
    );
    // A handle without a key can neither verify nor append.
    let keyless = plinth_marketplace::Db::connect(app.db().url()).await?;
    ensure!(chain::verify(&keyless).await.is_err());
    let mut tx = keyless.begin().await?;
    let appended = plinth_marketplace::audit::record(
        &mut tx,
        plinth_marketplace::audit::Entry {
            actor: plinth_marketplace::audit::Actor::System,
            action: "test.unsealed",
            tenant_id: None,
            subject: "test:x".to_owned(),
            details: json!({}),
        },
    )
    .await;
    ensure!(appended.is_err(), "an entry was appended without a key");
    tx.rollback().await?;
    keyless.close().await;
    Ok(())
}

async fn a_log_from_before_seals_is_sealed_once(app: TestApp) -> Result<()> {
    some_history(&app).await?;
    let pool = app.db().pool();
    // As migration 0010 leaves a log written before it: no seals anywhere.
    sqlx::query("UPDATE audit_log SET seal = NULL")
        .execute(pool)
        .await?;
    sqlx::query("UPDATE audit_head SET seal = NULL")
        .execute(pool)
        .await?;
    let before = chain::verify(app.db())
        .await?
        .err()
        .context("an unsealed log is not sound yet")?;
    ensure!(
        before.problem.contains("start plinth serve once"),
        "{before}"
    );
    ensure!(plinth_marketplace::audit::seal_unsealed_log(app.db()).await?);
    ensure!(!plinth_marketplace::audit::seal_unsealed_log(app.db()).await?);
    let report = chain::verify(app.db())
        .await?
        .map_err(|v| anyhow::anyhow!("{v}"))?;
    ensure!(report.unsealed_entries == report.entries - 1, "{report:?}");
    // Editing an entry written before the seals still shows: the seal after it covers it.
    sqlx::query("UPDATE audit_log SET details = '{}' WHERE seq = 1")
        .execute(pool)
        .await?;
    ensure!(chain::verify(app.db()).await?.is_err());
    Ok(())
}
