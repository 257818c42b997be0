//! Publishers, members, signing keys and API keys over HTTP, on both backends.

mod common;
mod publishing;

use anyhow::{Context, Result, ensure};
use plinth_package::SecretKey;
use reqwest::StatusCode;
use serde_json::json;

use common::TestApp;
use publishing::{challenge, developer, hello, register_key, submit, submit_ok};

on_both_backends!(
    namespace_rules,
    only_members_see_a_publisher,
    only_owners_add_members,
    keys_are_added_listed_and_revoked,
    publisher_api_keys_submit_for_their_publisher_only,
    a_users_publishers_are_listed_with_their_role,
    lookalike_namespaces_and_hidden_characters_are_refused,
    registering_a_key_proves_possession,
    possession_takes_a_key_registered_without_proof,
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
    register_key(&app, &bob, "acme", &SecretKey::generate()?)
        .await?
        .expect(StatusCode::CREATED)?;
    Ok(())
}

async fn keys_are_added_listed_and_revoked(app: TestApp) -> Result<()> {
    let dev = developer(&app, "ada@example.com", "acme").await?;
    let second = SecretKey::generate()?;
    let added = register_key(&app, &dev.token, "acme", &second)
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(
        added.body["public_key"] == second.public_key().to_string()
            && added.body["fingerprint"] == second.public_key().fingerprint()
            && added.body["created_at"].is_string()
            && added.body["id"].is_string()
            && added.body["proven"] == true,
        "{}",
        added.body
    );
    register_key(&app, &dev.token, "acme", &second)
        .await?
        .expect_error(StatusCode::CONFLICT, "key_exists")?;
    let invalid = app
        .post(
            "/v1/publishers/acme/keys/challenges",
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
        .expect_error(StatusCode::FORBIDDEN, "signature_key_revoked")?;
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
        .expect_error(StatusCode::FORBIDDEN, "wrong_publisher")?;
    app.get("/v1/publishers/globex", Some(&ci))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    // Key management needs a user.
    for path in [
        "/v1/publishers/acme/keys",
        "/v1/publishers/acme/keys/challenges",
    ] {
        app.post(
            path,
            Some(&ci),
            json!({"public_key": SecretKey::generate()?.public_key().to_string()}),
        )
        .await?
        .expect_error(StatusCode::FORBIDDEN, "user_required")?;
    }
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

/// The publisher's keys as listed: (fingerprint, proven).
async fn listed_keys(app: &TestApp, token: &str, ns: &str) -> Result<Vec<(String, bool)>> {
    let listed = app
        .get(&format!("/v1/publishers/{ns}/keys"), Some(token))
        .await?
        .expect(StatusCode::OK)?;
    Ok(listed.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .map(|k| {
            (
                k["fingerprint"].as_str().unwrap_or_default().to_owned(),
                k["proven"] == true,
            )
        })
        .collect())
}

/// Key squatting: publisher globex registers acme's public key. Without the secret it cannot
/// prove possession, whatever it replays; each attempt ends in its typed error and registers
/// nothing, and acme's key stays acme's.
async fn registering_a_key_proves_possession(app: TestApp) -> Result<()> {
    let acme = developer(&app, "ada@example.com", "acme").await?;
    let globex = developer(&app, "eve@example.com", "globex").await?;
    let wanted = SecretKey::generate()?; // acme's next key, which globex has seen
    let public_key = wanted.public_key().to_string();
    let keys = "/v1/publishers/globex/keys";
    let before = listed_keys(&app, &globex.token, "globex").await?;

    app.post(keys, Some(&globex.token), json!({"public_key": public_key}))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "proof_required")?;
    let issued = challenge(&app, &globex.token, "globex", &wanted)
        .await?
        .expect(StatusCode::CREATED)?;
    let to_sign = issued.body["challenge"].as_str().context("challenge")?;
    ensure!(
        issued.body["namespace"] == "globex" && issued.body["expires_at"].is_string(),
        "{}",
        issued.body
    );
    let register = |challenge: &str, signature: String| {
        app.post(
            keys,
            Some(&globex.token),
            json!({"public_key": public_key, "challenge": challenge, "signature": signature}),
        )
    };
    // Signed by globex's own key, or made for another publisher: not the key's proof.
    register(
        to_sign,
        globex.key.prove_possession("globex", to_sign).to_string(),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "bad_proof")?;
    register(
        to_sign,
        wanted.prove_possession("acme", to_sign).to_string(),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "bad_proof")?;
    register(to_sign, "not a signature".to_owned())
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    // acme's own proof, replayed to globex: the challenge was issued to acme.
    let acme_challenge = challenge(&app, &acme.token, "acme", &wanted)
        .await?
        .expect(StatusCode::CREATED)?;
    let acme_challenge = acme_challenge.body["challenge"]
        .as_str()
        .context("challenge")?;
    register(
        acme_challenge,
        wanted.prove_possession("acme", acme_challenge).to_string(),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_challenge")?;
    // A challenge issued for another key does not register this one.
    let other = challenge(&app, &globex.token, "globex", &globex.key)
        .await?
        .expect(StatusCode::CREATED)?;
    let other = other.body["challenge"].as_str().context("challenge")?;
    register(other, wanted.prove_possession("globex", other).to_string())
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_challenge")?;
    ensure!(listed_keys(&app, &globex.token, "globex").await? == before);

    // acme proves it holds its key; its challenge is used once; globex still cannot take it.
    let proof = wanted.prove_possession("acme", acme_challenge).to_string();
    let acme_keys = "/v1/publishers/acme/keys";
    let body = json!({"public_key": public_key, "challenge": acme_challenge, "signature": proof});
    app.post(acme_keys, Some(&acme.token), body.clone())
        .await?
        .expect(StatusCode::CREATED)?;
    app.post(acme_keys, Some(&acme.token), body)
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_challenge")?;
    register_key(&app, &acme.token, "acme", &wanted)
        .await?
        .expect_error(StatusCode::CONFLICT, "key_exists")?;

    // An expired challenge is refused.
    let late = SecretKey::generate()?;
    let issued = challenge(&app, &acme.token, "acme", &late)
        .await?
        .expect(StatusCode::CREATED)?;
    let late_challenge = issued.body["challenge"].as_str().context("challenge")?;
    sqlx::query("UPDATE key_challenges SET expires_at = 0 WHERE challenge = $1")
        .bind(late_challenge)
        .execute(app.db().pool())
        .await?;
    app.post(
        acme_keys,
        Some(&acme.token),
        json!({"public_key": late.public_key().to_string(), "challenge": late_challenge,
               "signature": late.prove_possession("acme", late_challenge).to_string()}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_challenge")?;

    // Open challenges are bounded per publisher.
    for _ in 0..20 {
        challenge(&app, &globex.token, "globex", &SecretKey::generate()?)
            .await?
            .expect(StatusCode::CREATED)?;
    }
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM key_challenges c JOIN publishers p ON p.id = c.publisher_id \
         WHERE p.namespace = 'globex'",
    )
    .fetch_one(app.db().pool())
    .await?;
    ensure!(open == 16, "{open} open challenges");
    Ok(())
}

/// A key another publisher registered before proofs were asked (no proof) cannot block its
/// owner: the owner's proof takes it, and the other publisher is told.
async fn possession_takes_a_key_registered_without_proof(app: TestApp) -> Result<()> {
    let acme = developer(&app, "ada@example.com", "acme").await?;
    let squatter = developer(&app, "eve@example.com", "globex").await?;
    let owned = SecretKey::generate()?;
    let fingerprint = owned.public_key().fingerprint();
    sqlx::query(
        "INSERT INTO publisher_keys (id, publisher_id, public_key, fingerprint, created_at) \
         SELECT $1, id, $2, $3, 1 FROM publishers WHERE namespace = 'globex'",
    )
    .bind(plinth_marketplace::id::new_id())
    .bind(owned.public_key().to_string())
    .bind(&fingerprint)
    .execute(app.db().pool())
    .await?;
    ensure!(
        listed_keys(&app, &squatter.token, "globex")
            .await?
            .contains(&(fingerprint.clone(), false))
    );

    register_key(&app, &acme.token, "acme", &owned)
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(
        listed_keys(&app, &acme.token, "acme")
            .await?
            .contains(&(fingerprint.clone(), true))
    );
    let left = listed_keys(&app, &squatter.token, "globex").await?;
    ensure!(
        !left.iter().any(|(f, _)| *f == fingerprint),
        "still globex's: {left:?}"
    );
    let inbox = app
        .get("/v1/publishers/globex/notifications", Some(&squatter.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        inbox.body.to_string().contains("key_released"),
        "{}",
        inbox.body
    );
    // Once proven, the key is acme's: even another holder of it cannot register it elsewhere.
    register_key(&app, &squatter.token, "globex", &owned)
        .await?
        .expect_error(StatusCode::CONFLICT, "key_exists")?;
    let operator = app.operator().await?;
    let audit = app
        .get("/v1/audit?limit=500", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        audit.body.to_string().contains("publisher_key.released"),
        "{}",
        audit.body
    );
    Ok(())
}
