//! Permissions: grants, sentences, subsets, diffs and the order-independent digest.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::manifest_with;
use plinth_package::{
    Grant, HostPattern, Manifest, PermissionDiff, Permissions, PermissionsDigest,
};
use proptest::prelude::*;

fn perms(table: &str) -> Permissions {
    Manifest::parse(&manifest_with(&format!("[permissions]\n{table}")))
        .unwrap()
        .permissions
}

#[test]
fn grants_are_atomic_sorted_and_described() {
    let p = perms(
        "config = true\nevents = { subscribe = [\"order.created\"], emit = [\"notify.sent\"] }\nhttp = { hosts = [\"hooks.slack.com\", \"*.example.com\"] }\nkv = { max-bytes = 1_048_576 }\n",
    );
    let described: Vec<(String, String, String)> = p
        .describe()
        .into_iter()
        .map(|d| (d.capability, d.detail, d.sentence))
        .collect();
    let expected = [
        (
            "kv",
            "max-bytes=1048576",
            "Store up to 1.0 MiB in its own key-value store",
        ),
        (
            "http",
            "*.example.com",
            "Send HTTP requests to any subdomain of example.com",
        ),
        (
            "http",
            "hooks.slack.com",
            "Send HTTP requests to hooks.slack.com",
        ),
        (
            "events.subscribe",
            "order.created",
            "Receive your order.created events",
        ),
        ("events.emit", "notify.sent", "Emit notify.sent events"),
        (
            "config",
            "read",
            "Read the configuration values you set for it",
        ),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(described, expected);
    assert_eq!(p.sentences().len(), 6);
}

#[test]
fn subset_respects_quotas_wildcards_and_topics() {
    let granted = perms(
        "kv = { max-bytes = 2048, max-keys = 10 }\nhttp = { hosts = [\"*.example.com\", \"api.other.com:443\"] }\nevents = { subscribe = [\"a\", \"b\"] }\n",
    );
    assert!(perms("kv = { max-bytes = 1024, max-keys = 5 }").is_subset_of(&granted));
    assert!(!perms("kv = { max-bytes = 4096, max-keys = 5 }").is_subset_of(&granted));
    assert!(
        !perms("kv = { max-bytes = 1024 }").is_subset_of(&granted),
        "unlimited keys exceed 10"
    );
    assert!(
        perms("http = { hosts = [\"x.example.com\", \"*.deep.example.com\"] }")
            .is_subset_of(&granted)
    );
    assert!(!perms("http = { hosts = [\"example.com\"] }").is_subset_of(&granted));
    assert!(perms("http = { hosts = [\"api.other.com:443\"] }").is_subset_of(&granted));
    assert!(
        !perms("http = { hosts = [\"api.other.com\"] }").is_subset_of(&granted),
        "any port exceeds 443"
    );
    assert!(perms("events = { subscribe = [\"b\"] }").is_subset_of(&granted));
    assert!(!perms("events = { subscribe = [\"c\"] }").is_subset_of(&granted));
    assert!(!perms("config = true").is_subset_of(&granted));
    assert!(Permissions::default().is_subset_of(&granted));
}

#[test]
fn host_patterns_allow_requests() {
    let p = perms(
        "http = { hosts = [\"hooks.slack.com\", \"*.example.com\", \"127.0.0.1:8080\", \"[::1]\"] }",
    );
    assert!(p.allows_host("hooks.slack.com", 443));
    assert!(p.allows_host("HOOKS.slack.com.", 80));
    assert!(p.allows_host("a.b.example.com", 443));
    assert!(!p.allows_host("example.com", 443));
    assert!(!p.allows_host("evilexample.com", 443));
    assert!(p.allows_host("127.0.0.1", 8080));
    assert!(!p.allows_host("127.0.0.1", 8081));
    assert!(p.allows_host("::1", 1));
    assert!(!p.allows_host("hooks.slack.com.evil.com", 443));
}

/// Found by `fuzz/run.sh` (target `permissions`): `[A::1]` parsed, but requests are compared
/// lowercased, so it allowed nothing while tenants were asked to consent to it.
#[test]
fn ipv6_patterns_must_be_canonical_so_that_they_match() {
    for (written, canonical) in [
        ("[A::1]", "[a::1]"),
        ("[0:0::1]", "[::1]"),
        ("[2001:DB8::1]:443", "[2001:db8::1]"),
        ("[2001:db8:0:0:0:0:0:1]", "[2001:db8::1]"),
    ] {
        let err = written.parse::<HostPattern>().unwrap_err().to_string();
        assert!(err.contains(canonical), "{written}: {err}");
    }
    for canonical in ["[a::1]", "[::1]:8080", "[2001:db8::1]", "[::ffff:10.0.0.1]"] {
        let pattern: HostPattern = canonical.parse().unwrap();
        let host = pattern.host().trim_start_matches('[').trim_end_matches(']');
        assert!(
            pattern.allows(host, pattern.port().unwrap_or(443)),
            "{canonical}"
        );
        assert!(pattern.allows(&host.to_uppercase(), pattern.port().unwrap_or(443)));
    }
}

#[test]
fn host_pattern_parts() {
    let h: HostPattern = "*.example.com:8443".parse().unwrap();
    assert_eq!(h.host(), "*.example.com");
    assert_eq!(h.port(), Some(8443));
    assert!(h.is_wildcard());
}

#[test]
fn diff_lists_added_and_removed_grants() {
    let old = perms("kv = { max-bytes = 1024 }\nhttp = { hosts = [\"a.com\"] }");
    let new = perms(
        "kv = { max-bytes = 2048 }\nhttp = { hosts = [\"a.com\", \"b.com\"] }\nconfig = true",
    );
    let diff = PermissionDiff::between(&old, &new);
    assert_eq!(
        diff.added,
        vec![
            Grant::Kv {
                max_bytes: 2048,
                max_keys: None
            },
            Grant::HttpHost("b.com".parse().unwrap()),
            Grant::Config,
        ]
    );
    assert_eq!(
        diff.removed,
        vec![Grant::Kv {
            max_bytes: 1024,
            max_keys: None
        }]
    );
    assert!(PermissionDiff::between(&new, &new).is_empty());
    let view = serde_json::to_value(diff.view()).unwrap();
    assert_eq!(view["added"][1]["sentence"], "Send HTTP requests to b.com");
}

#[test]
fn digest_displays_parses_and_serialises_as_a_string() {
    let d = perms("config = true").digest();
    let text = d.to_string();
    assert!(text.starts_with("sha256:") && text.len() == 71);
    assert_eq!(text.parse::<PermissionsDigest>().unwrap(), d);
    assert_eq!(
        serde_json::to_value(d).unwrap(),
        serde_json::Value::String(text)
    );
    assert!("sha256:XYZ".parse::<PermissionsDigest>().is_err());
    assert_ne!(d, Permissions::default().digest());
    assert_ne!(
        perms("kv = { max-bytes = 1 }").digest(),
        perms("kv = { max-bytes = 2 }").digest()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The permissions digest depends on the set of grants, not the order they are listed in.
    #[test]
    fn digest_is_independent_of_list_order(
        hosts in proptest::sample::subsequence(vec!["a.com", "b.com", "*.c.com", "d.com:81", "10.0.0.1"], 1..5),
        topics in proptest::sample::subsequence(vec!["x", "y.z", "order.created", "q-r_s"], 0..4),
        seed in any::<u64>(),
    ) {
        let list = |items: &[&str]| items.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ");
        let table = |hosts: &[&str], topics: &[&str]| {
            format!("http = {{ hosts = [{}] }}\nevents = {{ subscribe = [{}], emit = [{}] }}\n", list(hosts), list(topics), list(topics))
        };
        let mut shuffled_hosts = hosts.clone();
        let mut shuffled_topics = topics.clone();
        // A cheap deterministic shuffle driven by the seed.
        let n = shuffled_hosts.len();
        shuffled_hosts.rotate_left((seed as usize) % n);
        shuffled_topics.reverse();
        let a = perms(&table(&hosts, &topics));
        let b = perms(&table(&shuffled_hosts, &shuffled_topics));
        prop_assert_eq!(a.digest(), b.digest());
        prop_assert_eq!(a.grants(), b.grants());
        prop_assert!(a.is_subset_of(&b) && b.is_subset_of(&a));
    }
}
