//! The kv capability's storage, through its public API, on both backends.
//!
//! Every storage test is written once as an `async fn(KvStore)` and run twice by
//! `on_both_backends!`: `<test>::sqlite` on a fresh SQLite file in a temporary directory and
//! `<test>::postgres` in a fresh PostgreSQL schema (see `plinth_test_support::postgres`; the tests fail
//! if PostgreSQL is unreachable).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use plinth_host::kv::{
    KeyPage, KvError, KvQuota, KvStore, KvUsage, MAX_KEY_BYTES, MAX_PAGE, MAX_VALUE_BYTES,
    MIGRATIONS_TABLE, Namespace,
};
use sqlx::Row;

use plinth_test_support::postgres::TestSchema;

/// Plenty: for tests that are not about quotas.
const ROOMY: KvQuota = KvQuota {
    max_bytes: 64 << 20,
    max_keys: None,
    tenant_max_bytes: None,
};

async fn on_sqlite<F, Fut>(test: F) -> Result<()>
where
    F: FnOnce(KvStore) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("kv.db").display());
    let store = KvStore::connect(&url).await?;
    test(store.clone()).await?;
    store.close().await;
    Ok(())
}

async fn on_postgres<F, Fut>(test: F) -> Result<()>
where
    F: FnOnce(KvStore) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let schema = TestSchema::create("kv_test").await?;
    let store = KvStore::connect(&schema.url()).await?;
    test(store.clone()).await?;
    store.close().await;
    drop(schema);
    Ok(())
}

/// Expands each named `async fn(KvStore) -> Result<()>` into a module with a `sqlite` and a
/// `postgres` test.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() -> anyhow::Result<()> {
                super::on_sqlite(super::$test).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() -> anyhow::Result<()> {
                super::on_postgres(super::$test).await
            }
        }
    )*};
}

on_both_backends!(
    round_trip,
    namespaces_isolate_tenants_and_plugins,
    byte_quota_refuses_and_writes_nothing,
    key_quota_refuses_and_writes_nothing,
    replacing_a_value_accounts_the_delta,
    concurrent_sets_never_pass_the_quota,
    concurrent_replacements_keep_usage_exact,
    the_tenant_quota_is_shared_by_its_installs,
    delete_tenant_removes_that_tenant_only,
    concurrent_installs_never_pass_the_tenant_quota,
    list_keys_pages_with_a_cursor,
    list_keys_caps_the_page,
    list_keys_prefix_is_literal,
    invalid_keys_and_oversize_values_are_refused,
    delete_namespace_removes_that_namespace_only,
    usage_is_exact_after_mixed_operations,
    migrations_are_idempotent_and_tracked_apart,
    a_closed_store_is_unavailable,
);

fn ns(tenant: &str, plugin: &str) -> Namespace {
    Namespace::new(tenant, plugin)
}

fn used(bytes: u64, keys: u64) -> KvUsage {
    KvUsage { bytes, keys }
}

/// Every key of the namespace, following cursors.
async fn all_keys(store: &KvStore, ns: &Namespace, prefix: &str) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list_keys(ns, prefix, cursor.as_deref(), 7).await?;
        keys.extend(page.keys);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(keys),
        }
    }
}

/// The usage recomputed from the entries themselves.
async fn recount(store: &KvStore, ns: &Namespace) -> Result<KvUsage> {
    let mut usage = KvUsage::default();
    for key in all_keys(store, ns, "").await? {
        let value = store
            .get(ns, &key)
            .await?
            .context("listed key has a value")?;
        usage.bytes += u64::try_from(key.len() + value.len())?;
        usage.keys += 1;
    }
    Ok(usage)
}

fn is_quota(result: &Result<(), KvError>, which: &str) -> bool {
    matches!(result, Err(KvError::QuotaExceeded { quota, .. }) if *quota == which)
}

/// get / set / delete, including empty and binary values and non-ASCII keys.
async fn round_trip(store: KvStore) -> Result<()> {
    let ns = ns("acme", "counter");
    ensure!(store.get(&ns, "visits").await?.is_none());

    store.set(&ns, "visits", b"41", &ROOMY).await?;
    ensure!(store.get(&ns, "visits").await? == Some(b"41".to_vec()));
    store.set(&ns, "visits", b"42", &ROOMY).await?;
    ensure!(store.get(&ns, "visits").await? == Some(b"42".to_vec()));

    let binary: Vec<u8> = (0..=255).collect();
    store.set(&ns, "bin", &binary, &ROOMY).await?;
    ensure!(store.get(&ns, "bin").await? == Some(binary));

    store.set(&ns, "empty", b"", &ROOMY).await?;
    ensure!(store.get(&ns, "empty").await? == Some(Vec::new()));

    store.set(&ns, "clé/ключ/🔑", b"unicode", &ROOMY).await?;
    ensure!(store.get(&ns, "clé/ключ/🔑").await? == Some(b"unicode".to_vec()));

    ensure!(store.delete(&ns, "visits").await?);
    ensure!(store.get(&ns, "visits").await?.is_none());
    ensure!(
        !store.delete(&ns, "visits").await?,
        "a second delete finds nothing"
    );
    ensure!(!store.delete(&ns, "never-set").await?);
    ensure!(all_keys(&store, &ns, "").await? == ["bin", "clé/ключ/🔑", "empty"]);
    Ok(())
}

/// The same key name in another tenant, another plugin, or a namespace whose parts concatenate
/// to the same string, is another entry; no call on one namespace reaches another.
async fn namespaces_isolate_tenants_and_plugins(store: KvStore) -> Result<()> {
    let spaces = [
        ns("tenant-a", "plugin"),
        ns("tenant-b", "plugin"),
        ns("tenant-a", "other"),
        // Same concatenation, different split: must not alias.
        ns("ab", "c"),
        ns("a", "bc"),
    ];
    for (i, space) in spaces.iter().enumerate() {
        store
            .set(space, "shared", format!("value {i}").as_bytes(), &ROOMY)
            .await?;
        store.set(space, &format!("own-{i}"), b"x", &ROOMY).await?;
    }
    for (i, space) in spaces.iter().enumerate() {
        ensure!(store.get(space, "shared").await? == Some(format!("value {i}").into_bytes()));
        let own = format!("own-{i}");
        ensure!(
            all_keys(&store, space, "").await? == [own.clone(), "shared".to_owned()],
            "{space:?} lists only its own keys"
        );
        ensure!(all_keys(&store, space, "own-").await? == [own]);
        for j in (0..spaces.len()).filter(|&j| j != i) {
            ensure!(store.get(space, &format!("own-{j}")).await?.is_none());
        }
        let usage = store.usage(space).await?;
        ensure!(usage.keys == 2, "{space:?}: {usage:?}");
    }

    // Deleting in one namespace leaves the others' same-named key alone.
    ensure!(store.delete(&spaces[0], "shared").await?);
    ensure!(store.get(&spaces[0], "shared").await?.is_none());
    for (i, space) in spaces.iter().enumerate().skip(1) {
        ensure!(store.get(space, "shared").await? == Some(format!("value {i}").into_bytes()));
    }
    Ok(())
}

/// A write past the byte quota is refused naming the quota, and nothing of it is stored.
async fn byte_quota_refuses_and_writes_nothing(store: KvStore) -> Result<()> {
    let ns = ns("acme", "bytes");
    let quota = KvQuota {
        max_bytes: 20,
        max_keys: None,
        tenant_max_bytes: None,
    };
    store.set(&ns, "k1", &[1; 10], &quota).await?; // 12 bytes

    let refused = store.set(&ns, "k2", &[2; 10], &quota).await;
    ensure!(
        matches!(
            refused,
            Err(KvError::QuotaExceeded {
                quota: "bytes",
                limit: 20,
                would_use: 24
            })
        ),
        "{refused:?}"
    );
    ensure!(store.get(&ns, "k2").await?.is_none());

    // Growing an existing value past the quota: refused, old value intact.
    let refused = store.set(&ns, "k1", &[3; 19], &quota).await;
    ensure!(is_quota(&refused, "bytes"), "{refused:?}");
    ensure!(store.get(&ns, "k1").await? == Some(vec![1; 10]));

    ensure!(store.usage(&ns).await? == used(12, 1));
    ensure!(all_keys(&store, &ns, "").await? == ["k1"]);

    // Exactly at the limit is allowed.
    store.set(&ns, "k2", &[2; 6], &quota).await?;
    ensure!(store.usage(&ns).await? == used(20, 2));
    let refused = store.set(&ns, "k3", b"", &quota).await;
    ensure!(is_quota(&refused, "bytes"), "{refused:?}");
    Ok(())
}

/// A write past the key quota is refused naming the quota; replacing does not add a key.
async fn key_quota_refuses_and_writes_nothing(store: KvStore) -> Result<()> {
    let ns = ns("acme", "keys");
    let quota = KvQuota {
        max_bytes: 1 << 20,
        max_keys: Some(2),
        tenant_max_bytes: None,
    };
    store.set(&ns, "a", b"1", &quota).await?;
    store.set(&ns, "b", b"2", &quota).await?;

    let refused = store.set(&ns, "c", b"3", &quota).await;
    ensure!(
        matches!(
            refused,
            Err(KvError::QuotaExceeded {
                quota: "keys",
                limit: 2,
                would_use: 3
            })
        ),
        "{refused:?}"
    );
    ensure!(store.get(&ns, "c").await?.is_none());
    ensure!(store.usage(&ns).await? == used(4, 2));

    store.set(&ns, "a", b"replaced", &quota).await?;
    ensure!(store.get(&ns, "a").await? == Some(b"replaced".to_vec()));

    ensure!(store.delete(&ns, "b").await?);
    store.set(&ns, "c", b"3", &quota).await?;
    ensure!(all_keys(&store, &ns, "").await? == ["a", "c"]);
    ensure!(store.usage(&ns).await? == used(11, 2));
    Ok(())
}

/// Replacing counts the new entry's size minus the old one's; shrinking is allowed even when
/// the namespace is over a (since lowered) quota.
async fn replacing_a_value_accounts_the_delta(store: KvStore) -> Result<()> {
    let ns = ns("acme", "delta");
    store.set(&ns, "key", &[0; 100], &ROOMY).await?;
    ensure!(store.usage(&ns).await? == used(103, 1));
    store.set(&ns, "key", &[0; 10], &ROOMY).await?;
    ensure!(store.usage(&ns).await? == used(13, 1));
    store.set(&ns, "key", &[0; 50], &ROOMY).await?;
    ensure!(store.usage(&ns).await? == used(53, 1));

    // 110 fits only if the old 53 are given back first.
    let tight = KvQuota {
        max_bytes: 110,
        max_keys: Some(1),
        tenant_max_bytes: None,
    };
    store.set(&ns, "key", &[0; 107], &tight).await?;
    ensure!(store.usage(&ns).await? == used(110, 1));

    // The quota is lowered under the data: growing is refused, shrinking still works.
    let lowered = KvQuota {
        max_bytes: 50,
        max_keys: Some(1),
        tenant_max_bytes: None,
    };
    let refused = store.set(&ns, "key", &[0; 108], &lowered).await;
    ensure!(is_quota(&refused, "bytes"), "{refused:?}");
    store.set(&ns, "key", &[0; 80], &lowered).await?;
    ensure!(store.usage(&ns).await? == used(83, 1));
    Ok(())
}

/// 20 tasks race to fill a quota that holds 5 of their entries: exactly 5 win, on bytes and on
/// keys, and usage never passes the limit.
async fn concurrent_sets_never_pass_the_quota(store: KvStore) -> Result<()> {
    let store = Arc::new(store);
    for (which, quota) in [
        (
            "bytes",
            KvQuota {
                max_bytes: 500, // five entries of 3 + 97 bytes
                max_keys: None,
                tenant_max_bytes: None,
            },
        ),
        (
            "keys",
            KvQuota {
                max_bytes: 1 << 20,
                max_keys: Some(5),
                tenant_max_bytes: None,
            },
        ),
    ] {
        let space = ns("racer", which);
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = Arc::clone(&store);
                let space = space.clone();
                tokio::spawn(async move {
                    store
                        .set(&space, &format!("k{i:02}"), &[7; 97], &quota)
                        .await
                })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            let result = task.await?;
            match result {
                Ok(()) => won += 1,
                Err(KvError::QuotaExceeded { quota, .. }) if quota == which => {}
                Err(other) => bail!("unexpected {other:?}"),
            }
        }
        ensure!(won == 5, "{which}: {won} writes passed");
        ensure!(store.usage(&space).await? == used(500, 5));
        ensure!(recount(&store, &space).await? == used(500, 5));
    }
    Ok(())
}

/// The tenant-wide quota bounds what all of a tenant's installs hold together; other tenants
/// are not affected, and shrinking stays allowed.
async fn the_tenant_quota_is_shared_by_its_installs(store: KvStore) -> Result<()> {
    let quota = KvQuota {
        max_bytes: 1 << 20,
        max_keys: None,
        tenant_max_bytes: Some(30),
    };
    let (first, second) = (ns("acme", "first"), ns("acme", "second"));
    store.set(&first, "k1", &[1; 18], &quota).await?; // 20 bytes
    let refused = store.set(&second, "k2", &[2; 10], &quota).await; // 12 more: 32
    ensure!(
        matches!(
            refused,
            Err(KvError::QuotaExceeded {
                quota: "tenant bytes",
                limit: 30,
                would_use: 32
            })
        ),
        "{refused:?}"
    );
    ensure!(store.get(&second, "k2").await?.is_none());
    store.set(&second, "k2", &[2; 8], &quota).await?; // exactly 30
    ensure!(store.tenant_bytes("acme").await? == 30);
    // Another tenant has its own quota.
    store
        .set(&ns("globex", "first"), "k1", &[3; 25], &quota)
        .await?;
    ensure!(store.tenant_bytes("globex").await? == 27);
    // Over quota (the plan was lowered): a smaller value is still written.
    let lowered = KvQuota {
        tenant_max_bytes: Some(10),
        ..quota
    };
    store.set(&first, "k1", &[1; 4], &lowered).await?;
    ensure!(store.tenant_bytes("acme").await? == 16);
    Ok(())
}

/// Deleting a tenant removes all its namespaces and their usage, and nothing of others.
async fn delete_tenant_removes_that_tenant_only(store: KvStore) -> Result<()> {
    for (tenant, plugin) in [("gone", "a"), ("gone", "b"), ("kept", "a")] {
        store.set(&ns(tenant, plugin), "k", b"v", &ROOMY).await?;
        store.set(&ns(tenant, plugin), "k2", b"v2", &ROOMY).await?;
    }
    ensure!(store.delete_tenant("gone").await? == 4);
    for plugin in ["a", "b"] {
        ensure!(all_keys(&store, &ns("gone", plugin), "").await?.is_empty());
        ensure!(store.usage(&ns("gone", plugin)).await? == used(0, 0));
    }
    ensure!(store.tenant_bytes("gone").await? == 0);
    ensure!(all_keys(&store, &ns("kept", "a"), "").await? == ["k", "k2"]);
    ensure!(store.delete_tenant("gone").await? == 0);
    Ok(())
}

/// Installs of one tenant writing at once never together pass the tenant-wide quota.
async fn concurrent_installs_never_pass_the_tenant_quota(store: KvStore) -> Result<()> {
    let store = Arc::new(store);
    let quota = KvQuota {
        max_bytes: 1 << 20,
        max_keys: None,
        tenant_max_bytes: Some(500), // five entries of 3 + 97 bytes
    };
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let space = ns("racer", &format!("plugin-{}", i % 4));
                store
                    .set(&space, &format!("k{i:02}"), &[7; 97], &quota)
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await? {
            Ok(()) => won += 1,
            Err(KvError::QuotaExceeded {
                quota: "tenant bytes",
                ..
            }) => {}
            Err(other) => bail!("unexpected {other:?}"),
        }
    }
    ensure!(won == 5, "{won} writes passed");
    ensure!(store.tenant_bytes("racer").await? == 500);
    Ok(())
}

/// Concurrent replacements and deletes of the same keys leave usage equal to what is stored.
async fn concurrent_replacements_keep_usage_exact(store: KvStore) -> Result<()> {
    let store = Arc::new(store);
    let space = ns("racer", "replace");
    let tasks: Vec<_> = (0..30_usize)
        .map(|i| {
            let store = Arc::clone(&store);
            let space = space.clone();
            tokio::spawn(async move {
                let key = format!("hot{}", i % 3);
                if i % 7 == 6 {
                    store.delete(&space, &key).await.map(|_| ())
                } else {
                    store.set(&space, &key, &vec![1; i * 13], &ROOMY).await
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    ensure!(store.usage(&space).await? == recount(&store, &space).await?);
    Ok(())
}

/// Pages follow the cursor in byte order, with no overlap, no gap and no empty last page; a
/// cursor whose key was deleted meanwhile still works.
async fn list_keys_pages_with_a_cursor(store: KvStore) -> Result<()> {
    let ns = ns("acme", "pages");
    for i in 0..25 {
        store
            .set(&ns, &format!("item/{i:02}"), b"v", &ROOMY)
            .await?;
    }
    for key in ["item", "items", "iten", "other", "Item/00"] {
        store.set(&ns, key, b"v", &ROOMY).await?;
    }

    let first = store.list_keys(&ns, "item/", None, 10).await?;
    let expected: Vec<String> = (0..10).map(|i| format!("item/{i:02}")).collect();
    ensure!(first.keys == expected, "{first:?}");
    ensure!(first.next_cursor.as_deref() == Some("item/09"));

    // The cursor's own key disappears between pages: paging goes on after it.
    ensure!(store.delete(&ns, "item/09").await?);
    let second = store
        .list_keys(&ns, "item/", first.next_cursor.as_deref(), 10)
        .await?;
    let expected: Vec<String> = (10..20).map(|i| format!("item/{i:02}")).collect();
    ensure!(second.keys == expected, "{second:?}");
    ensure!(second.next_cursor.as_deref() == Some("item/19"));

    let third = store
        .list_keys(&ns, "item/", second.next_cursor.as_deref(), 10)
        .await?;
    let expected: Vec<String> = (20..25).map(|i| format!("item/{i:02}")).collect();
    ensure!(
        third
            == KeyPage {
                keys: expected,
                next_cursor: None
            },
        "{third:?}"
    );

    // An exact multiple of the page size ends without an empty extra page.
    let exact = store.list_keys(&ns, "item/2", None, 5).await?;
    ensure!(
        exact.keys.len() == 5 && exact.next_cursor.is_none(),
        "{exact:?}"
    );

    // Byte order, not locale order: upper case before lower case, ASCII before the rest.
    for key in ["~tilde", "éclair", "Zebra", "zebra"] {
        store.set(&ns, key, b"v", &ROOMY).await?;
    }
    let everything = all_keys(&store, &ns, "").await?;
    let mut sorted = everything.clone();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    ensure!(everything == sorted, "{everything:?}");
    ensure!(everything.first().map(String::as_str) == Some("Item/00"));
    ensure!(everything.last().map(String::as_str) == Some("éclair"));
    ensure!(everything.len() == 24 + 5 + 4);

    // A cursor before the prefix's range starts at the prefix; one past it ends the listing.
    let from_before = store.list_keys(&ns, "item/", Some("a"), 2).await?;
    ensure!(from_before.keys == ["item/00", "item/01"]);
    let from_after = store.list_keys(&ns, "item/", Some("zzz"), 2).await?;
    ensure!(from_after == KeyPage::default());
    Ok(())
}

/// `limit` is capped at MAX_PAGE, and 0 means MAX_PAGE.
async fn list_keys_caps_the_page(store: KvStore) -> Result<()> {
    let ns = ns("acme", "big");
    let count = MAX_PAGE + 1;
    for i in 0..count {
        store.set(&ns, &format!("{i:05}"), b"", &ROOMY).await?;
    }
    let cap = usize::try_from(MAX_PAGE)?;
    for limit in [0, MAX_PAGE, MAX_PAGE + 1, u32::MAX] {
        let page = store.list_keys(&ns, "", None, limit).await?;
        ensure!(
            page.keys.len() == cap,
            "limit {limit}: {} keys",
            page.keys.len()
        );
        ensure!(
            page.next_cursor.as_deref() == Some("00999"),
            "limit {limit}"
        );
        let rest = store
            .list_keys(&ns, "", page.next_cursor.as_deref(), limit)
            .await?;
        ensure!(rest.keys == ["01000"] && rest.next_cursor.is_none());
    }
    let one = store.list_keys(&ns, "", None, 1).await?;
    ensure!(one.keys == ["00000"] && one.next_cursor.as_deref() == Some("00000"));
    Ok(())
}

/// `%`, `_` and `\` in a prefix are ordinary characters, and so are characters at the top of
/// the Unicode range.
async fn list_keys_prefix_is_literal(store: KvStore) -> Result<()> {
    let ns = ns("acme", "prefix");
    let keys = [
        "a%",
        "a%b",
        "a_",
        "a_b",
        "axb",
        "ab",
        "a\\b",
        "a\\",
        "a",
        "b",
        "\u{10FFFF}",
        "\u{10FFFF}x",
        "\u{10FFFE}",
    ];
    for key in keys {
        store.set(&ns, key, b"v", &ROOMY).await?;
    }
    ensure!(all_keys(&store, &ns, "a%").await? == ["a%", "a%b"]);
    ensure!(all_keys(&store, &ns, "a_").await? == ["a_", "a_b"]);
    ensure!(all_keys(&store, &ns, "a\\").await? == ["a\\", "a\\b"]);
    ensure!(all_keys(&store, &ns, "%").await?.is_empty());
    ensure!(all_keys(&store, &ns, "_").await?.is_empty());
    ensure!(all_keys(&store, &ns, "\u{10FFFF}").await? == ["\u{10FFFF}", "\u{10FFFF}x"]);
    ensure!(
        all_keys(&store, &ns, "a").await?
            == ["a", "a%", "a%b", "a\\", "a\\b", "a_", "a_b", "ab", "axb"]
    );
    ensure!(all_keys(&store, &ns, "").await?.len() == keys.len());
    ensure!(all_keys(&store, &ns, "a%b-longer").await?.is_empty());
    Ok(())
}

/// Keys must be 1..=512 bytes (bytes, not characters) without NUL; values at most 1 MiB.
/// Refusals write nothing.
async fn invalid_keys_and_oversize_values_are_refused(store: KvStore) -> Result<()> {
    let ns = ns("acme", "limits");
    let too_long = "k".repeat(MAX_KEY_BYTES + 1);
    let too_long_in_bytes = "é".repeat(MAX_KEY_BYTES / 2 + 1); // 257 chars, 514 bytes
    for bad in [
        "",
        "nul\0inside",
        too_long.as_str(),
        too_long_in_bytes.as_str(),
    ] {
        let set = store.set(&ns, bad, b"v", &ROOMY).await;
        ensure!(
            matches!(set, Err(KvError::InvalidKey(_))),
            "set {bad:?}: {set:?}"
        );
        let get = store.get(&ns, bad).await;
        ensure!(
            matches!(get, Err(KvError::InvalidKey(_))),
            "get {bad:?}: {get:?}"
        );
        let delete = store.delete(&ns, bad).await;
        ensure!(
            matches!(delete, Err(KvError::InvalidKey(_))),
            "delete {bad:?}"
        );
    }
    for bad in ["nul\0inside", too_long.as_str()] {
        let list = store.list_keys(&ns, bad, None, 10).await;
        ensure!(
            matches!(list, Err(KvError::InvalidKey(_))),
            "prefix {bad:?}"
        );
        let list = store.list_keys(&ns, "", Some(bad), 10).await;
        ensure!(
            matches!(list, Err(KvError::InvalidKey(_))),
            "cursor {bad:?}"
        );
    }

    let longest = "k".repeat(MAX_KEY_BYTES);
    let longest_wide = "é".repeat(MAX_KEY_BYTES / 2);
    store.set(&ns, &longest, b"v", &ROOMY).await?;
    store.set(&ns, &longest_wide, b"v", &ROOMY).await?;

    let oversize = vec![0_u8; MAX_VALUE_BYTES + 1];
    let refused = store.set(&ns, "big", &oversize, &ROOMY).await;
    let limit = u64::try_from(MAX_VALUE_BYTES)?;
    ensure!(
        matches!(refused, Err(KvError::ValueTooLarge { size, limit: l }) if size == limit + 1 && l == limit),
        "{refused:?}"
    );
    ensure!(store.get(&ns, "big").await?.is_none());

    let largest = vec![0xAB_u8; MAX_VALUE_BYTES];
    store.set(&ns, "big", &largest, &ROOMY).await?;
    ensure!(store.get(&ns, "big").await? == Some(largest));

    let expected_bytes = 2 * (MAX_KEY_BYTES + 1) + 3 + MAX_VALUE_BYTES;
    ensure!(
        store.usage(&ns).await?
            == KvUsage {
                bytes: u64::try_from(expected_bytes)?,
                keys: 3
            }
    );
    Ok(())
}

/// Uninstalling one install removes its keys and usage, and nothing of anyone else's.
async fn delete_namespace_removes_that_namespace_only(store: KvStore) -> Result<()> {
    let gone = ns("t1", "p");
    let same_tenant = ns("t1", "q");
    let same_plugin = ns("t2", "p");
    for space in [&gone, &same_tenant, &same_plugin] {
        for key in ["a", "b", "c"] {
            store.set(space, key, b"value", &ROOMY).await?;
        }
    }
    ensure!(store.delete_namespace(&gone).await? == 3);
    ensure!(store.usage(&gone).await? == KvUsage::default());
    ensure!(all_keys(&store, &gone, "").await?.is_empty());
    ensure!(store.get(&gone, "a").await?.is_none());

    for space in [&same_tenant, &same_plugin] {
        ensure!(all_keys(&store, space, "").await? == ["a", "b", "c"]);
        ensure!(store.usage(space).await? == used(18, 3));
    }

    ensure!(store.delete_namespace(&gone).await? == 0, "already empty");
    ensure!(store.delete_namespace(&ns("never", "used")).await? == 0);

    // A reinstall starts from zero usage.
    let quota = KvQuota {
        max_bytes: 6,
        max_keys: Some(1),
        tenant_max_bytes: None,
    };
    store.set(&gone, "a", b"value", &quota).await?;
    ensure!(store.usage(&gone).await? == used(6, 1));
    Ok(())
}

/// After a few hundred mixed sets, replacements, deletes and refusals, usage and contents equal
/// a model kept by the test.
async fn usage_is_exact_after_mixed_operations(store: KvStore) -> Result<()> {
    let ns = ns("acme", "mixed");
    let quota = KvQuota {
        max_bytes: 4_000,
        max_keys: Some(25),
        tenant_max_bytes: None,
    };
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut refusals = 0;
    for _ in 0..400 {
        let key = format!("key-{}", next() % 40);
        if next() % 4 == 0 {
            let existed = store.delete(&ns, &key).await?;
            ensure!(existed == model.remove(&key).is_some(), "delete {key}");
        } else {
            let value = vec![u8::try_from(next() % 256)?; usize::try_from(next() % 300)?];
            match store.set(&ns, &key, &value, &quota).await {
                Ok(()) => {
                    model.insert(key, value);
                }
                Err(KvError::QuotaExceeded { .. }) => refusals += 1,
                Err(other) => return Err(other.into()),
            }
        }
        let bytes: usize = model.iter().map(|(k, v)| k.len() + v.len()).sum();
        ensure!(bytes <= 4_000 && model.len() <= 25);
    }
    ensure!(refusals > 0, "the sequence should have hit the quota");

    let expected = KvUsage {
        bytes: u64::try_from(model.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>())?,
        keys: u64::try_from(model.len())?,
    };
    ensure!(store.usage(&ns).await? == expected);
    ensure!(recount(&store, &ns).await? == expected);
    ensure!(all_keys(&store, &ns, "").await? == model.keys().cloned().collect::<Vec<_>>());
    for (key, value) in &model {
        ensure!(store.get(&ns, key).await?.as_ref() == Some(value), "{key}");
    }
    Ok(())
}

/// Migrating again is a no-op, and the migrations are recorded in the kv's own table, not in
/// sqlx's default one (which the marketplace's migrator uses in the same database).
async fn migrations_are_idempotent_and_tracked_apart(store: KvStore) -> Result<()> {
    let ns = ns("acme", "migrate");
    store.set(&ns, "kept", b"v", &ROOMY).await?;
    store.migrate().await?;
    store.migrate().await?;
    ensure!(store.get(&ns, "kept").await? == Some(b"v".to_vec()));

    let tables: Vec<String> = match &store {
        KvStore::Sqlite(kv) => {
            sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                .fetch_all(kv.pool())
                .await?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<Result<_, _>>()?
        }
        KvStore::Postgres(pool) => sqlx::query(
            "SELECT table_name::TEXT FROM information_schema.tables \
             WHERE table_schema = current_schema() ORDER BY table_name",
        )
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?,
    };
    ensure!(
        tables == [MIGRATIONS_TABLE, "kv_entries", "kv_usage"],
        "{tables:?}"
    );
    Ok(())
}

/// Once the pool is closed, calls fail as `Unavailable` (retryable), not as a host fault.
async fn a_closed_store_is_unavailable(store: KvStore) -> Result<()> {
    let ns = ns("acme", "closed");
    store.set(&ns, "k", b"v", &ROOMY).await?;
    store.close().await;
    let get = store.get(&ns, "k").await;
    ensure!(matches!(get, Err(KvError::Unavailable(_))), "{get:?}");
    let set = store.set(&ns, "k", b"v", &ROOMY).await;
    ensure!(matches!(set, Err(KvError::Unavailable(_))), "{set:?}");
    Ok(())
}

#[tokio::test]
async fn connect_refuses_other_schemes_without_echoing_the_url() -> Result<()> {
    let refused = KvStore::connect("mysql://user:secret@localhost/db").await;
    match refused {
        Err(err @ KvError::UnsupportedUrl(_)) => {
            ensure!(!err.to_string().contains("secret"), "{err}");
            ensure!(err.to_string().contains("mysql"), "{err}");
        }
        other => bail!("{other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn sqlite_data_survives_reopening() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("nested.db").display());
    let ns = ns("acme", "durable");
    let store = KvStore::connect(&url).await?;
    store.set(&ns, "k", b"v", &ROOMY).await?;
    store.close().await;

    let reopened = KvStore::connect(&url).await?;
    ensure!(reopened.get(&ns, "k").await? == Some(b"v".to_vec()));
    ensure!(reopened.usage(&ns).await? == used(2, 1));
    Ok(())
}

#[tokio::test]
async fn sqlite_in_memory_works() -> Result<()> {
    let store = KvStore::connect("sqlite::memory:").await?;
    let ns = ns("acme", "memory");
    store.set(&ns, "k", b"v", &ROOMY).await?;
    ensure!(store.get(&ns, "k").await? == Some(b"v".to_vec()));
    Ok(())
}
