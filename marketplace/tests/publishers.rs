//! Publishers, members, signing keys and API keys over HTTP, on both backends.

mod common;
mod publishing;

use anyhow::{Context, Result, ensure};
use plinth_package::SecretKey;
use reqwest::StatusCode;
use serde_json::json;

use common::TestApp;
use publishing::{developer, hello, submit, submit_ok};

on_both_backends!(
    namespace_rules,
    only_members_see_a_publisher,
    only_owners_add_members,
    keys_are_added_listed_and_revoked,
    publisher_api_keys_submit_for_their_publisher_only,
    a_users_publishers_are_listed_with_their_role,
    lookalike_namespaces_and_hidden_characters_are_refused,
);

async fn a_users_publishers_are_listed_with_their_role(app: TestApp) -> Result<()> {
    use plinth_marketplace::publishers::{MemberRole, of_user};
    let (ada_id, ada) = app.user("ada@example.com").await?;
    let (grace_id, grace) = app.user("grace@example.com").await?;
    for (token, namespace) in [(&ada, "zeta"), (&ada, "alpha"), (&grace, "other")] {
        app.post(
            "/v1/publishers",
            Some(token),
            json!({"namespace": namespace, "name": namespace}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    }
    app.post(
        "/v1/publishers/other/members",
        Some(&grace),
        json!({"email": "ada@example.com", "role": "member"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let listed: Vec<(String, MemberRole)> = of_user(app.state.db(), &ada_id)
        .await?
        .into_iter()
        .map(|(publisher, role)| (publisher.namespace, role))
        .collect();
    ensure!(
        listed
            == [
                ("alpha".to_owned(), MemberRole::Owner),
                ("other".to_owned(), MemberRole::Member),
                ("zeta".to_owned(), MemberRole::Owner),
            ],
        "{listed:?}"
    );
    ensure!(of_user(app.state.db(), &grace_id).await?.len() == 1);
    ensure!(of_user(app.state.db(), "nobody").await?.is_empty());
    Ok(())
}

async fn namespace_rules(app: TestApp) -> Result<()> {
    let (_, token) = app.user("ada@example.com").await?;
    for bad in ["a", "9lives", "Acme", "ac_me", "acme-", &"x".repeat(41)] {
        let reply = app
            .post(
                "/v1/publishers",
                Some(&token),
                json!({"namespace": bad, "name": "X"}),
            )
            .await?
            .expect_error(StatusCode::BAD_REQUEST, "invalid_namespace")?;
        ensure!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("namespace"),
            "{}",
            reply.body
        );
    }
    app.post(
        "/v1/publishers",
        Some(&token),
        json!({"namespace": "plinth", "name": "Mine"}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "namespace_reserved")?;
    let created = app
        .post(
            "/v1/publishers",
            Some(&token),
            json!({"namespace": "acme", "name": "Acme"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(
        created.body["namespace"] == "acme" && created.body["role"] == "owner",
        "{}",
        created.body
    );
    let (_, other) = app.user("bob@example.com").await?;
    app.post(
        "/v1/publishers",
        Some(&other),
        json!({"namespace": "acme", "name": "Also acme"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "namespace_taken")?;
    app.post(
        "/v1/publishers",
        None,
        json!({"namespace": "anon", "name": "A"}),
    )
    .await?
    .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    Ok(())
}

async fn only_members_see_a_publisher(app: TestApp) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "acme").await?;
    app.get("/v1/publishers/acme", Some(&dev.token))
        .await?
        .expect(StatusCode::OK)?;
    let (_, stranger) = app.user("eve@example.com").await?;
    for path in [
        "/v1/publishers/acme",
        "/v1/publishers/acme/keys",
        "/v1/publishers/acme/submissions",
        "/v1/publishers/acme/notifications",
        "/v1/publishers/nobody",
    ] {
        app.get(path, Some(&stranger))
            .await?
            .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    }
    // An operator is not a member either.
    let operator = app.operator().await?;
    app.get("/v1/publishers/acme/keys", Some(&operator))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    Ok(())
}

async fn only_owners_add_members(app: TestApp) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "acme").await?;
    let (bob_id, bob) = app.user("bob@example.com").await?;
    app.user("carol@example.com").await?;
    let added = app
        .post(
            "/v1/publishers/acme/members",
            Some(&dev.token),
            json!({"email": "Bob@example.com", "role": "member"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(added.body["user_id"] == bob_id.as_str(), "{}", added.body);
    let seen = app
        .get("/v1/publishers/acme", Some(&bob))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(seen.body["role"] == "member", "{}", seen.body);
    app.post(
        "/v1/publishers/acme/members",
        Some(&bob),
        json!({"email": "carol@example.com", "role": "member"}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.post(
        "/v1/publishers/acme/members",
        Some(&dev.token),
        json!({"email": "bob@example.com", "role": "owner"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "already_member")?;
    app.post(
        "/v1/publishers/acme/members",
        Some(&dev.token),
        json!({"email": "carol@example.com", "role": "boss"}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_role")?;
    app.post(
        "/v1/publishers/acme/members",
        Some(&dev.token),
        json!({"email": "nobody@example.com", "role": "member"}),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    // A member may register keys.
    app.post(
        "/v1/publishers/acme/keys",
        Some(&bob),
        json!({"public_key": SecretKey::generate()?.public_key().to_string()}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    Ok(())
}

async fn keys_are_added_listed_and_revoked(app: TestApp) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "acme").await?;
    let second = SecretKey::generate()?;
    let added = app
        .post(
            "/v1/publishers/acme/keys",
            Some(&dev.token),
            json!({"public_key": second.public_key().to_string()}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(
        added.body["public_key"] == second.public_key().to_string()
            && added.body["fingerprint"] == second.public_key().fingerprint()
            && added.body["created_at"].is_string()
            && added.body["id"].is_string(),
        "{}",
        added.body
    );
    app.post(
        "/v1/publishers/acme/keys",
        Some(&dev.token),
        json!({"public_key": second.public_key().to_string()}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "key_exists")?;
    let invalid = app
        .post(
            "/v1/publishers/acme/keys",
            Some(&dev.token),
            json!({"public_key": "ed25519:not-base64!"}),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_public_key")?;
    ensure!(
        invalid.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("public_key"),
        "{}",
        invalid.body
    );

    // Revoke the first key by fingerprint; a package it signs is refused, nothing stored.
    let fingerprint = dev.key.public_key().fingerprint();
    let revoked = app
        .delete(
            &format!("/v1/publishers/acme/keys/{fingerprint}"),
            Some(&dev.token),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(revoked.body["revoked_at"].is_string(), "{}", revoked.body);
    let listed = app
        .get("/v1/publishers/acme/keys", Some(&dev.token))
        .await?
        .expect(StatusCode::OK)?;
    let items = listed.body["items"].as_array().context("items")?;
    ensure!(items.len() == 2, "{}", listed.body);
    ensure!(
        items
            .iter()
            .any(|k| k["fingerprint"] == fingerprint.as_str() && k["revoked_at"].is_string()),
        "{}",
        listed.body
    );
    ensure!(
        items
            .iter()
            .any(|k| k["id"] == added.body["id"] && k["revoked_at"].is_null()),
        "{}",
        listed.body
    );
    let before = (
        publishing::count(&app, "submissions").await?,
        publishing::count(&app, "artifacts").await?,
    );
    submit(&app, &dev.token, hello(&dev, "1.0.0")?)
        .await?
        .expect_error(StatusCode::FORBIDDEN, "key_revoked")?;
    let after = (
        publishing::count(&app, "submissions").await?,
        publishing::count(&app, "artifacts").await?,
    );
    ensure!(before == after && after == (0, 0), "{before:?} → {after:?}");

    // Revoking by id also works; an unknown key is a 404.
    app.delete(
        &format!("/v1/publishers/acme/keys/{}", dev.key_id),
        Some(&dev.token),
    )
    .await?
    .expect(StatusCode::OK)?;
    app.delete(
        "/v1/publishers/acme/keys/0123456789abcdef",
        Some(&dev.token),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    Ok(())
}

async fn publisher_api_keys_submit_for_their_publisher_only(app: TestApp) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "acme").await?;
    let other = developer(&app, "bob@example.com", "globex").await?;
    let issued = app
        .post(
            "/v1/publishers/acme/api-keys",
            Some(&dev.token),
            json!({"name": "ci"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    let ci = issued.body["key"].as_str().context("key")?.to_owned();
    ensure!(ci.starts_with("plp_"), "{ci}");
    let id = submit_ok(&app, &ci, hello(&dev, "1.0.0")?).await?;
    app.get(&format!("/v1/submissions/{id}"), Some(&ci))
        .await?
        .expect(StatusCode::OK)?;
    app.get("/v1/publishers/acme/submissions", Some(&ci))
        .await?
        .expect(StatusCode::OK)?;
    // Not a member of another publisher: its packages are refused, its pages are 404.
    submit(&app, &ci, hello(&other, "1.0.0")?)
        .await?
        .expect_error(StatusCode::FORBIDDEN, "wrong_namespace")?;
    app.get("/v1/publishers/globex", Some(&ci))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    // Key management needs a user.
    app.post(
        "/v1/publishers/acme/keys",
        Some(&ci),
        json!({"public_key": SecretKey::generate()?.public_key().to_string()}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "user_required")?;
    Ok(())
}

/// A namespace that looks like one taken (`rnulti` for `multi`) or reserved (`p1inth`) is
/// refused, as is a publisher name with invisible or control characters; nothing is stored.
async fn lookalike_namespaces_and_hidden_characters_are_refused(app: TestApp) -> Result<()> {
    let (_, owner) = app.user("owner@multi.example").await?;
    app.post(
        "/v1/publishers",
        Some(&owner),
        json!({"namespace": "multi", "name": "Multi"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let (_, squatter) = app.user("squatter@example.com").await?;
    for (namespace, like) in [
        ("rnulti", "multi"),
        ("mu1ti", "multi"),
        ("p1inth", "plinth"),
    ] {
        let refused = app
            .post(
                "/v1/publishers",
                Some(&squatter),
                json!({"namespace": namespace, "name": "Totally legit"}),
            )
            .await?
            .expect_error(StatusCode::CONFLICT, "namespace_lookalike")?;
        ensure!(
            refused.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(like)),
            "{}",
            refused.body
        );
    }
    for name in ["Multi\u{202E}itlum", "Mu\u{200B}lti", "Multi\nInc"] {
        app.post(
            "/v1/publishers",
            Some(&squatter),
            json!({"namespace": "honest", "name": name}),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    }
    let publishers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM publishers")
        .fetch_one(app.db().pool())
        .await?;
    ensure!(publishers == 1, "{publishers} publishers stored");
    // A namespace that merely shares letters is fine.
    app.post(
        "/v1/publishers",
        Some(&squatter),
        json!({"namespace": "multiply", "name": "Multiply"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    Ok(())
}
