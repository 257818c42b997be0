//! Catalog search latency on a realistic catalog: 10,000 plugins × 3 versions each, on SQLite
//! (a temporary file) and on PostgreSQL (a fresh schema), seeded through
//! `catalog::publish_version` exactly as approvals write it. Each query runs through
//! `catalog::search`, the function `GET /v1/plugins` calls, and the table shows p50 / p95 /
//! max over 200 runs. Target: p95 under 20 ms on SQLite.
//!
//! `cargo bench -p plinth-marketplace --bench search` (`PLINTH_BENCH_PLUGINS=N` to change the
//! catalog size, `PLINTH_BENCH_SQLITE_FILE=PATH` to keep the SQLite catalog,
//! `PLINTH_BENCH_SKIP_POSTGRES=1` to measure SQLite only; PostgreSQL is skipped with a note
//! when the test server is unreachable).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use plinth_marketplace::Db;
use plinth_marketplace::catalog::{self, SearchQuery, search::SearchParams};
use plinth_package::Package;
use plinth_test_support::TestDatabase;

const VERSIONS: [&str; 3] = ["1.0.0", "1.1.0", "2.0.0"];
const PUBLISHERS: usize = 200;
const BATCH: usize = 250;
const ITERATIONS: usize = 200;
const WARMUP: usize = 10;

const ADJECTIVES: &[&str] = &[
    "quick", "simple", "smart", "secure", "tiny", "friendly", "instant", "reliable", "open",
    "swift", "bright", "silent", "magic", "handy", "super", "clever", "auto", "easy", "rapid",
    "neat",
];
const NOUNS: &[&str] = &[
    "slack",
    "notify",
    "pay",
    "payments",
    "invoice",
    "mailer",
    "hello",
    "greeter",
    "counter",
    "logger",
    "backup",
    "sync",
    "webhook",
    "relay",
    "calendar",
    "tracker",
    "metrics",
    "search",
    "translate",
    "resize",
    "thumbnail",
    "audit",
    "report",
    "alert",
    "chat",
    "discord",
    "stripe",
    "github",
    "jira",
    "crm",
    "inventory",
    "shipping",
    "tax",
    "coupon",
    "loyalty",
    "survey",
    "feedback",
    "digest",
    "schedule",
    "reminder",
];
const VERBS: &[&str] = &[
    "Posts",
    "Sends",
    "Collects",
    "Stores",
    "Forwards",
    "Summarises",
    "Tracks",
    "Notifies",
    "Validates",
    "Exports",
    "Imports",
    "Counts",
    "Schedules",
    "Translates",
    "Charges",
];
const OBJECTS: &[&str] = &[
    "orders",
    "messages",
    "payments",
    "invoices",
    "events",
    "customers",
    "refunds",
    "tickets",
    "signups",
    "reports",
    "alerts",
    "images",
    "documents",
    "subscriptions",
    "greetings",
];
const PLACES: &[&str] = &[
    "to a Slack channel",
    "to your payment provider",
    "into its own store",
    "by email every morning",
    "to a webhook of your choice",
    "to GitHub issues",
    "to the analytics dashboard",
    "for your accountants",
    "to Discord",
    "in real time",
];
const CATEGORIES: &[&str] = &[
    "chat",
    "notifications",
    "payments",
    "analytics",
    "developer",
    "productivity",
    "marketing",
    "sales",
    "security",
    "storage",
    "media",
    "commerce",
    "examples",
    "support",
    "finance",
];
const PERMISSIONS: &[&str] = &[
    "events = { subscribe = [\"order.created\"] }",
    "http = { hosts = [\"hooks.slack.com\"] }\nevents = { subscribe = [\"order.created\"] }",
    "kv = { max-bytes = 65536 }\nevents = { subscribe = [\"count\"] }",
    "http = { hosts = [\"api.stripe.com\"] }\nconfig = true\nevents = { subscribe = [\"checkout\"] }",
    "events = { subscribe = [\"greet\"], emit = [\"greeted\"] }",
];
const PRICING: &[&str] = &[
    "",
    "",
    "",
    "[pricing]\nmodel = \"monthly\"\namount = 900\ncurrency = \"USD\"",
    "[pricing]\nmodel = \"per-1000-invocations\"\namount = 10\ncurrency = \"EUR\"",
];

/// A small deterministic generator (SplitMix64), so every run seeds the same catalog.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// One generated plugin.
struct PluginSpec {
    id: String,
    publisher: usize,
    name: String,
    description: String,
    categories: Vec<&'static str>,
    permissions: &'static str,
    pricing: &'static str,
    installs: i64,
    rating_sum: i64,
    rating_count: i64,
}

fn generate(rng: &mut Rng, i: usize) -> PluginSpec {
    let adjective = rng.pick(ADJECTIVES);
    let noun = rng.pick(NOUNS);
    let second = rng.pick(NOUNS);
    let name = format!(
        "{} {} {}",
        capitalise(adjective),
        capitalise(noun),
        capitalise(second)
    );
    let description = format!(
        "{} {} {} {}. A {} {} plugin that {} {} {}.",
        rng.pick(VERBS),
        rng.pick(OBJECTS),
        rng.pick(PLACES),
        rng.pick(&[
            "with retries",
            "without code",
            "on a schedule",
            "as they happen"
        ]),
        rng.pick(ADJECTIVES),
        rng.pick(NOUNS),
        rng.pick(VERBS).to_lowercase(),
        rng.pick(OBJECTS),
        rng.pick(PLACES),
    );
    let mut categories = vec![rng.pick(CATEGORIES)];
    for _ in 0..rng.below(3) {
        let extra = rng.pick(CATEGORIES);
        if !categories.contains(&extra) {
            categories.push(extra);
        }
    }
    let rating_count = i64::try_from(rng.below(40)).unwrap_or(0);
    PluginSpec {
        id: format!("ns{}.{adjective}-{noun}-{second}-{i}", i % PUBLISHERS),
        publisher: i % PUBLISHERS,
        name,
        description,
        categories,
        permissions: rng.pick(PERMISSIONS),
        pricing: rng.pick(PRICING),
        // A long tail: most plugins have few installs.
        installs: i64::try_from(rng.below(1000) * rng.below(1000) / 100).unwrap_or(0),
        rating_sum: rating_count * i64::try_from(1 + rng.below(5)).unwrap_or(1),
        rating_count,
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn manifest(spec: &PluginSpec, version: &str) -> String {
    let categories: Vec<String> = spec.categories.iter().map(|c| format!("{c:?}")).collect();
    format!(
        "[plugin]\nid = {:?}\nversion = {version:?}\nname = {:?}\ndescription = {:?}\n\
         license = \"MIT\"\ncategories = [{}]\napi = \"^0.1\"\n\n[permissions]\n{}\n\n{}\n",
        spec.id,
        spec.name,
        spec.description,
        categories.join(", "),
        spec.permissions,
        spec.pricing,
    )
}

/// Seeds `plugins` plugins of [`VERSIONS`] each through `catalog::publish_version`.
async fn seed(db: &Db, plugins: usize) -> Result<()> {
    let now = 1_800_000_000_000_i64;
    let mut tx = db.begin().await?;
    let user = "bench-user";
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user)
    .bind("bench@plinth.test")
    .bind("Bench")
    .bind("x")
    .bind(now)
    .execute(&mut *tx)
    .await?;
    for p in 0..PUBLISHERS {
        sqlx::query(
            "INSERT INTO publishers (id, namespace, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(format!("pub-{p}"))
        .bind(format!("ns{p}"))
        .bind(format!("Publisher {p}"))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    // Every version points at one stored artifact: the bytes do not matter to search.
    sqlx::query("INSERT INTO artifacts (sha256, size, bytes, created_at) VALUES ($1, $2, $3, $4)")
        .bind("bench-artifact")
        .bind(8_i64)
        .bind(b"\0asm\x0d\0\x01\0".to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    let mut rng = Rng(0x5EED);
    let mut tx = db.begin().await?;
    for i in 0..plugins {
        let spec = generate(&mut rng, i);
        for (v, version) in VERSIONS.iter().enumerate() {
            let package = Package::new(
                manifest(&spec, version),
                b"\0asm\x0d\0\x01\0".to_vec(),
                None,
                Some(format!("## {version}\n- improvements\n")),
            )?;
            let submission = format!("sub-{i}-{v}");
            let at = now + i64::try_from(i * 10 + v)?;
            sqlx::query(
                "INSERT INTO submissions (id, publisher_id, plugin_id, version, digest, \
                 artifact_sha256, manifest, status, report, submitted_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 'bench-artifact', $6, 'approved', '{}', $7, $8)",
            )
            .bind(&submission)
            .bind(format!("pub-{}", spec.publisher))
            .bind(&spec.id)
            .bind(*version)
            .bind(package.digest().to_hex())
            .bind(&package.manifest_toml)
            .bind(user)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            catalog::publish_version(
                &mut tx,
                &package,
                &format!("pub-{}", spec.publisher),
                &submission,
                "bench-artifact",
                at,
            )
            .await?;
        }
        sqlx::query(
            "UPDATE plugins SET installs = $1, rating_sum = $2, rating_count = $3 WHERE id = $4",
        )
        .bind(spec.installs)
        .bind(spec.rating_sum)
        .bind(spec.rating_count)
        .bind(&spec.id)
        .execute(&mut *tx)
        .await?;
        if (i + 1) % BATCH == 0 {
            tx.commit().await?;
            tx = db.begin().await?;
        }
    }
    tx.commit().await?;
    if db.backend() == plinth_marketplace::Backend::Postgres {
        // Seeding updates each plugin row several times (versions, installs, ratings), which
        // leaves three dead row versions per live one; autovacuum would clear them soon after
        // such a load, so the catalog is measured as it then stands.
        sqlx::query("VACUUM ANALYZE").execute(db.pool()).await?;
    } else {
        sqlx::query("PRAGMA optimize").execute(db.pool()).await?;
    }
    Ok(())
}

/// The measured searches: a label and the query string of `GET /v1/plugins`.
const CASES: &[(&str, &[(&str, &str)])] = &[
    ("q=hello", &[("q", "hello")]),
    ("q=slack notify", &[("q", "slack notify")]),
    ("q=pay", &[("q", "pay")]),
    ("q=sla noti (prefixes)", &[("q", "sla noti")]),
    ("category=chat", &[("category", "chat")]),
    ("sort=installs", &[("sort", "installs")]),
    ("sort=rating", &[("sort", "rating")]),
    ("q=pay sort=installs", &[("q", "pay"), ("sort", "installs")]),
    (
        "q=slack permission=http pricing=free",
        &[("q", "slack"), ("permission", "http"), ("pricing", "free")],
    ),
    ("category=payments, 5th page", &[("category", "payments")]),
];

fn params(pairs: &[(&str, &str)]) -> SearchParams {
    let mut params = SearchParams::default();
    for (key, value) in pairs {
        let value = Some((*value).to_owned());
        match *key {
            "q" => params.q = value,
            "category" => params.category = value,
            "permission" => params.permission = value,
            "pricing" => params.pricing = value,
            "sort" => params.sort = value,
            _ => {}
        }
    }
    params
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short list"
    )]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

async fn measure(backend: &str, db: &Db) -> Result<()> {
    for (label, pairs) in CASES {
        let mut query = SearchQuery::from_params(&params(pairs))?;
        if label.contains("5th page") {
            // Walk four pages to get the cursor of the fifth.
            for _ in 0..4 {
                let page = catalog::search(db, &query, &catalog::Visibility::PUBLIC).await?;
                let cursor = page.next_cursor.context("a next page")?;
                query = SearchQuery::from_params(&SearchParams {
                    cursor: Some(cursor),
                    ..params(pairs)
                })?;
            }
        }
        let mut times = Vec::with_capacity(ITERATIONS);
        let mut returned = 0;
        for i in 0..WARMUP + ITERATIONS {
            let start = Instant::now();
            let page = catalog::search(db, &query, &catalog::Visibility::PUBLIC).await?;
            let took = start.elapsed();
            if i >= WARMUP {
                times.push(took);
                returned = page.items.len();
            }
        }
        times.sort();
        println!(
            "| {backend:<10} | {label:<36} | {:>5} | {:>8} | {:>8} | {:>8} |",
            returned,
            ms(percentile(&times, 0.50)),
            ms(percentile(&times, 0.95)),
            ms(*times.last().context("times")?),
        );
    }
    Ok(())
}

async fn run(backend: &str, url: &str, plugins: usize) -> Result<()> {
    let db = Db::connect(url)
        .await?
        .with_audit_key(plinth_marketplace::audit::key::AuditKey::generate()?.0);
    let start = Instant::now();
    seed(&db, plugins).await?;
    eprintln!(
        "{backend}: seeded {plugins} plugins × {} versions in {:.1} s",
        VERSIONS.len(),
        start.elapsed().as_secs_f64()
    );
    measure(backend, &db).await?;
    db.close().await;
    Ok(())
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run small then.
    let benching = std::env::args().any(|a| a == "--bench");
    let plugins = std::env::var("PLINTH_BENCH_PLUGINS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if benching { 10_000 } else { 300 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        println!(
            "catalog search, {plugins} plugins × {} versions, {ITERATIONS} runs each (20 per page)\n",
            VERSIONS.len()
        );
        println!(
            "| backend    | query                                | items | p50 (ms) | p95 (ms) | max (ms) |"
        );
        println!(
            "|------------|--------------------------------------|-------|----------|----------|----------|"
        );
        // PLINTH_BENCH_SQLITE_FILE keeps the seeded SQLite file there, for a look with sqlite3.
        match std::env::var("PLINTH_BENCH_SQLITE_FILE") {
            Ok(file) => {
                let _ = std::fs::remove_file(&file);
                run("sqlite", &format!("sqlite://{file}?mode=rwc"), plugins).await?;
            }
            Err(_) => {
                let database = TestDatabase::sqlite()?;
                run("sqlite", &database.url(), plugins).await?;
            }
        }
        if std::env::var("PLINTH_BENCH_SKIP_POSTGRES").is_ok() {
            return Ok(());
        }
        match TestDatabase::postgres("bench").await {
            Ok(database) => run("postgres", &database.url(), plugins).await?,
            Err(e) => eprintln!("postgres: skipped, the test server is unreachable: {e}"),
        }
        Ok(())
    })
}
