//! The catalog: publishing approved versions, search, detail, versions and downloads, on both
//! backends.

mod common;

use std::collections::HashSet;

use anyhow::{Context, Result, ensure};
use plinth_marketplace::catalog;
use plinth_package::{Package, SecretKey};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use common::TestApp;

on_both_backends!(
    search_finds_words_and_prefixes,
    name_matches_rank_above_description_matches,
    filters_by_category_permission_and_pricing,
    sorts_by_installs_rating_and_recent,
    cursor_pages_have_no_duplicates_or_gaps,
    relevance_pages_over_many_matches,
    metacharacters_are_harmless,
    bad_parameters_name_the_parameter,
    blocked_plugins_never_appear,
    detail_versions_and_download,
    latest_version_follows_semver,
    latest_permissions_reads_the_newest_version,
    republishing_a_version_conflicts,
);

/// What varies between the test packages.
struct Spec<'a> {
    id: &'a str,
    version: &'a str,
    name: &'a str,
    description: &'a str,
    categories: &'a [&'a str],
    /// TOML lines of `[permissions]`.
    permissions: &'a str,
    /// TOML of `[pricing]`, if any.
    pricing: &'a str,
    /// The status of the submission row written first (the live-version index allows one
    /// approved submission per version, so a second publish of one version needs another).
    submission_status: &'a str,
}

impl<'a> Spec<'a> {
    fn new(id: &'a str, name: &'a str, description: &'a str) -> Spec<'a> {
        Spec {
            id,
            version: "1.0.0",
            name,
            description,
            categories: &["examples"],
            permissions: "events = { subscribe = [\"greet\"] }",
            pricing: "",
            submission_status: "approved",
        }
    }
}

/// Publishes test packages the way the review module does: stores the package bytes as an
/// artifact, records an approved submission, then calls `catalog::publish_version` in one
/// transaction.
struct Seeder {
    publisher_id: String,
    user_id: String,
    manifest: String,
    wasm: Vec<u8>,
    key: SecretKey,
    clock: std::sync::atomic::AtomicI64,
}

impl Seeder {
    async fn new(app: &TestApp) -> Result<Seeder> {
        let user_id = plinth_marketplace::id::new_id();
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&user_id)
        .bind("dev@acme.test")
        .bind("Dev")
        .bind("x")
        .bind(1_i64)
        .execute(app.db().pool())
        .await?;
        let publisher_id = plinth_marketplace::id::new_id();
        sqlx::query(
            "INSERT INTO publishers (id, namespace, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&publisher_id)
        .bind("acme")
        .bind("Acme Corp")
        .bind(1_i64)
        .execute(app.db().pool())
        .await?;
        let hello = plinth_test_artifacts::HELLO;
        Ok(Seeder {
            publisher_id,
            user_id,
            manifest: std::fs::read_to_string(std::path::Path::new(hello.dir).join("plinth.toml"))?,
            wasm: std::fs::read(hello.wasm)?,
            key: SecretKey::generate()?,
            clock: std::sync::atomic::AtomicI64::new(1_800_000_000_000),
        })
    }

    /// The hello manifest with `spec`'s id, version, name, description, categories,
    /// permissions and pricing.
    fn manifest(&self, spec: &Spec<'_>) -> String {
        let quoted: Vec<String> = spec.categories.iter().map(|c| format!("{c:?}")).collect();
        let mut out = String::new();
        for line in self.manifest.lines() {
            let key = line.split('=').next().unwrap_or("").trim();
            let replaced = match key {
                "id" => format!("id = {:?}", spec.id),
                "version" => format!("version = {:?}", spec.version),
                "name" => format!("name = {:?}", spec.name),
                "description" => format!("description = {:?}", spec.description),
                "categories" => format!("categories = [{}]", quoted.join(", ")),
                _ if line.trim() == "[permissions]" => break,
                _ => line.to_owned(),
            };
            out.push_str(&replaced);
            out.push('\n');
        }
        out.push_str("[permissions]\n");
        out.push_str(spec.permissions);
        out.push('\n');
        if !spec.pricing.is_empty() {
            out.push_str("\n[pricing]\n");
            out.push_str(spec.pricing);
            out.push('\n');
        }
        out
    }

    /// Publishes `spec`; returns the stored package bytes.
    async fn publish(&self, app: &TestApp, spec: &Spec<'_>) -> Result<Vec<u8>> {
        let mut package = Package::new(
            self.manifest(spec),
            self.wasm.clone(),
            Some(format!("# {}\n", spec.name)),
            Some(format!("## {}\n- changes\n", spec.version)),
        )?;
        package.sign(&self.key);
        let bytes = package.to_bytes()?;
        let sha = hex::encode(Sha256::digest(&bytes));
        let now = self
            .clock
            .fetch_add(1000, std::sync::atomic::Ordering::SeqCst);
        let mut tx = app.db().begin().await?;
        sqlx::query(
            "INSERT INTO artifacts (sha256, size, bytes, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&sha)
        .bind(i64::try_from(bytes.len())?)
        .bind(bytes.clone())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let submission_id = plinth_marketplace::id::new_id();
        sqlx::query(
            "INSERT INTO submissions (id, publisher_id, plugin_id, version, digest, artifact_sha256, \
             manifest, status, report, submitted_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '{}', $9, $10)",
        )
        .bind(&submission_id)
        .bind(&self.publisher_id)
        .bind(spec.id)
        .bind(spec.version)
        .bind(package.digest().to_string())
        .bind(&sha)
        .bind(&package.manifest_toml)
        .bind(spec.submission_status)
        .bind(&self.user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        catalog::publish_version(
            &mut tx,
            &package,
            &self.publisher_id,
            &submission_id,
            &sha,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(bytes)
    }
}

/// The ids of a search reply's items, in order.
fn ids(reply: &Value) -> Vec<String> {
    reply["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn search_ids(app: &TestApp, query: &str) -> Result<Vec<String>> {
    let reply = app
        .get(&format!("/v1/plugins?{query}"), None)
        .await?
        .expect(StatusCode::OK)?;
    Ok(ids(&reply.body))
}

/// A small catalog: slack notifier, a payments plugin, a kv counter, a greeter.
async fn seed_catalog(app: &TestApp) -> Result<Seeder> {
    let seeder = Seeder::new(app).await?;
    seeder
        .publish(
            app,
            &Spec {
                categories: &["chat", "notifications"],
                permissions: "http = { hosts = [\"hooks.slack.com\"] }\nevents = { subscribe = [\"order.created\"] }",
                ..Spec::new(
                    "acme.slack-notify",
                    "Slack Notify",
                    "Posts a message to a Slack channel when an order is created.",
                )
            },
        )
        .await?;
    seeder
        .publish(
            app,
            &Spec {
                categories: &["payments"],
                permissions: "http = { hosts = [\"api.stripe.com\"] }\nconfig = true",
                pricing: "model = \"monthly\"\namount = 500\ncurrency = \"USD\"",
                ..Spec::new(
                    "acme.payments",
                    "Payments",
                    "Takes card payments and refunds through a payment provider.",
                )
            },
        )
        .await?;
    seeder
        .publish(
            app,
            &Spec {
                categories: &["analytics"],
                permissions: "kv = { max-bytes = 65536 }\nevents = { subscribe = [\"count\"] }",
                ..Spec::new(
                    "acme.counter",
                    "Counter",
                    "Counts events and keeps the totals in its own store.",
                )
            },
        )
        .await?;
    seeder
        .publish(
            app,
            &Spec::new(
                "acme.hello",
                "Hello",
                "Greets whoever the greet event names.",
            ),
        )
        .await?;
    Ok(seeder)
}

async fn search_finds_words_and_prefixes(app: TestApp) -> Result<()> {
    seed_catalog(&app).await?;
    ensure!(search_ids(&app, "q=slack").await? == ["acme.slack-notify"]);
    ensure!(
        search_ids(&app, "q=Sla").await? == ["acme.slack-notify"],
        "prefix"
    );
    ensure!(
        search_ids(&app, "q=slack%20notif").await? == ["acme.slack-notify"],
        "two words"
    );
    ensure!(
        search_ids(&app, "q=refunds").await? == ["acme.payments"],
        "description word"
    );
    ensure!(
        search_ids(&app, "q=analytics").await? == ["acme.counter"],
        "category word"
    );
    ensure!(
        search_ids(&app, "q=slack%20refunds").await?.is_empty(),
        "all words must match"
    );
    ensure!(search_ids(&app, "q=nothingmatches").await?.is_empty());

    let reply = app
        .get("/v1/plugins?q=payments", None)
        .await?
        .expect(StatusCode::OK)?;
    let item = &reply.body["items"][0];
    ensure!(
        item["id"] == "acme.payments"
            && item["name"] == "Payments"
            && item["latest_version"] == "1.0.0"
            && item["installs"] == 0
            && item["rating"].is_null()
            && item["pricing"] == "monthly"
            && item["categories"] == serde_json::json!(["payments"])
            && item["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("Takes card")),
        "{item}"
    );
    ensure!(reply.body["next_cursor"].is_null(), "{}", reply.body);
    Ok(())
}

async fn name_matches_rank_above_description_matches(app: TestApp) -> Result<()> {
    let seeder = Seeder::new(&app).await?;
    // Published first, so a non-relevance order would put it first.
    seeder
        .publish(
            &app,
            &Spec::new(
                "acme.relay",
                "Relay",
                "Forwards webhook calls; also handy next to a webhook inspector.",
            ),
        )
        .await?;
    seeder
        .publish(
            &app,
            &Spec::new("acme.webhook", "Webhook", "Receives calls from outside."),
        )
        .await?;
    let found = search_ids(&app, "q=webhook").await?;
    ensure!(found == ["acme.webhook", "acme.relay"], "{found:?}");
    Ok(())
}

async fn filters_by_category_permission_and_pricing(app: TestApp) -> Result<()> {
    seed_catalog(&app).await?;
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    ensure!(search_ids(&app, "category=payments").await? == ["acme.payments"]);
    ensure!(
        search_ids(&app, "category=Chat").await? == ["acme.slack-notify"],
        "case"
    );
    ensure!(
        sorted(search_ids(&app, "permission=http").await?)
            == ["acme.payments", "acme.slack-notify"]
    );
    ensure!(search_ids(&app, "permission=kv").await? == ["acme.counter"]);
    ensure!(search_ids(&app, "permission=config").await? == ["acme.payments"]);
    ensure!(
        sorted(search_ids(&app, "permission=events.subscribe").await?)
            == ["acme.counter", "acme.hello", "acme.slack-notify"]
    );
    ensure!(search_ids(&app, "pricing=monthly").await? == ["acme.payments"]);
    ensure!(
        sorted(search_ids(&app, "pricing=free").await?)
            == ["acme.counter", "acme.hello", "acme.slack-notify"]
    );
    ensure!(
        search_ids(&app, "pricing=per-1000-invocations")
            .await?
            .is_empty()
    );
    ensure!(
        search_ids(&app, "permission=http&pricing=free").await? == ["acme.slack-notify"],
        "filters combine"
    );
    ensure!(
        search_ids(&app, "q=order&permission=kv").await?.is_empty(),
        "with q"
    );
    ensure!(search_ids(&app, "category=nope").await?.is_empty());
    Ok(())
}

async fn sorts_by_installs_rating_and_recent(app: TestApp) -> Result<()> {
    seed_catalog(&app).await?;
    // Installs and ratings belong to other modules; set them directly.
    for (id, installs, sum, count) in [
        ("acme.slack-notify", 5_i64, 8_i64, 2_i64),
        ("acme.payments", 50, 5, 1),
        ("acme.counter", 7, 9, 3),
        ("acme.hello", 1, 0, 0),
    ] {
        sqlx::query(
            "UPDATE plugins SET installs = $1, rating_sum = $2, rating_count = $3 WHERE id = $4",
        )
        .bind(installs)
        .bind(sum)
        .bind(count)
        .bind(id)
        .execute(app.db().pool())
        .await?;
    }
    ensure!(
        search_ids(&app, "sort=installs").await?
            == [
                "acme.payments",
                "acme.counter",
                "acme.slack-notify",
                "acme.hello"
            ]
    );
    ensure!(
        search_ids(&app, "sort=rating").await?
            == [
                "acme.payments",
                "acme.slack-notify",
                "acme.counter",
                "acme.hello"
            ]
    );
    let recent = [
        "acme.hello",
        "acme.counter",
        "acme.payments",
        "acme.slack-notify",
    ];
    ensure!(search_ids(&app, "sort=recent").await? == recent);
    ensure!(
        search_ids(&app, "").await? == recent,
        "default without q is recent"
    );
    let reply = app
        .get("/v1/plugins?sort=rating&limit=1", None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(reply.body["items"][0]["rating"] == 5.0, "{}", reply.body);
    let reply = app
        .get("/v1/plugins?q=slack&sort=installs", None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        reply.body["items"][0]["rating"] == 4.0 && reply.body["items"][0]["installs"] == 5,
        "{}",
        reply.body
    );
    Ok(())
}

/// Walks every page of `query` with `limit`; returns the ids in order.
async fn walk(app: &TestApp, query: &str, limit: usize) -> Result<Vec<String>> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut path = format!("/v1/plugins?{query}&limit={limit}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let reply = app.get(&path, None).await?.expect(StatusCode::OK)?;
        let page = ids(&reply.body);
        ensure!(page.len() <= limit, "page larger than limit");
        all.extend(page);
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(all),
        }
    }
    anyhow::bail!("more than 100 pages")
}

async fn cursor_pages_have_no_duplicates_or_gaps(app: TestApp) -> Result<()> {
    let seeder = Seeder::new(&app).await?;
    let mut expected = Vec::new();
    for i in 0..23 {
        let id = format!("acme.tool-{i:02}");
        let name = format!("Tool {i}");
        let description = format!("A useful tool number {i} for everyday work.");
        seeder
            .publish(&app, &Spec::new(&id, &name, &description))
            .await?;
        expected.push(id);
    }
    // Ties on installs: the id breaks them, so paging stays stable.
    for (i, id) in expected.iter().enumerate() {
        sqlx::query("UPDATE plugins SET installs = $1 WHERE id = $2")
            .bind(i64::try_from(i % 4)?)
            .bind(id)
            .execute(app.db().pool())
            .await?;
    }
    let everything: HashSet<String> = expected.iter().cloned().collect();
    for query in [
        "sort=recent",
        "sort=installs",
        "sort=rating",
        "q=tool",
        "q=useful%20everyday",
    ] {
        let whole = walk(&app, query, 100).await?;
        for limit in [1, 5, 7] {
            let paged = walk(&app, query, limit).await?;
            ensure!(
                paged == whole,
                "{query} limit {limit}: {paged:?} != {whole:?}"
            );
        }
        let unique: HashSet<String> = whole.iter().cloned().collect();
        ensure!(
            unique.len() == whole.len(),
            "{query}: duplicates in {whole:?}"
        );
        ensure!(unique == everything, "{query}: gaps in {whole:?}");
    }
    let recent = walk(&app, "sort=recent", 100).await?;
    let mut newest_first = expected.clone();
    newest_first.reverse();
    ensure!(recent == newest_first, "{recent:?}");
    let reply = app.get("/v1/plugins", None).await?.expect(StatusCode::OK)?;
    ensure!(ids(&reply.body).len() == 20, "default limit is 20");
    ensure!(reply.body["next_cursor"].is_string(), "{}", reply.body);
    Ok(())
}

async fn metacharacters_are_harmless(app: TestApp) -> Result<()> {
    seed_catalog(&app).await?;
    for raw in [
        "'",
        "\"",
        "*",
        "OR",
        "slack OR payments",
        "NEAR(slack payments)",
        "--",
        ";",
        "%",
        "%25",
        "' OR 1=1 --",
        "\"; DROP TABLE plugins; --",
        "name:slack",
        "slack*",
        "^slack",
        "(",
        "a AND NOT b",
        "_",
        "\\",
        "&|!:*",
    ] {
        let reply = app
            .client
            .get(format!("{}/v1/plugins", app.base))
            .query(&[("q", raw)])
            .send()
            .await?;
        let status = reply.status();
        let body: Value = reply.json().await.unwrap_or(Value::Null);
        ensure!(status == StatusCode::OK, "q={raw:?}: {status} {body}");
        let found = ids(&body);
        ensure!(found.len() < 4, "q={raw:?} matched everything: {found:?}");
    }
    // Operator words are ordinary words: only plugins containing them match.
    let found = search_ids(&app, "q=slack%20OR%20payments").await?;
    ensure!(found.is_empty(), "OR is not an operator: {found:?}");
    let found = search_ids(&app, "q=slack*").await?;
    ensure!(found == ["acme.slack-notify"], "{found:?}");
    // The catalog is intact.
    ensure!(walk(&app, "sort=recent", 100).await?.len() == 4);
    Ok(())
}

async fn bad_parameters_name_the_parameter(app: TestApp) -> Result<()> {
    seed_catalog(&app).await?;
    for (query, name) in [
        ("limit=0", "`limit`"),
        ("limit=101", "`limit`"),
        ("limit=ten", "`limit`"),
        ("sort=popular", "`sort`"),
        ("cursor=%%%", "`cursor`"),
        ("cursor=bm90IGEgY3Vyc29y", "`cursor`"),
        ("permission=disk", "`permission`"),
        ("pricing=cheap", "`pricing`"),
        ("bogus=1", "bogus"),
    ] {
        let reply = app
            .get(&format!("/v1/plugins?{query}"), None)
            .await?
            .expect_error(StatusCode::BAD_REQUEST, "invalid_query")?;
        let message = reply.body["error"]["message"].as_str().unwrap_or("");
        ensure!(message.contains(name), "{query}: {message}");
    }
    // A cursor of one sort order is refused by another.
    let first = app
        .get("/v1/plugins?sort=installs&limit=1", None)
        .await?
        .expect(StatusCode::OK)?;
    let cursor = first.body["next_cursor"].as_str().context("cursor")?;
    app.get(&format!("/v1/plugins?sort=recent&cursor={cursor}"), None)
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_query")?;
    let long = "a".repeat(201);
    app.get(&format!("/v1/plugins?q={long}"), None)
        .await?
        .expect_error(StatusCode::BAD_REQUEST, "invalid_query")?;
    Ok(())
}

async fn blocked_plugins_never_appear(app: TestApp) -> Result<()> {
    seed_catalog(&app).await?;
    sqlx::query("UPDATE plugins SET blocked_at = $1 WHERE id = $2")
        .bind(1_i64)
        .bind("acme.slack-notify")
        .execute(app.db().pool())
        .await?;
    ensure!(search_ids(&app, "q=slack").await?.is_empty());
    ensure!(search_ids(&app, "category=chat").await?.is_empty());
    ensure!(
        !walk(&app, "sort=installs", 100)
            .await?
            .contains(&"acme.slack-notify".to_owned())
    );
    app.get("/v1/plugins/acme.slack-notify", None)
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    app.get("/v1/plugins/acme.slack-notify/versions/1.0.0/package", None)
        .await?
        .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    // An operator still sees it.
    let operator = app.operator().await?;
    app.get("/v1/plugins/acme.slack-notify", Some(&operator))
        .await?
        .expect(StatusCode::OK)?;
    Ok(())
}

async fn detail_versions_and_download(app: TestApp) -> Result<()> {
    let seeder = seed_catalog(&app).await?;
    let second = seeder
        .publish(
            &app,
            &Spec {
                version: "1.1.0",
                categories: &["chat"],
                permissions: "http = { hosts = [\"hooks.slack.com\"] }\nevents = { subscribe = [\"order.created\", \"order.paid\"] }",
                ..Spec::new(
                    "acme.slack-notify",
                    "Slack Notify",
                    "Posts a message to a Slack channel when an order is created or paid.",
                )
            },
        )
        .await?;

    let detail = app
        .get("/v1/plugins/acme.slack-notify", None)
        .await?
        .expect(StatusCode::OK)?
        .body;
    ensure!(
        detail["id"] == "acme.slack-notify"
            && detail["name"] == "Slack Notify"
            && detail["latest_version"] == "1.1.0"
            && detail["pricing"] == "free"
            && detail["installs"] == 0
            && detail["categories"] == serde_json::json!(["chat"])
            && detail["publisher"] == serde_json::json!({"namespace": "acme", "name": "Acme Corp"}),
        "{detail}"
    );
    ensure!(
        detail["description"]
            .as_str()
            .is_some_and(|d| d.ends_with("created or paid.")),
        "metadata follows the latest version: {detail}"
    );
    ensure!(
        detail["rating"]
            == serde_json::json!({"average": null, "count": 0,
                "histogram": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}}),
        "{detail}"
    );
    let versions = detail["versions"].as_array().context("versions")?;
    ensure!(versions.len() == 2, "{detail}");
    ensure!(versions[0]["version"] == "1.1.0" && versions[1]["version"] == "1.0.0");
    let newest = &versions[0];
    ensure!(
        newest["yanked"] == false
            && newest["changelog"]
                .as_str()
                .is_some_and(|c| c.contains("1.1.0"))
            && newest["published_at"]
                .as_str()
                .is_some_and(|t| t.starts_with("2027-") && t.ends_with('Z')),
        "{newest}"
    );
    let permissions = newest["permissions"].as_array().context("permissions")?;
    ensure!(permissions.len() == 3, "{newest}");
    ensure!(
        permissions.iter().any(|p| p["capability"] == "http"
            && p["detail"] == "hooks.slack.com"
            && p["sentence"] == "Send HTTP requests to hooks.slack.com"
            && p["risk"] == "high"),
        "{newest}"
    );
    let digest = newest["permissions_digest"].as_str().context("digest")?;
    let hex = digest
        .strip_prefix("sha256:")
        .context("digest is sha256:<hex>")?;
    ensure!(hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()));
    ensure!(versions[1]["permissions_digest"] != newest["permissions_digest"]);
    // Search now reflects the new version's categories.
    ensure!(search_ids(&app, "category=notifications").await?.is_empty());
    ensure!(search_ids(&app, "q=paid").await? == ["acme.slack-notify"]);

    let list = app
        .get("/v1/plugins/acme.slack-notify/versions", None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(list.body["items"] == detail["versions"], "{}", list.body);

    let one = app
        .get("/v1/plugins/acme.slack-notify/versions/1.0.0", None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(one.body == versions[1], "{}", one.body);

    let response = app
        .client
        .get(format!(
            "{}/v1/plugins/acme.slack-notify/versions/1.1.0/package",
            app.base
        ))
        .send()
        .await?;
    ensure!(response.status() == StatusCode::OK);
    let headers = response.headers().clone();
    ensure!(
        headers
            .get("content-type")
            .is_some_and(|v| v == "application/octet-stream")
    );
    ensure!(
        headers
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("filename=\"acme.slack-notify-1.1.0.plinth\"")),
        "{headers:?}"
    );
    let bytes = response.bytes().await?;
    ensure!(
        bytes.as_ref() == second.as_slice(),
        "the stored bytes come back"
    );
    let read = Package::from_bytes(&bytes)?;
    ensure!(read.manifest.plugin.version.to_string() == "1.1.0");

    for path in [
        "/v1/plugins/acme.nope",
        "/v1/plugins/acme.nope/versions",
        "/v1/plugins/acme.nope/versions/1.0.0",
        "/v1/plugins/acme.nope/versions/1.0.0/package",
        "/v1/plugins/acme.slack-notify/versions/9.9.9",
        "/v1/plugins/acme.slack-notify/versions/9.9.9/package",
        "/v1/plugins/acme.slack-notify/versions/not-a-version",
    ] {
        app.get(path, None)
            .await?
            .expect_error(StatusCode::NOT_FOUND, "not_found")?;
    }
    Ok(())
}

async fn latest_version_follows_semver(app: TestApp) -> Result<()> {
    let seeder = Seeder::new(&app).await?;
    for version in ["1.9.0", "1.10.0", "1.2.0"] {
        seeder
            .publish(
                &app,
                &Spec {
                    version,
                    ..Spec::new(
                        "acme.semver",
                        &format!("Semver {version}"),
                        "Checks version order.",
                    )
                },
            )
            .await?;
    }
    let detail = app
        .get("/v1/plugins/acme.semver", None)
        .await?
        .expect(StatusCode::OK)?
        .body;
    ensure!(detail["latest_version"] == "1.10.0", "{detail}");
    ensure!(
        detail["name"] == "Semver 1.10.0",
        "publishing 1.2.0 after 1.10.0 leaves the metadata of 1.10.0: {detail}"
    );
    let order: Vec<&str> = detail["versions"]
        .as_array()
        .context("versions")?
        .iter()
        .filter_map(|v| v["version"].as_str())
        .collect();
    ensure!(order == ["1.10.0", "1.9.0", "1.2.0"], "{order:?}");
    let found = app
        .get("/v1/plugins?q=semver", None)
        .await?
        .expect(StatusCode::OK)?;
    ensure!(found.body["items"][0]["latest_version"] == "1.10.0");
    Ok(())
}

async fn latest_permissions_reads_the_newest_version(app: TestApp) -> Result<()> {
    let seeder = Seeder::new(&app).await?;
    ensure!(
        catalog::latest_permissions(app.db().pool(), "acme.perm")
            .await?
            .is_none()
    );
    for (version, permissions) in [
        ("1.9.0", "events = { subscribe = [\"greet\"] }"),
        (
            "1.10.0",
            "kv = { max-bytes = 1024 }\nevents = { subscribe = [\"greet\"] }",
        ),
        ("1.2.0", "config = true"),
    ] {
        seeder
            .publish(
                &app,
                &Spec {
                    version,
                    permissions,
                    ..Spec::new("acme.perm", "Perm", "Permission history.")
                },
            )
            .await?;
    }
    let mut tx = app.db().begin_read().await?;
    let (version, permissions) = catalog::latest_permissions(&mut *tx, "acme.perm")
        .await?
        .context("a published version")?;
    tx.commit().await?;
    ensure!(version == semver::Version::new(1, 10, 0), "{version}");
    ensure!(
        permissions.kv.is_some() && !permissions.config,
        "{permissions:?}"
    );
    Ok(())
}

async fn republishing_a_version_conflicts(app: TestApp) -> Result<()> {
    let seeder = Seeder::new(&app).await?;
    let spec = Spec::new("acme.twice", "Twice", "Published twice.");
    seeder.publish(&app, &spec).await?;
    let again = seeder
        .publish(
            &app,
            &Spec {
                submission_status: "rejected",
                ..spec
            },
        )
        .await;
    let error = again.err().context("the second publish must fail")?;
    let error = error
        .downcast_ref::<plinth_marketplace::Error>()
        .context("a marketplace error")?;
    ensure!(error.code() == "version_exists", "{error}");
    ensure!(walk(&app, "q=twice", 10).await? == ["acme.twice"]);
    Ok(())
}

async fn relevance_pages_over_many_matches(app: TestApp) -> Result<()> {
    // More matches than the first ranking window of a small page, with filters and blocked
    // plugins among them: small pages must still add up to the whole list.
    let seeder = Seeder::new(&app).await?;
    let mut tools = HashSet::new();
    let mut all = HashSet::new();
    for i in 0..150 {
        let id = format!("acme.gadget-{i:03}");
        let name = format!("Gadget {i}");
        let description = format!(
            "A gadget{} for teams number {i}.",
            " that is a gadget".repeat(i % 4)
        );
        let categories: &[&str] = if i % 3 == 0 { &["tools"] } else { &["misc"] };
        seeder
            .publish(
                &app,
                &Spec {
                    categories,
                    ..Spec::new(&id, &name, &description)
                },
            )
            .await?;
        if i % 10 == 7 {
            sqlx::query("UPDATE plugins SET blocked_at = $1 WHERE id = $2")
                .bind(1_i64)
                .bind(&id)
                .execute(app.db().pool())
                .await?;
        } else {
            if i % 3 == 0 {
                tools.insert(id.clone());
            }
            all.insert(id);
        }
    }
    for (query, expected) in [("q=gadget", &all), ("q=gadg&category=tools", &tools)] {
        let whole = walk(&app, query, 100).await?;
        let paged = walk(&app, query, 7).await?;
        ensure!(
            paged == whole,
            "{query}: pages of 7 differ from pages of 100"
        );
        let unique: HashSet<String> = whole.iter().cloned().collect();
        ensure!(unique.len() == whole.len(), "{query}: duplicates");
        ensure!(
            &unique == expected,
            "{query}: {} of {}",
            unique.len(),
            expected.len()
        );
    }
    Ok(())
}
