//! Tenants, plans, members, API keys, usage and notifications over HTTP, on both backends.

mod common;

use anyhow::{Context, Result, ensure};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{Reply, TestApp};
use plinth_marketplace::clock::now_ms;
use plinth_marketplace::tenants::{self, TenantRole};

on_both_backends!(
    tenant_lifecycle,
    slugs_and_plans_are_checked_on_create,
    roles_limit_what_members_do,
    other_tenants_are_404_on_every_route,
    api_keys_act_as_members_of_their_own_tenant,
    only_operators_change_plans,
    the_last_owner_is_protected,
    deleted_tenants_vanish_until_restored,
    purge_removes_only_expired_tenants,
    plans_are_listed_and_updated_with_validation,
    usage_follows_the_plan,
    malformed_bodies_name_the_field,
    notifications_come_from_the_tenant_inbox,
    operators_list_every_tenant,
    access_helper_follows_the_rules,
);

/// The error message of a reply.
fn message(reply: &Reply) -> &str {
    reply.body["error"]["message"].as_str().unwrap_or("")
}

/// Creates tenant `slug` as `token`; returns its JSON.
async fn create_tenant(app: &TestApp, token: &str, slug: &str) -> Result<Value> {
    Ok(app
        .post(
            "/v1/tenants",
            Some(token),
            json!({"slug": slug, "name": format!("Tenant {slug}")}),
        )
        .await?
        .expect(StatusCode::CREATED)?
        .body)
}

/// Adds `email` to tenant `slug` as `role`.
async fn add_member(app: &TestApp, token: &str, slug: &str, email: &str, role: &str) -> Result<()> {
    app.post(
        &format!("/v1/tenants/{slug}/members"),
        Some(token),
        json!({"email": email, "role": role}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    Ok(())
}

/// Makes an API key for tenant `slug`; returns (id, key).
async fn api_key(app: &TestApp, token: &str, slug: &str) -> Result<(String, String)> {
    let made = app
        .post(
            &format!("/v1/tenants/{slug}/api-keys"),
            Some(token),
            json!({"name": "ci"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    Ok((
        made.body["id"].as_str().context("key id")?.to_owned(),
        made.body["key"].as_str().context("key")?.to_owned(),
    ))
}

async fn tenant_lifecycle(app: TestApp) -> Result<()> {
    let (owner_id, owner) = app.user("owner@example.com").await?;
    let created = app
        .post(
            "/v1/tenants",
            Some(&owner),
            json!({"slug": "acme", "name": "  Acme Corp  "}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(
        created.body["slug"] == "acme"
            && created.body["name"] == "Acme Corp"
            && created.body["plan"] == "free"
            && created.body["role"] == "owner"
            && created.body["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{}",
        created.body
    );
    let got = app
        .get("/v1/tenants/acme", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        got.body["id"] == created.body["id"]
            && got.body["role"] == "owner"
            && got.body["created_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
        "{}",
        got.body
    );
    ensure!(got.body.get("deleted_at").is_none(), "{}", got.body);

    let members = app
        .get("/v1/tenants/acme/members", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        members.body["items"]
            == json!([{"user_id": owner_id, "email": "owner@example.com",
                "name": "owner@example.com", "role": "owner",
                "created_at": members.body["items"][0]["created_at"]}]),
        "{}",
        members.body
    );

    let patched = app
        .patch(
            "/v1/tenants/acme",
            Some(&owner),
            json!({"name": "Acme Inc"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        patched.body["name"] == "Acme Inc" && patched.body["plan"] == "free",
        "{}",
        patched.body
    );
    app.patch("/v1/tenants/acme", Some(&owner), json!({"name": "   "}))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_name")?;

    let list = app
        .get("/v1/tenants", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        list.body["items"].as_array().map(Vec::len) == Some(1)
            && list.body["items"][0]["name"] == "Acme Inc",
        "{}",
        list.body
    );

    let deleted = app
        .delete("/v1/tenants/acme", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        deleted.body["deleted_at"].is_string() && deleted.body["purge_after"].is_string(),
        "{}",
        deleted.body
    );
    app.get("/v1/tenants/acme", Some(&owner))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    let list = app
        .get("/v1/tenants", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(list.body["items"] == json!([]), "{}", list.body);
    // Tenant routes need a token.
    app.get("/v1/tenants", None)
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    Ok(())
}

async fn slugs_and_plans_are_checked_on_create(app: TestApp) -> Result<()> {
    let operator = app.operator().await?;
    let (_, user) = app.user("slugs@example.com").await?;
    for bad in [
        "a",
        "Acme",
        "1acme",
        "-acme",
        "ac me",
        "ac_me",
        &"a".repeat(41),
    ] {
        let reply = app
            .post(
                "/v1/tenants",
                Some(&user),
                json!({"slug": bad, "name": "x"}),
            )
            .await?
            .expect_error(StatusCode::BAD_REQUEST, "invalid_slug")?;
        ensure!(message(&reply).contains("`slug`"), "{}", reply.body);
    }
    create_tenant(&app, &user, "ab").await?;
    // The longest slug: 40 characters.
    create_tenant(&app, &user, &format!("a{}z", "-9".repeat(19))).await?;
    let taken = app
        .post(
            "/v1/tenants",
            Some(&operator),
            json!({"slug": "ab", "name": "Again"}),
        )
        .await?
        .expect_error(StatusCode::CONFLICT, "slug_taken")?;
    ensure!(message(&taken).contains("\"ab\""), "{}", taken.body);

    let unknown = app
        .post(
            "/v1/tenants",
            Some(&operator),
            json!({"slug": "gold", "name": "Gold", "plan": "platinum"}),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "unknown_plan")?;
    ensure!(message(&unknown).contains("platinum"), "{}", unknown.body);
    app.post(
        "/v1/tenants",
        Some(&user),
        json!({"slug": "paid", "name": "Paid", "plan": "pro"}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "plan_requires_operator")?;
    // Asking for the default plan explicitly is fine.
    app.post(
        "/v1/tenants",
        Some(&user),
        json!({"slug": "freebie", "name": "Free", "plan": "free"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let pro = app
        .post(
            "/v1/tenants",
            Some(&operator),
            json!({"slug": "paid", "name": "Paid", "plan": "pro"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(pro.body["plan"] == "pro", "{}", pro.body);
    // The operator who made it is its owner.
    let got = app
        .get("/v1/tenants/paid", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(got.body["role"] == "owner", "{}", got.body);
    Ok(())
}

async fn roles_limit_what_members_do(app: TestApp) -> Result<()> {
    let (_, owner) = app.user("o@example.com").await?;
    let (_, admin) = app.user("a@example.com").await?;
    let (member_id, member) = app.user("m@example.com").await?;
    let (readonly_id, readonly) = app.user("r@example.com").await?;
    app.user("later@example.com").await?;
    create_tenant(&app, &owner, "acme").await?;
    add_member(&app, &owner, "acme", "a@example.com", "admin").await?;
    add_member(&app, &owner, "acme", "M@Example.com", "member").await?;
    add_member(&app, &admin, "acme", "r@example.com", "readonly").await?;

    // Readonly sees everything readable.
    let got = app
        .get("/v1/tenants/acme", Some(&readonly))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(got.body["role"] == "readonly", "{}", got.body);
    for path in [
        "/v1/tenants/acme/members",
        "/v1/tenants/acme/usage",
        "/v1/tenants/acme/notifications",
    ] {
        app.get(path, Some(&readonly))
            .await?
            .expect(StatusCode::OK)?;
    }
    let listed = app
        .get("/v1/tenants/acme/members", Some(&readonly))
        .await?
        .expect(StatusCode::OK)?;
    let roles: Vec<&str> = listed.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    ensure!(
        roles == ["owner", "admin", "member", "readonly"],
        "{roles:?}"
    );

    // Members and readonly may not change the tenant.
    for token in [&member, &readonly] {
        let reply = app
            .patch("/v1/tenants/acme", Some(token), json!({"name": "Hijacked"}))
            .await?
            .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
        ensure!(message(&reply).contains("admin"), "{}", reply.body);
        app.post(
            "/v1/tenants/acme/members",
            Some(token),
            json!({"email": "later@example.com", "role": "readonly"}),
        )
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
        app.get("/v1/tenants/acme/api-keys", Some(token))
            .await?
            .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
        app.delete("/v1/tenants/acme", Some(token))
            .await?
            .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    }
    // An admin may rename but not delete, and may not make owners.
    app.patch("/v1/tenants/acme", Some(&admin), json!({"name": "Acme 2"}))
        .await?
        .expect(StatusCode::OK)?;
    let reply = app
        .delete("/v1/tenants/acme", Some(&admin))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    ensure!(message(&reply).contains("owner"), "{}", reply.body);
    app.post(
        "/v1/tenants/acme/members",
        Some(&admin),
        json!({"email": "later@example.com", "role": "owner"}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.patch(
        &format!("/v1/tenants/acme/members/{member_id}"),
        Some(&admin),
        json!({"role": "owner"}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    // Admins manage non-owner roles.
    let promoted = app
        .patch(
            &format!("/v1/tenants/acme/members/{member_id}"),
            Some(&admin),
            json!({"role": "admin"}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(promoted.body["role"] == "admin", "{}", promoted.body);
    let now_admin = app
        .get("/v1/tenants/acme", Some(&member))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(now_admin.body["role"] == "admin", "{}", now_admin.body);

    // Bad requests.
    let bad_role = app
        .post(
            "/v1/tenants/acme/members",
            Some(&owner),
            json!({"email": "later@example.com", "role": "boss"}),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_role")?;
    ensure!(message(&bad_role).contains("`role`"), "{}", bad_role.body);
    let unknown = app
        .post(
            "/v1/tenants/acme/members",
            Some(&owner),
            json!({"email": "ghost@example.com", "role": "member"}),
        )
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    ensure!(message(&unknown).contains("account"), "{}", unknown.body);
    app.post(
        "/v1/tenants/acme/members",
        Some(&owner),
        json!({"email": "r@example.com", "role": "member"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "already_member")?;
    app.patch(
        "/v1/tenants/acme/members/not-a-member",
        Some(&owner),
        json!({"role": "member"}),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    // A member may leave on their own.
    app.delete(
        &format!("/v1/tenants/acme/members/{readonly_id}"),
        Some(&readonly),
    )
    .await?
    .expect(StatusCode::NO_CONTENT)?;
    app.get("/v1/tenants/acme", Some(&readonly))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    Ok(())
}

/// Every tenant route, as (method, path under `/v1/tenants/{slug}`, body).
fn tenant_routes(slug: &str, user_id: &str) -> Vec<(Method, String, Option<Value>)> {
    let base = format!("/v1/tenants/{slug}");
    vec![
        (Method::GET, base.clone(), None),
        (
            Method::PATCH,
            base.clone(),
            Some(json!({"name": "Mine now"})),
        ),
        (Method::DELETE, base.clone(), None),
        (Method::GET, format!("{base}/members"), None),
        (
            Method::POST,
            format!("{base}/members"),
            Some(json!({"email": "a@example.com", "role": "owner"})),
        ),
        (
            Method::PATCH,
            format!("{base}/members/{user_id}"),
            Some(json!({"role": "readonly"})),
        ),
        (Method::DELETE, format!("{base}/members/{user_id}"), None),
        (Method::GET, format!("{base}/api-keys"), None),
        (
            Method::POST,
            format!("{base}/api-keys"),
            Some(json!({"name": "stolen"})),
        ),
        (Method::DELETE, format!("{base}/api-keys/some-key"), None),
        (Method::GET, format!("{base}/usage"), None),
        (Method::GET, format!("{base}/notifications"), None),
    ]
}

async fn other_tenants_are_404_on_every_route(app: TestApp) -> Result<()> {
    let (_, alice) = app.user("a@example.com").await?;
    let (bob_id, bob) = app.user("b@example.com").await?;
    create_tenant(&app, &alice, "alpha").await?;
    create_tenant(&app, &bob, "beta").await?;
    let (beta_key_id, _) = api_key(&app, &bob, "beta").await?;
    for (method, path, body) in tenant_routes("beta", &bob_id) {
        let reply = app
            .call(method.clone(), &path, Some(&alice), body.clone())
            .await?
            .expect_error(StatusCode::NOT_FOUND, "not_found")
            .with_context(|| format!("{method} {path}"))?;
        // The same answer as for a tenant that does not exist.
        let unknown = app
            .call(
                method.clone(),
                &path.replace("/beta", "/gamma"),
                Some(&alice),
                body,
            )
            .await?
            .expect_error(StatusCode::NOT_FOUND, "not_found")?;
        ensure!(
            message(&reply).replace("beta", "gamma") == message(&unknown),
            "{method} {path}: {} vs {}",
            reply.body,
            unknown.body
        );
    }
    app.delete(
        &format!("/v1/tenants/beta/api-keys/{beta_key_id}"),
        Some(&alice),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    // Nothing of beta changed.
    let beta = app
        .get("/v1/tenants/beta", Some(&bob))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(beta.body["name"] == "Tenant beta", "{}", beta.body);
    let members = app
        .get("/v1/tenants/beta/members", Some(&bob))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        members.body["items"].as_array().map(Vec::len) == Some(1),
        "{}",
        members.body
    );
    let keys = app
        .get("/v1/tenants/beta/api-keys", Some(&bob))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        keys.body["items"].as_array().map(Vec::len) == Some(1)
            && keys.body["items"][0]["revoked_at"].is_null(),
        "{}",
        keys.body
    );
    // Alice's list shows only alpha.
    let list = app.get("/v1/tenants", Some(&alice)).await?;
    ensure!(
        list.body["items"].as_array().map(Vec::len) == Some(1)
            && list.body["items"][0]["slug"] == "alpha",
        "{}",
        list.body
    );
    Ok(())
}

async fn api_keys_act_as_members_of_their_own_tenant(app: TestApp) -> Result<()> {
    let (alice_id, alice) = app.user("a@example.com").await?;
    let (bob_id, bob) = app.user("b@example.com").await?;
    create_tenant(&app, &alice, "alpha").await?;
    create_tenant(&app, &bob, "beta").await?;
    let (key_id, key) = api_key(&app, &alice, "alpha").await?;
    ensure!(key.starts_with("plk_"), "{key}");

    // The list never shows the secret, and the database holds only its hash.
    let listed = app
        .get("/v1/tenants/alpha/api-keys", Some(&alice))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        listed.body["items"][0]["id"] == key_id
            && listed.body["items"][0]["name"] == "ci"
            && listed.body["items"][0].get("key").is_none()
            && !String::from_utf8_lossy(&listed.bytes).contains(&key),
        "{}",
        listed.body
    );
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE token_hash = $1")
        .bind(&key)
        .fetch_one(app.db().pool())
        .await?;
    ensure!(stored == 0, "the key itself must not be stored");

    // Member-level reads of its own tenant work.
    let got = app
        .get("/v1/tenants/alpha", Some(&key))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(got.body["role"] == "api_key", "{}", got.body);
    for path in [
        "/v1/tenants/alpha/members",
        "/v1/tenants/alpha/usage",
        "/v1/tenants/alpha/notifications",
    ] {
        app.get(path, Some(&key)).await?.expect(StatusCode::OK)?;
    }
    // Admin and owner routes of its own tenant: 403.
    for (method, path, body) in tenant_routes("alpha", &alice_id) {
        if method == Method::GET
            && (path.ends_with("/alpha")
                || path.ends_with("/members")
                || path.ends_with("/usage")
                || path.ends_with("/notifications"))
        {
            continue;
        }
        app.call(method.clone(), &path, Some(&key), body)
            .await?
            .expect_error(StatusCode::FORBIDDEN, "forbidden")
            .with_context(|| format!("{method} {path}"))?;
    }
    // Every route of another tenant: 404.
    for (method, path, body) in tenant_routes("beta", &bob_id) {
        app.call(method.clone(), &path, Some(&key), body)
            .await?
            .expect_error(StatusCode::NOT_FOUND, "not_found")
            .with_context(|| format!("{method} {path}"))?;
    }
    // A key is not a user: it cannot make tenants or list them.
    app.post(
        "/v1/tenants",
        Some(&key),
        json!({"slug": "keyed", "name": "Keyed"}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "user_required")?;

    // Another tenant's key id is not found; revoking works once and the key stops working.
    let (beta_key_id, beta_key) = api_key(&app, &bob, "beta").await?;
    app.delete(
        &format!("/v1/tenants/alpha/api-keys/{beta_key_id}"),
        Some(&alice),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.get("/v1/tenants/beta", Some(&beta_key))
        .await?
        .expect(StatusCode::OK)?;
    app.delete(
        &format!("/v1/tenants/alpha/api-keys/{key_id}"),
        Some(&alice),
    )
    .await?
    .expect(StatusCode::NO_CONTENT)?;
    app.get("/v1/tenants/alpha", Some(&key))
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    let listed = app
        .get("/v1/tenants/alpha/api-keys", Some(&alice))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        listed.body["items"][0]["revoked_at"].is_string(),
        "{}",
        listed.body
    );
    app.post(
        "/v1/tenants/alpha/api-keys",
        Some(&alice),
        json!({"name": ""}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "invalid_name")?;
    Ok(())
}

async fn only_operators_change_plans(app: TestApp) -> Result<()> {
    let operator = app.operator().await?;
    let (_, owner) = app.user("o@example.com").await?;
    create_tenant(&app, &owner, "acme").await?;
    let reply = app
        .patch(
            "/v1/tenants/acme",
            Some(&owner),
            json!({"plan": "enterprise"}),
        )
        .await?
        .expect_error(StatusCode::FORBIDDEN, "plan_requires_operator")?;
    ensure!(message(&reply).contains("operator"), "{}", reply.body);
    // Nothing changed, not even a name sent along.
    app.patch(
        "/v1/tenants/acme",
        Some(&owner),
        json!({"plan": "pro", "name": "Renamed"}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "plan_requires_operator")?;
    let got = app.get("/v1/tenants/acme", Some(&owner)).await?;
    ensure!(
        got.body["plan"] == "free" && got.body["name"] == "Tenant acme",
        "{}",
        got.body
    );

    app.patch(
        "/v1/tenants/acme",
        Some(&operator),
        json!({"plan": "diamond"}),
    )
    .await?
    .expect_error(StatusCode::BAD_REQUEST, "unknown_plan")?;
    let changed = app
        .patch("/v1/tenants/acme", Some(&operator), json!({"plan": "pro"}))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        changed.body["plan"] == "pro" && changed.body["role"] == "operator",
        "{}",
        changed.body
    );
    let got = app.get("/v1/tenants/acme", Some(&owner)).await?;
    ensure!(got.body["plan"] == "pro", "{}", got.body);
    let stored = tenants::plan(app.db(), "pro").await?;
    ensure!(
        stored.paid_plugins && stored.max_installs == 50,
        "{stored:?}"
    );
    Ok(())
}

async fn the_last_owner_is_protected(app: TestApp) -> Result<()> {
    let (owner_id, owner) = app.user("o@example.com").await?;
    let (second_id, second) = app.user("s@example.com").await?;
    let (admin_id, admin) = app.user("a@example.com").await?;
    create_tenant(&app, &owner, "acme").await?;
    add_member(&app, &owner, "acme", "a@example.com", "admin").await?;

    let demote = app
        .patch(
            &format!("/v1/tenants/acme/members/{owner_id}"),
            Some(&owner),
            json!({"role": "admin"}),
        )
        .await?
        .expect_error(StatusCode::CONFLICT, "last_owner")?;
    ensure!(message(&demote).contains("last owner"), "{}", demote.body);
    app.delete(
        &format!("/v1/tenants/acme/members/{owner_id}"),
        Some(&owner),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "last_owner")?;
    // An admin may not touch an owner at all.
    app.delete(
        &format!("/v1/tenants/acme/members/{owner_id}"),
        Some(&admin),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.patch(
        &format!("/v1/tenants/acme/members/{owner_id}"),
        Some(&admin),
        json!({"role": "readonly"}),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "forbidden")?;

    // With a second owner, the first may step down; then the second is the last.
    add_member(&app, &owner, "acme", "s@example.com", "owner").await?;
    app.patch(
        &format!("/v1/tenants/acme/members/{owner_id}"),
        Some(&owner),
        json!({"role": "member"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    app.delete(
        &format!("/v1/tenants/acme/members/{second_id}"),
        Some(&second),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "last_owner")?;
    // The owner removes the admin; the former owner, now a member, cannot.
    app.delete(
        &format!("/v1/tenants/acme/members/{admin_id}"),
        Some(&owner),
    )
    .await?
    .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.delete(
        &format!("/v1/tenants/acme/members/{admin_id}"),
        Some(&second),
    )
    .await?
    .expect(StatusCode::NO_CONTENT)?;
    let owners: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tenant_members m JOIN tenants t ON t.id = m.tenant_id \
         WHERE t.slug = 'acme' AND m.role = 'owner'",
    )
    .fetch_one(app.db().pool())
    .await?;
    ensure!(owners == 1, "{owners} owners");
    Ok(())
}

async fn deleted_tenants_vanish_until_restored(app: TestApp) -> Result<()> {
    let operator = app.operator().await?;
    let (_, owner) = app.user("o@example.com").await?;
    let (_, admin) = app.user("a@example.com").await?;
    create_tenant(&app, &owner, "acme").await?;
    add_member(&app, &owner, "acme", "a@example.com", "admin").await?;
    let (_, key) = api_key(&app, &owner, "acme").await?;
    let (revoked_id, revoked) = api_key(&app, &owner, "acme").await?;
    app.delete(
        &format!("/v1/tenants/acme/api-keys/{revoked_id}"),
        Some(&owner),
    )
    .await?
    .expect(StatusCode::NO_CONTENT)?;

    let before = now_ms();
    let deleted = app
        .delete("/v1/tenants/acme", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    let purge_after: i64 =
        sqlx::query_scalar("SELECT purge_after FROM tenants WHERE slug = 'acme'")
            .fetch_one(app.db().pool())
            .await?;
    let grace = app.state.settings().tenant_grace_ms;
    ensure!(
        purge_after >= before + grace && purge_after <= now_ms() + grace,
        "purge_after {purge_after} is not deletion time + grace"
    );
    ensure!(deleted.body["purge_after"].is_string(), "{}", deleted.body);

    // Gone for everyone, operator included; the API key is revoked.
    for token in [&owner, &admin, &operator] {
        for path in [
            "/v1/tenants/acme",
            "/v1/tenants/acme/members",
            "/v1/tenants/acme/usage",
        ] {
            app.get(path, Some(token))
                .await?
                .expect_error(StatusCode::NOT_FOUND, "not_found")?;
        }
    }
    app.delete("/v1/tenants/acme", Some(&owner))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.get("/v1/tenants/acme", Some(&key))
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    // The slug stays taken until the tenant is purged.
    app.post(
        "/v1/tenants",
        Some(&admin),
        json!({"slug": "acme", "name": "Squatter"}),
    )
    .await?
    .expect_error(StatusCode::CONFLICT, "slug_taken")?;

    // Only an operator restores.
    app.post("/v1/tenants/acme/restore", Some(&owner), json!({}))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    app.post("/v1/tenants/nope/restore", Some(&operator), json!({}))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    let restored = app
        .post("/v1/tenants/acme/restore", Some(&operator), json!({}))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        restored.body["slug"] == "acme" && restored.body.get("deleted_at").is_none(),
        "{}",
        restored.body
    );
    app.get("/v1/tenants/acme", Some(&admin))
        .await?
        .expect(StatusCode::OK)?;
    // The key the deletion revoked works again; the one revoked before stays revoked.
    app.get("/v1/tenants/acme", Some(&key))
        .await?
        .expect(StatusCode::OK)?;
    app.get("/v1/tenants/acme", Some(&revoked))
        .await?
        .expect_error(StatusCode::UNAUTHORIZED, "unauthenticated")?;
    app.post("/v1/tenants/acme/restore", Some(&operator), json!({}))
        .await?
        .expect_error(StatusCode::CONFLICT, "not_deleted")?;

    // Past the grace period a tenant cannot be restored.
    app.delete("/v1/tenants/acme", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    sqlx::query("UPDATE tenants SET purge_after = $1 WHERE slug = 'acme'")
        .bind(now_ms() - 1)
        .execute(app.db().pool())
        .await?;
    app.post("/v1/tenants/acme/restore", Some(&operator), json!({}))
        .await?
        .expect_error(StatusCode::CONFLICT, "grace_expired")?;
    Ok(())
}

async fn purge_removes_only_expired_tenants(app: TestApp) -> Result<()> {
    let (_, owner) = app.user("o@example.com").await?;
    app.user("m@example.com").await?;
    for slug in ["old", "recent", "live"] {
        create_tenant(&app, &owner, slug).await?;
        add_member(&app, &owner, slug, "m@example.com", "member").await?;
        api_key(&app, &owner, slug).await?;
    }
    let old_id: String = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'old'")
        .fetch_one(app.db().pool())
        .await?;
    sqlx::query(
        "INSERT INTO notifications (id, recipient_kind, recipient_id, kind, message, payload, \
         created_at) VALUES ('n1', 'tenant', $1, 'yanked', 'A version was yanked', '{}', 1)",
    )
    .bind(&old_id)
    .execute(app.db().pool())
    .await?;
    app.delete("/v1/tenants/old", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    app.delete("/v1/tenants/recent", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    let grace = app.state.settings().tenant_grace_ms;
    // "recent" was deleted a day later than "old".
    sqlx::query("UPDATE tenants SET purge_after = purge_after + $1 WHERE slug = 'recent'")
        .bind(plinth_marketplace::clock::DAY_MS)
        .execute(app.db().pool())
        .await?;

    // Nothing is past its grace period yet.
    ensure!(tenants::purge_expired(app.db(), now_ms()).await?.is_empty());
    let beyond_old_grace = now_ms() + grace + 1000;
    ensure!(
        tenants::purge_expired(app.db(), beyond_old_grace).await? == std::slice::from_ref(&old_id)
    );
    ensure!(
        tenants::purge_expired(app.db(), beyond_old_grace)
            .await?
            .is_empty()
    );

    let slugs: Vec<String> = sqlx::query_scalar("SELECT slug FROM tenants ORDER BY slug")
        .fetch_all(app.db().pool())
        .await?;
    ensure!(slugs == ["live", "recent"], "{slugs:?}");
    for (table, count) in [
        (
            "tenant_members",
            "SELECT COUNT(*) FROM tenant_members WHERE tenant_id = $1",
        ),
        ("tokens", "SELECT COUNT(*) FROM tokens WHERE tenant_id = $1"),
    ] {
        let left: i64 = sqlx::query_scalar(count)
            .bind(&old_id)
            .fetch_one(app.db().pool())
            .await?;
        ensure!(left == 0, "{left} rows of {table} outlived the purge");
    }
    let notes: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE recipient_id = $1")
            .bind(&old_id)
            .fetch_one(app.db().pool())
            .await?;
    ensure!(notes == 0, "notifications outlived the purge");
    // The other tenants keep their members.
    let members: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenant_members")
        .fetch_one(app.db().pool())
        .await?;
    ensure!(members == 4, "{members} members left");
    // The purged slug is free again; the live tenant is untouched.
    create_tenant(&app, &owner, "old").await?;
    app.get("/v1/tenants/live", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    // A day later, "recent" goes too.
    ensure!(
        tenants::purge_expired(
            app.db(),
            beyond_old_grace + plinth_marketplace::clock::DAY_MS
        )
        .await?
        .len()
            == 1
    );
    Ok(())
}

async fn plans_are_listed_and_updated_with_validation(app: TestApp) -> Result<()> {
    let operator = app.operator().await?;
    let (_, user) = app.user("u@example.com").await?;
    let plans = app.get("/v1/plans", None).await?.expect(StatusCode::OK)?;
    let names: Vec<&str> = plans.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    ensure!(names == ["free", "pro", "enterprise"], "{names:?}");
    let free = &plans.body["items"][0];
    ensure!(
        free["quotas"]["max_installs"] == 5
            && free["quotas"]["invocations_per_month"] == 100_000
            && free["quotas"]["kv_bytes"] == 1_048_576
            && free["quotas"]["memory_mb"] == 64
            && free["quotas"]["fuel_per_call"].is_null()
            && free["quotas"]["timeout_ms"] == 1000
            && free["quotas"]["outbound_requests_per_minute"] == 60
            && free["quotas"]["api_requests_per_minute"] == 600
            && free["features"]["paid_plugins"] == false,
        "{free}"
    );
    ensure!(
        plans.body["items"][1]["features"]["paid_plugins"] == true,
        "{}",
        plans.body
    );

    app.put("/v1/plans/free", Some(&user), json!({"max_installs": 9}))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    for (field, value) in [
        ("max_installs", json!(0)),
        ("kv_bytes", json!(-5)),
        ("fuel_per_call", json!(0)),
        ("api_requests_per_minute", json!(-1)),
    ] {
        let reply = app
            .put("/v1/plans/free", Some(&operator), json!({ field: value }))
            .await?
            .expect_error(StatusCode::BAD_REQUEST, "invalid_quota")?;
        ensure!(message(&reply).contains(field), "{}", reply.body);
    }
    for (field, value) in [
        ("timeout_ms", json!("1000")),
        ("memory_mb", json!(1.5)),
        ("paid_plugins", json!(1)),
    ] {
        let reply = app
            .put("/v1/plans/free", Some(&operator), json!({ field: value }))
            .await?
            .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
        ensure!(message(&reply).contains(field), "{}", reply.body);
    }
    let unknown_field = app
        .put("/v1/plans/free", Some(&operator), json!({"max_plugins": 3}))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    ensure!(
        message(&unknown_field).contains("max_plugins"),
        "{}",
        unknown_field.body
    );
    app.put(
        "/v1/plans/gold",
        Some(&operator),
        json!({"max_installs": 3}),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    // Nothing changed so far.
    ensure!(tenants::plan(app.db(), "free").await?.max_installs == 5);

    let updated = app
        .put(
            "/v1/plans/free",
            Some(&operator),
            json!({"max_installs": 7, "fuel_per_call": 5_000_000, "paid_plugins": true}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        updated.body["quotas"]["max_installs"] == 7
            && updated.body["quotas"]["fuel_per_call"] == 5_000_000
            && updated.body["quotas"]["kv_bytes"] == 1_048_576
            && updated.body["features"]["paid_plugins"] == true,
        "{}",
        updated.body
    );
    let stored = tenants::plan(app.db(), "free").await?;
    ensure!(
        stored.max_installs == 7 && stored.fuel_per_call == Some(5_000_000) && stored.paid_plugins,
        "{stored:?}"
    );
    // An explicit null returns fuel to the host's default; leaving it out keeps it.
    app.put(
        "/v1/plans/free",
        Some(&operator),
        json!({"timeout_ms": 2000}),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(tenants::plan(app.db(), "free").await?.fuel_per_call == Some(5_000_000));
    let cleared = app
        .put(
            "/v1/plans/free",
            Some(&operator),
            json!({"fuel_per_call": null}),
        )
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        cleared.body["quotas"]["fuel_per_call"].is_null()
            && cleared.body["quotas"]["timeout_ms"] == 2000,
        "{}",
        cleared.body
    );
    let unknown = tenants::plan(app.db(), "gold")
        .await
        .err()
        .context("an unknown plan is an error")?;
    ensure!(unknown.code() == "not_found", "{unknown}");
    Ok(())
}

async fn usage_follows_the_plan(app: TestApp) -> Result<()> {
    let operator = app.operator().await?;
    let (_, owner) = app.user("o@example.com").await?;
    create_tenant(&app, &owner, "acme").await?;
    let usage = app
        .get("/v1/tenants/acme/usage", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    let body = &usage.body;
    ensure!(body["plan"] == "free", "{body}");
    let start = body["period"]["start"].as_str().context("start")?;
    let end = body["period"]["end"].as_str().context("end")?;
    ensure!(
        start.ends_with("-01T00:00:00Z") && end.ends_with("-01T00:00:00Z") && start < end,
        "{body}"
    );
    let today = plinth_marketplace::clock::rfc3339(now_ms());
    ensure!(
        today.as_str() >= start && today.as_str() < end,
        "{today} is not in {start}..{end}"
    );
    ensure!(
        body["usage"]
            == json!({"installs": 0, "invocations": 0, "kv_bytes": 0, "outbound_requests": 0}),
        "{body}"
    );
    ensure!(body["plugins"] == json!([]), "{body}");
    ensure!(
        body["quotas"]["max_installs"] == 5 && body["features"]["paid_plugins"] == false,
        "{body}"
    );
    ensure!(
        body["items"]
            == json!([
                {"name": "installs", "used": 0, "limit": 5},
                {"name": "invocations", "used": 0, "limit": 100_000},
                {"name": "kv_bytes", "used": 0, "limit": 1_048_576},
            ]),
        "{body}"
    );

    app.patch(
        "/v1/tenants/acme",
        Some(&operator),
        json!({"plan": "enterprise"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let usage = app
        .get("/v1/tenants/acme/usage", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        usage.body["plan"] == "enterprise"
            && usage.body["items"][0] == json!({"name": "installs", "used": 0, "limit": 500})
            && usage.body["quotas"]["memory_mb"] == 256
            && usage.body["features"]["paid_plugins"] == true,
        "{}",
        usage.body
    );
    // A change to the plan itself shows at once.
    app.put(
        "/v1/plans/enterprise",
        Some(&operator),
        json!({"max_installs": 1000}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let usage = app
        .get("/v1/tenants/acme/usage", Some(&owner))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(usage.body["items"][0]["limit"] == 1000, "{}", usage.body);
    Ok(())
}

async fn malformed_bodies_name_the_field(app: TestApp) -> Result<()> {
    let (owner_id, owner) = app.user("o@example.com").await?;
    let wrong_type = app
        .post(
            "/v1/tenants",
            Some(&owner),
            json!({"slug": 42, "name": "x"}),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    ensure!(message(&wrong_type).contains("slug"), "{}", wrong_type.body);
    let missing = app
        .post("/v1/tenants", Some(&owner), json!({"slug": "acme"}))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    ensure!(message(&missing).contains("name"), "{}", missing.body);
    let unknown = app
        .post(
            "/v1/tenants",
            Some(&owner),
            json!({"slug": "acme", "name": "Acme", "owner": "me"}),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    ensure!(message(&unknown).contains("owner"), "{}", unknown.body);
    let not_json = app
        .send_bytes(
            Method::POST,
            "/v1/tenants",
            Some(&owner),
            "application/json",
            b"{\"slug\":".to_vec(),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    ensure!(
        message(&not_json).contains("not valid JSON"),
        "{}",
        not_json.body
    );

    create_tenant(&app, &owner, "acme").await?;
    let plan_type = app
        .patch("/v1/tenants/acme", Some(&owner), json!({"plan": 3}))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    ensure!(message(&plan_type).contains("plan"), "{}", plan_type.body);
    let role_type = app
        .patch(
            &format!("/v1/tenants/acme/members/{owner_id}"),
            Some(&owner),
            json!({"role": ["owner"]}),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    ensure!(message(&role_type).contains("role"), "{}", role_type.body);
    let email_type = app
        .post(
            "/v1/tenants/acme/members",
            Some(&owner),
            json!({"email": null, "role": "member"}),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    ensure!(
        message(&email_type).contains("email"),
        "{}",
        email_type.body
    );
    let bad_email = app
        .post(
            "/v1/tenants/acme/members",
            Some(&owner),
            json!({"email": "not-an-email", "role": "member"}),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_email")?;
    ensure!(message(&bad_email).contains("email"), "{}", bad_email.body);
    let key_name = app
        .post(
            "/v1/tenants/acme/api-keys",
            Some(&owner),
            json!({"name": false}),
        )
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    ensure!(message(&key_name).contains("name"), "{}", key_name.body);
    let query = app
        .get("/v1/tenants?include_deleted=maybe", Some(&owner))
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_query")?;
    ensure!(
        message(&query).contains("include_deleted"),
        "{}",
        query.body
    );
    Ok(())
}

async fn notifications_come_from_the_tenant_inbox(app: TestApp) -> Result<()> {
    let (_, alice) = app.user("a@example.com").await?;
    let (_, bob) = app.user("b@example.com").await?;
    let alpha = create_tenant(&app, &alice, "alpha").await?;
    let beta = create_tenant(&app, &bob, "beta").await?;
    let alpha_id = alpha["id"].as_str().context("id")?;
    let beta_id = beta["id"].as_str().context("id")?;
    let rows = [
        (
            "n1",
            "tenant",
            alpha_id,
            "needs_consent",
            r#"{"plugin":"acme.hello"}"#,
            1_000,
            None,
        ),
        (
            "n2",
            "tenant",
            alpha_id,
            "yanked",
            r#"{"version":"1.0.0"}"#,
            2_000,
            Some(3_000_i64),
        ),
        ("n3", "tenant", beta_id, "yanked", "{}", 1_500, None),
        // A publisher with the same id is another inbox.
        (
            "n4",
            "publisher",
            alpha_id,
            "review_decided",
            "{}",
            1_700,
            None,
        ),
    ];
    for (id, kind, recipient, what, payload, at, read) in rows {
        sqlx::query(
            "INSERT INTO notifications (id, recipient_kind, recipient_id, kind, message, payload, \
             created_at, read_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(kind)
        .bind(recipient)
        .bind(what)
        .bind(format!("message {id}"))
        .bind(payload)
        .bind(at)
        .bind(read)
        .execute(app.db().pool())
        .await?;
    }
    let inbox = app
        .get("/v1/tenants/alpha/notifications", Some(&alice))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        inbox.body["items"]
            == json!([
                {"id": "n2", "kind": "yanked", "message": "message n2",
                 "payload": {"version": "1.0.0"}, "created_at": "1970-01-01T00:00:02Z",
                 "read": true},
                {"id": "n1", "kind": "needs_consent", "message": "message n1",
                 "payload": {"plugin": "acme.hello"}, "created_at": "1970-01-01T00:00:01Z",
                 "read": false},
            ]),
        "{}",
        inbox.body
    );
    let other = app
        .get("/v1/tenants/beta/notifications", Some(&bob))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        other.body["items"].as_array().map(Vec::len) == Some(1)
            && other.body["items"][0]["id"] == "n3",
        "{}",
        other.body
    );
    app.get("/v1/tenants/beta/notifications", Some(&alice))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    Ok(())
}

async fn operators_list_every_tenant(app: TestApp) -> Result<()> {
    let operator = app.operator().await?;
    let (_, alice) = app.user("a@example.com").await?;
    let (_, bob) = app.user("b@example.com").await?;
    create_tenant(&app, &alice, "alpha").await?;
    create_tenant(&app, &bob, "beta").await?;
    create_tenant(&app, &bob, "gone").await?;
    app.delete("/v1/tenants/gone", Some(&bob))
        .await?
        .expect(StatusCode::OK)?;
    let slugs = |reply: &Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|t| t["slug"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let all = app
        .get("/v1/tenants", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(slugs(&all) == ["alpha", "beta"], "{}", all.body);
    ensure!(all.body["items"][0]["role"].is_null(), "{}", all.body);
    let with_deleted = app
        .get("/v1/tenants?include_deleted=true", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        slugs(&with_deleted) == ["alpha", "beta", "gone"]
            && with_deleted.body["items"][2]["deleted_at"].is_string()
            && with_deleted.body["items"][2]["purge_after"].is_string(),
        "{}",
        with_deleted.body
    );
    let bobs = app
        .get("/v1/tenants", Some(&bob))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(slugs(&bobs) == ["beta"], "{}", bobs.body);
    app.get("/v1/tenants?include_deleted=true", Some(&bob))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    // The operator may act on any live tenant.
    let got = app
        .get("/v1/tenants/alpha", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(got.body["role"] == "operator", "{}", got.body);
    add_member(&app, &operator, "alpha", "b@example.com", "owner").await?;
    Ok(())
}

async fn access_helper_follows_the_rules(app: TestApp) -> Result<()> {
    let (_, owner) = app.user("o@example.com").await?;
    let (_, member) = app.user("m@example.com").await?;
    create_tenant(&app, &owner, "acme").await?;
    add_member(&app, &owner, "acme", "m@example.com", "member").await?;
    let state = &app.state;
    let principal = plinth_marketplace::auth::authenticate(state, &member).await?;
    let tenant = tenants::access(app.db(), &principal, "acme", TenantRole::Member).await?;
    ensure!(tenant.slug == "acme" && tenant.plan == "free", "{tenant:?}");
    let err = tenants::access(app.db(), &principal, "acme", TenantRole::Admin)
        .await
        .err()
        .context("access should be refused")?;
    ensure!(
        err.code() == "forbidden" && err.to_string().contains("admin"),
        "{err}"
    );
    let err = tenants::access(app.db(), &principal, "nope", TenantRole::Readonly)
        .await
        .err()
        .context("access should be refused")?;
    ensure!(err.code() == "not_found", "{err}");
    let (_, key) = api_key(&app, &owner, "acme").await?;
    let key_principal = plinth_marketplace::auth::authenticate(state, &key).await?;
    tenants::access(app.db(), &key_principal, "acme", TenantRole::Member).await?;
    let err = tenants::access(app.db(), &key_principal, "acme", TenantRole::Admin)
        .await
        .err()
        .context("access should be refused")?;
    ensure!(err.code() == "forbidden", "{err}");
    Ok(())
}
