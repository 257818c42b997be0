//! Ratings over HTTP on both backends: who may rate (an install now, or one that lasted a
//! day; never the plugin's own publisher), one editable rating per person whatever the number
//! of their tenants, shown by the rater's name, publisher replies, reviewer moderation,
//! aggregates, histogram and the damped `sort=rating`.

mod common;
mod publishing;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::clock::{DAY_MS, now_ms};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use common::TestApp;
use publishing::{Dev, developer, hello, submit_ok};

on_both_backends!(
    rating_needs_an_install,
    second_rating_updates_not_duplicates,
    aggregates_and_histogram_follow_ratings,
    damped_sort_prefers_many_good_ratings_to_one_perfect,
    replies_need_the_publisher,
    hiding_needs_a_reviewer_outside_the_publisher,
    concurrent_ratings_all_count,
    a_purged_tenants_rating_leaves_the_aggregates,
    one_rating_per_person_whatever_their_tenants,
    the_publisher_does_not_rate_its_own_plugin,
);

on_both_backends_with_host!(ratings_follow_real_installs);

/// The operator, a developer publishing `labs.hello`, and tenant `acme` owned by `admin`.
struct World {
    operator: String,
    dev: Dev,
    admin: String,
    plugin: String,
}

async fn world(app: &TestApp) -> Result<World> {
    let operator = app.operator().await?;
    let dev = developer(app, "dev@labs.example", "labs").await?;
    let plugin = publish(app, &operator, &dev, "0.1.0").await?;
    let (_, admin) = app.user("admin@acme.example").await?;
    app.tenant(&admin, "acme").await?;
    Ok(World {
        operator,
        dev,
        admin,
        plugin,
    })
}

/// Submits `dev`'s hello plugin at `version` and has the operator approve it.
async fn publish(app: &TestApp, operator: &str, dev: &Dev, version: &str) -> Result<String> {
    let submission = submit_ok(app, &dev.token, hello(dev, version)?).await?;
    app.post(
        &format!("/v1/submissions/{submission}/decision"),
        Some(operator),
        json!({"decision": "approve", "reason": "Reviewed in a test."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    Ok(format!("{}.hello", dev.ns))
}

async fn tenant_id(app: &TestApp, slug: &str) -> Result<String> {
    Ok(sqlx::query("SELECT id FROM tenants WHERE slug = $1")
        .bind(slug)
        .fetch_one(app.db().pool())
        .await?
        .try_get(0)?)
}

/// Records in the install history that tenant `slug` had `plugin` installed from `days_ago`
/// days ago until an hour ago (what an install and an uninstall through the API write).
async fn had_installed(app: &TestApp, slug: &str, plugin: &str, days_ago: f64) -> Result<()> {
    let now = now_ms();
    #[allow(clippy::cast_possible_truncation, reason = "test durations")]
    let installed_at = now - (days_ago * DAY_MS as f64) as i64;
    sqlx::query(
        "INSERT INTO install_spans (id, tenant_id, plugin_id, installed_at, uninstalled_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(plinth_marketplace::id::new_id())
    .bind(tenant_id(app, slug).await?)
    .bind(plugin)
    .bind(installed_at)
    .bind(now - 60 * 60 * 1000)
    .execute(app.db().pool())
    .await?;
    Ok(())
}

/// A tenant `slug` owned by a new user, that used `plugin` for two days; returns the owner's
/// token.
async fn rater(app: &TestApp, slug: &str, plugin: &str) -> Result<String> {
    let (_, token) = app.user(&format!("owner@{slug}.example")).await?;
    app.tenant(&token, slug).await?;
    had_installed(app, slug, plugin, 2.0).await?;
    Ok(token)
}

async fn rate(
    app: &TestApp,
    token: &str,
    plugin: &str,
    slug: &str,
    body: Value,
) -> Result<common::Reply> {
    app.put(
        &format!("/v1/plugins/{plugin}/ratings/{slug}"),
        Some(token),
        body,
    )
    .await
}

async fn rating_rows(app: &TestApp) -> Result<i64> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM ratings")
        .fetch_one(app.db().pool())
        .await?
        .try_get("n")?)
}

/// `(rating_sum, rating_count)` of `plugin` as stored.
async fn aggregates(app: &TestApp, plugin: &str) -> Result<(i64, i64)> {
    let row = sqlx::query("SELECT rating_sum, rating_count FROM plugins WHERE id = $1")
        .bind(plugin)
        .fetch_one(app.db().pool())
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// The kinds of the notifications in an inbox listing, newest first.
fn kinds(listing: &Value) -> Vec<String> {
    listing["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|n| n["kind"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn audit_actions(app: &TestApp, operator: &str) -> Result<Vec<String>> {
    let log = app
        .get("/v1/audit?limit=500", Some(operator))
        .await?
        .expect(StatusCode::OK)?;
    Ok(log.body["items"]
        .as_array()
        .context("audit items")?
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect())
}

async fn rating_needs_an_install(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let plugin = &w.plugin;
    // Never installed: 403, nothing written.
    rate(&app, &w.admin, plugin, "acme", json!({"stars": 5}))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "not_installed")?;
    // Installed for two hours, then uninstalled: still not enough.
    had_installed(&app, "acme", plugin, 2.0 / 24.0).await?;
    rate(&app, &w.admin, plugin, "acme", json!({"stars": 5}))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "not_installed")?;
    ensure!(rating_rows(&app).await? == 0);
    ensure!(aggregates(&app, plugin).await? == (0, 0));

    // Bad input names the field and writes nothing (checked before the install rule too).
    for (body, field) in [
        (json!({"stars": 0}), "stars"),
        (json!({"stars": 6}), "stars"),
        (json!({"stars": "five"}), "stars"),
        (json!({}), "stars"),
        (json!({"stars": 4, "text": "x".repeat(2001)}), "text"),
        (json!({"stars": 4, "colour": "red"}), "colour"),
    ] {
        let reply = rate(&app, &w.admin, plugin, "acme", body.clone())
            .await?
            .expect(StatusCode::BAD_REQUEST)?;
        let message = reply.body["error"]["message"].as_str().unwrap_or("");
        ensure!(message.contains(field), "{body} → {message}");
    }

    // Had it for two days: may rate.
    had_installed(&app, "acme", plugin, 2.0).await?;
    let made = rate(
        &app,
        &w.admin,
        plugin,
        "acme",
        json!({"stars": 4, "text": "  Solid.  "}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    ensure!(made.body["stars"] == 4 && made.body["text"] == "Solid.");
    ensure!(
        made.body["rater"] == "admin@acme.example"
            && made.body["hidden"] == false
            && made.body.get("tenant").is_none(),
        "{}",
        made.body
    );

    // Who may rate: an admin of that tenant only.
    let (_, member) = app.user("member@acme.example").await?;
    app.post(
        "/v1/tenants/acme/members",
        Some(&w.admin),
        json!({"email": "member@acme.example", "role": "member"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    rate(&app, &member, plugin, "acme", json!({"stars": 1}))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    let (_, stranger) = app.user("admin@other.example").await?;
    app.tenant(&stranger, "other").await?;
    rate(&app, &stranger, plugin, "acme", json!({"stars": 1}))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.put(
        &format!("/v1/plugins/{plugin}/ratings/acme"),
        None,
        json!({"stars": 1}),
    )
    .await?
    .expect(StatusCode::UNAUTHORIZED)?;
    rate(&app, &w.admin, "labs.nothing", "acme", json!({"stars": 1}))
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    ensure!(rating_rows(&app).await? == 1);
    ensure!(aggregates(&app, plugin).await? == (4, 1));
    Ok(())
}

async fn second_rating_updates_not_duplicates(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let plugin = &w.plugin;
    had_installed(&app, "acme", plugin, 3.0).await?;
    let first = rate(
        &app,
        &w.admin,
        plugin,
        "acme",
        json!({"stars": 2, "text": "Meh."}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let second = rate(
        &app,
        &w.admin,
        plugin,
        "acme",
        json!({"stars": 5, "text": "Fixed!"}),
    )
    .await?
    .expect(StatusCode::OK)?;
    ensure!(second.body["stars"] == 5 && second.body["text"] == "Fixed!");
    ensure!(second.body["created_at"] == first.body["created_at"]);
    ensure!(rating_rows(&app).await? == 1);
    ensure!(aggregates(&app, plugin).await? == (5, 1));

    let listed = app
        .get(&format!("/v1/plugins/{plugin}/ratings"), None)
        .await?
        .expect(StatusCode::OK)?;
    let items = listed.body["items"].as_array().context("items")?;
    ensure!(
        items.len() == 1 && items[0]["stars"] == 5,
        "{}",
        listed.body
    );
    ensure!(listed.body["summary"]["count"] == 1);
    ensure!(listed.body["summary"]["histogram"]["2"] == 0);
    ensure!(listed.body["summary"]["histogram"]["5"] == 1);

    // Dropping the text is an edit too.
    rate(&app, &w.admin, plugin, "acme", json!({"stars": 3}))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(aggregates(&app, plugin).await? == (3, 1));

    // The publisher heard of the new rating and of each change.
    let inbox = app
        .get("/v1/publishers/labs/notifications", Some(&w.dev.token))
        .await?
        .expect(StatusCode::OK)?;
    let kinds = kinds(&inbox.body);
    ensure!(
        kinds.iter().filter(|k| *k == "rating_created").count() == 1
            && kinds.iter().filter(|k| *k == "rating_changed").count() == 2,
        "{kinds:?}"
    );
    Ok(())
}

async fn aggregates_and_histogram_follow_ratings(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let plugin = &w.plugin;
    let mut tokens = Vec::new();
    for (slug, stars) in [("t-one", 5), ("t-two", 4), ("t-three", 4), ("t-four", 1)] {
        let token = rater(&app, slug, plugin).await?;
        rate(&app, &token, plugin, slug, json!({"stars": stars}))
            .await?
            .expect(StatusCode::CREATED)?;
        tokens.push((slug, token));
    }
    let detail = app
        .get(&format!("/v1/plugins/{plugin}"), None)
        .await?
        .expect(StatusCode::OK)?;
    let rating = &detail.body["rating"];
    ensure!(rating["average"] == 3.5 && rating["count"] == 4, "{rating}");
    ensure!(
        rating["histogram"] == json!({"1": 1, "2": 0, "3": 0, "4": 2, "5": 1}),
        "{rating}"
    );
    let found = app
        .get("/v1/plugins?sort=rating", None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(found.body["items"][0]["rating"] == 3.5, "{}", found.body);

    // An edit moves one bucket to another.
    let (slug, token) = &tokens[3];
    rate(&app, token, plugin, slug, json!({"stars": 3}))
        .await?
        .expect(StatusCode::OK)?;
    let listed = app
        .get(&format!("/v1/plugins/{plugin}/ratings?limit=3"), None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        listed.body["summary"]["histogram"] == json!({"1": 0, "2": 0, "3": 1, "4": 2, "5": 1}),
        "{}",
        listed.body
    );
    ensure!(listed.body["summary"]["average"] == 4.0);
    ensure!(aggregates(&app, plugin).await? == (16, 4));

    // Pages: most recently changed first, every rating once.
    let first = listed.body["items"].as_array().context("items")?;
    ensure!(first.len() == 3 && first[0]["rater"] == "owner@t-four.example");
    let cursor = listed.body["next_cursor"].as_str().context("next_cursor")?;
    let rest = app
        .get(
            &format!("/v1/plugins/{plugin}/ratings?limit=3&cursor={cursor}"),
            None,
        )
        .await?
        .expect(StatusCode::OK)?;
    let rest_items = rest.body["items"].as_array().context("items")?;
    ensure!(rest_items.len() == 1 && rest.body["next_cursor"].is_null());
    let mut seen: Vec<&str> = first
        .iter()
        .chain(rest_items)
        .filter_map(|r| r["rater"].as_str())
        .collect();
    seen.sort_unstable();
    ensure!(
        seen == [
            "owner@t-four.example",
            "owner@t-one.example",
            "owner@t-three.example",
            "owner@t-two.example"
        ],
        "{seen:?}"
    );
    ensure!(
        !listed.body.to_string().contains("t-four\""),
        "a tenant slug shows: {}",
        listed.body
    );

    // Bad listing input.
    for query in ["limit=0", "limit=101", "cursor=%21%21", "colour=red"] {
        app.get(&format!("/v1/plugins/{plugin}/ratings?{query}"), None)
            .await?
            .expect_error(StatusCode::BAD_REQUEST, "invalid_query")?;
    }
    app.get("/v1/plugins/labs.nothing/ratings", None)
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    Ok(())
}

async fn damped_sort_prefers_many_good_ratings_to_one_perfect(app: TestApp) -> Result<()> {
    let operator = app.operator().await?;
    let many = developer(&app, "dev@many.example", "many").await?;
    let one = developer(&app, "dev@one.example", "one").await?;
    let unrated = developer(&app, "dev@none.example", "none").await?;
    let many_id = publish(&app, &operator, &many, "1.0.0").await?;
    let one_id = publish(&app, &operator, &one, "1.0.0").await?;
    let unrated_id = publish(&app, &operator, &unrated, "1.0.0").await?;
    // 500 ratings averaging 4.8 (2400 stars), stored as the aggregates that 500 tenants'
    // ratings would leave.
    sqlx::query("UPDATE plugins SET rating_sum = 2400, rating_count = 500 WHERE id = $1")
        .bind(&many_id)
        .execute(app.db().pool())
        .await?;
    // One real 5-star rating.
    let token = rater(&app, "fan", &one_id).await?;
    rate(&app, &token, &one_id, "fan", json!({"stars": 5}))
        .await?
        .expect(StatusCode::CREATED)?;

    let sorted = app
        .get("/v1/plugins?sort=rating", None)
        .await?
        .expect(StatusCode::OK)?;
    let order: Vec<&str> = sorted.body["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    ensure!(
        order == [many_id.as_str(), one_id.as_str(), unrated_id.as_str()],
        "{order:?}"
    );
    // The shown rating is the plain average.
    ensure!(sorted.body["items"][0]["rating"] == 4.8);
    ensure!(sorted.body["items"][1]["rating"] == 5.0);

    // Keyset pages over the damped key: one per page, same order, nothing twice.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/plugins?sort=rating&limit=1&cursor={c}"),
            None => "/v1/plugins?sort=rating&limit=1".to_owned(),
        };
        let page = app.get(&path, None).await?.expect(StatusCode::OK)?;
        for item in page.body["items"].as_array().context("items")? {
            paged.push(item["id"].as_str().context("id")?.to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    ensure!(paged == [many_id, one_id, unrated_id], "{paged:?}");
    Ok(())
}

async fn replies_need_the_publisher(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let plugin = &w.plugin;
    had_installed(&app, "acme", plugin, 2.0).await?;
    let made = rate(
        &app,
        &w.admin,
        plugin,
        "acme",
        json!({"stars": 2, "text": "Crashes."}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let id = made.body["id"].as_str().context("rating id")?;
    let path = format!("/v1/plugins/{plugin}/ratings/{id}/reply");
    let body = json!({"text": "Fixed in 0.1.1, thanks."});

    // Anyone but the plugin's publisher is refused.
    let other = developer(&app, "dev@rival.example", "rival").await?;
    app.post(&path, Some(&other.token), body.clone())
        .await?
        .expect_error(StatusCode::FORBIDDEN, "not_publisher_member")?;
    app.post(&path, Some(&w.admin), body.clone())
        .await?
        .expect_error(StatusCode::FORBIDDEN, "not_publisher_member")?;
    app.post(&path, None, body.clone())
        .await?
        .expect(StatusCode::UNAUTHORIZED)?;
    // Bad input, and replies to what does not exist.
    for bad in [
        json!({"text": "   "}),
        json!({}),
        json!({"text": "x".repeat(2001)}),
    ] {
        app.post(&path, Some(&w.dev.token), bad)
            .await?
            .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    }
    app.post(
        &format!("/v1/plugins/{plugin}/ratings/nobody/reply"),
        Some(&w.dev.token),
        body.clone(),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;

    let replied = app
        .post(&path, Some(&w.dev.token), body.clone())
        .await?
        .expect(StatusCode::OK)?;
    ensure!(replied.body["reply"]["text"] == "Fixed in 0.1.1, thanks.");
    let listed = app
        .get(&format!("/v1/plugins/{plugin}/ratings"), None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(listed.body["items"][0]["reply"]["text"] == "Fixed in 0.1.1, thanks.");

    // The tenant is told; the reply is audited.
    let inbox = app
        .get("/v1/tenants/acme/notifications", Some(&w.admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(kinds(&inbox.body).contains(&"rating_replied".to_owned()));
    ensure!(
        audit_actions(&app, &w.operator)
            .await?
            .contains(&"rating.replied".to_owned())
    );
    Ok(())
}

async fn hiding_needs_a_reviewer_outside_the_publisher(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let plugin = &w.plugin;
    had_installed(&app, "acme", plugin, 2.0).await?;
    let made = rate(
        &app,
        &w.admin,
        plugin,
        "acme",
        json!({"stars": 1, "text": "Abusive words."}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let id = made.body["id"].as_str().context("rating id")?;
    let hide = format!("/v1/plugins/{plugin}/ratings/{id}/hide");
    let unhide = format!("/v1/plugins/{plugin}/ratings/{id}/unhide");
    let reason = json!({"reason": "Insults."});

    // Not reviewers: 403.
    for token in [&w.admin, &w.dev.token] {
        app.post(&hide, Some(token), reason.clone())
            .await?
            .expect_error(StatusCode::FORBIDDEN, "forbidden")?;
    }
    // A reviewer who is a member of the plugin's publisher: 403.
    app.put(
        &format!("/v1/accounts/{}/roles", w.dev.user_id),
        Some(&w.operator),
        json!({"roles": ["reviewer"]}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let dev_token = app
        .post(
            "/v1/tokens",
            None,
            json!({"email": "dev@labs.example", "password": "password-of-dev@labs.example"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    let dev_token = dev_token.body["token"].as_str().context("token")?;
    app.post(&hide, Some(dev_token), reason.clone())
        .await?
        .expect_error(StatusCode::FORBIDDEN, "own_publisher")?;

    let (_, reviewer) = app.reviewer(&w.operator, "reviewer@plinth.example").await?;
    for bad in [
        json!({}),
        json!({"reason": " "}),
        json!({"reason": "x".repeat(501)}),
    ] {
        app.post(&hide, Some(&reviewer), bad)
            .await?
            .expect_error(StatusCode::BAD_REQUEST, "invalid_body")?;
    }
    app.post(
        &format!("/v1/plugins/{plugin}/ratings/nobody/hide"),
        Some(&reviewer),
        reason.clone(),
    )
    .await?
    .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.post(&unhide, Some(&reviewer), json!({}))
        .await?
        .expect_error(StatusCode::CONFLICT, "not_hidden")?;

    let hidden = app
        .post(&hide, Some(&reviewer), reason.clone())
        .await?
        .expect(StatusCode::OK)?;
    ensure!(hidden.body["hidden"] == true && hidden.body["hidden_reason"] == "Insults.");
    app.post(&hide, Some(&reviewer), reason.clone())
        .await?
        .expect_error(StatusCode::CONFLICT, "already_hidden")?;

    // The public sees that it is hidden, not the text; reviewers see both; the stars count.
    let public = app
        .get(&format!("/v1/plugins/{plugin}/ratings"), None)
        .await?
        .expect(StatusCode::OK)?;
    let item = &public.body["items"][0];
    ensure!(item["hidden"] == true && item["text"].is_null(), "{item}");
    ensure!(item.get("hidden_reason").is_none(), "{item}");
    ensure!(public.body["summary"]["count"] == 1);
    let moderated = app
        .get(&format!("/v1/plugins/{plugin}/ratings"), Some(&reviewer))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(moderated.body["items"][0]["text"] == "Abusive words.");

    // Editing keeps it hidden; the tenant was told why.
    rate(
        &app,
        &w.admin,
        plugin,
        "acme",
        json!({"stars": 1, "text": "Still abusive."}),
    )
    .await?
    .expect(StatusCode::OK)?;
    let public = app
        .get(&format!("/v1/plugins/{plugin}/ratings"), None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(public.body["items"][0]["text"].is_null());
    let inbox = app
        .get("/v1/tenants/acme/notifications", Some(&w.admin))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(kinds(&inbox.body).contains(&"rating_hidden".to_owned()));

    let shown = app
        .post(&unhide, Some(&reviewer), json!({}))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(shown.body["hidden"] == false && shown.body["text"] == "Still abusive.");
    let actions = audit_actions(&app, &w.operator).await?;
    ensure!(
        actions.contains(&"rating.hidden".to_owned())
            && actions.contains(&"rating.unhidden".to_owned()),
        "{actions:?}"
    );
    Ok(())
}

async fn ratings_follow_real_installs(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let plugin = &w.plugin;
    let shown = app
        .get(&format!("/v1/plugins/{plugin}/versions/0.1.0"), None)
        .await?
        .expect(StatusCode::OK)?;
    let digest = shown.body["permissions_digest"]
        .as_str()
        .context("digest")?;
    app.post(
        "/v1/tenants/acme/installs",
        Some(&w.admin),
        json!({"plugin": plugin, "permissions_digest": digest, "config": {}}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    // Installed now: may rate at once, and edit.
    rate(&app, &w.admin, plugin, "acme", json!({"stars": 5}))
        .await?
        .expect(StatusCode::CREATED)?;
    rate(&app, &w.admin, plugin, "acme", json!({"stars": 4}))
        .await?
        .expect(StatusCode::OK)?;
    // Uninstalled after minutes: the install history has a span shorter than a day, so no
    // more edits; the rating given stays.
    app.delete(
        &format!("/v1/tenants/acme/installs/{plugin}"),
        Some(&w.admin),
    )
    .await?
    .expect(StatusCode::NO_CONTENT)?;
    let span = sqlx::query(
        "SELECT COUNT(*) AS n FROM install_spans WHERE plugin_id = $1 AND uninstalled_at IS NOT NULL",
    )
    .bind(plugin)
    .fetch_one(app.db().pool())
    .await?;
    ensure!(span.try_get::<i64, _>("n")? == 1);
    rate(&app, &w.admin, plugin, "acme", json!({"stars": 1}))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "not_installed")?;
    ensure!(aggregates(&app, plugin).await? == (4, 1));
    Ok(())
}

async fn concurrent_ratings_all_count(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let plugin = w.plugin.clone();
    let mut raters = Vec::new();
    for i in 0..6 {
        let slug = format!("c-{i}");
        let token = rater(&app, &slug, &plugin).await?;
        raters.push((slug, token, i % 5 + 1));
    }
    // Every tenant rates at once; each rating and its share of the aggregates lands.
    let mut all = tokio::task::JoinSet::new();
    for (slug, token, stars) in raters.clone() {
        let client = app.client.clone();
        let url = format!("{}/v1/plugins/{plugin}/ratings/{slug}", app.base);
        all.spawn(async move {
            client
                .put(url)
                .bearer_auth(token)
                .json(&json!({"stars": stars}))
                .send()
                .await
                .map(|r| r.status())
        });
    }
    while let Some(done) = all.join_next().await {
        ensure!(done?? == StatusCode::CREATED);
    }
    let expected: i64 = raters.iter().map(|(_, _, stars)| *stars).sum();
    ensure!(aggregates(&app, &plugin).await? == (expected, 6));
    ensure!(rating_rows(&app).await? == 6);
    Ok(())
}

async fn a_purged_tenants_rating_leaves_the_aggregates(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let plugin = &w.plugin;
    let gone = rater(&app, "gone", plugin).await?;
    rate(&app, &gone, plugin, "gone", json!({"stars": 1}))
        .await?
        .expect(StatusCode::CREATED)?;
    had_installed(&app, "acme", plugin, 2.0).await?;
    rate(&app, &w.admin, plugin, "acme", json!({"stars": 5}))
        .await?
        .expect(StatusCode::CREATED)?;
    app.put(
        "/v1/tenants/gone/webhook",
        Some(&gone),
        json!({"url": "https://hooks.example.invalid/x"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    ensure!(aggregates(&app, plugin).await? == (6, 2));

    app.delete("/v1/tenants/gone", Some(&gone))
        .await?
        .expect(StatusCode::OK)?;
    // While deleted but not purged, the rating still counts.
    ensure!(aggregates(&app, plugin).await? == (6, 2));
    let purged =
        plinth_marketplace::tenants::purge_expired(app.db(), now_ms() + 365 * DAY_MS).await?;
    ensure!(purged.len() == 1);
    ensure!(aggregates(&app, plugin).await? == (5, 1));
    ensure!(rating_rows(&app).await? == 1);
    let webhooks: i64 = sqlx::query("SELECT COUNT(*) AS n FROM webhooks")
        .fetch_one(app.db().pool())
        .await?
        .try_get("n")?;
    ensure!(webhooks == 0);
    let detail = app
        .get(&format!("/v1/plugins/{plugin}"), None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(detail.body["rating"]["histogram"]["1"] == 0);
    ensure!(detail.body["rating"]["average"] == 5.0);
    Ok(())
}

/// One account with three tenants (as many as it may create) that use the plugin rates it
/// once: each `PUT`, through any of its tenants, edits the one rating, and it counts once.
async fn one_rating_per_person_whatever_their_tenants(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let plugin = &w.plugin;
    let (_, sprawler) = app.user("sprawl@example.com").await?;
    let mut statuses = Vec::new();
    let mut ids = Vec::new();
    for (n, stars) in (1..=3).zip([5, 4, 3]) {
        let slug = format!("sprawl-{n}");
        app.tenant(&sprawler, &slug).await?;
        had_installed(&app, &slug, plugin, 2.0).await?;
        let rated = rate(&app, &sprawler, plugin, &slug, json!({"stars": stars})).await?;
        statuses.push(rated.status);
        ids.push(rated.body["id"].clone());
    }
    ensure!(
        statuses[0] == StatusCode::CREATED && statuses[1..].iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    ensure!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    ensure!(rating_rows(&app).await? == 1);
    ensure!(aggregates(&app, plugin).await? == (3, 1));
    let listed = app
        .get(&format!("/v1/plugins/{plugin}/ratings"), None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        listed.body["summary"]["count"] == 1
            && listed.body["items"][0]["rater"] == "sprawl@example.com"
            && !listed.body.to_string().contains("sprawl-"),
        "{}",
        listed.body
    );

    // Another person of one of those tenants has a rating of their own.
    let (_, second) = app.user("second@example.com").await?;
    app.post(
        "/v1/tenants/sprawl-1/members",
        Some(&sprawler),
        json!({"email": "second@example.com", "role": "admin"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    rate(&app, &second, plugin, "sprawl-1", json!({"stars": 1}))
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(aggregates(&app, plugin).await? == (4, 2));
    Ok(())
}

/// Members of the plugin's own publisher may not rate it, even through a tenant that uses it;
/// nothing is written.
async fn the_publisher_does_not_rate_its_own_plugin(app: TestApp) -> Result<()> {
    let w = world(&app).await?;
    let plugin = &w.plugin;
    app.tenant(&w.dev.token, "labs-own").await?;
    had_installed(&app, "labs-own", plugin, 2.0).await?;
    rate(&app, &w.dev.token, plugin, "labs-own", json!({"stars": 5}))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "own_publisher")?;
    // A member added later is refused too.
    let (_, colleague) = app.user("colleague@labs.example").await?;
    app.post(
        "/v1/publishers/labs/members",
        Some(&w.dev.token),
        json!({"email": "colleague@labs.example", "role": "member"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    app.post(
        "/v1/tenants/labs-own/members",
        Some(&w.dev.token),
        json!({"email": "colleague@labs.example", "role": "admin"}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    rate(&app, &colleague, plugin, "labs-own", json!({"stars": 5}))
        .await?
        .expect_error(StatusCode::FORBIDDEN, "own_publisher")?;
    ensure!(rating_rows(&app).await? == 0);
    ensure!(aggregates(&app, plugin).await? == (0, 0));
    let inbox = app
        .get("/v1/publishers/labs/notifications", Some(&w.dev.token))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        !kinds(&inbox.body).contains(&"rating_created".to_owned()),
        "{}",
        inbox.body
    );
    Ok(())
}
