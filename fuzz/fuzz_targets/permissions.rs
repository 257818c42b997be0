//! The permission grammar: topics and outbound host patterns, and permission sets built from
//! them.
//!
//! - A topic or host pattern that parses prints as written and parses again to itself.
//! - A host pattern allows its own host (a wildcard: a subdomain of it) and covers itself;
//!   coverage is sound: when `a` is covered by `b`, every request `a` allows `b` allows.
//! - A permission set is a subset of itself, has no diff against itself, and two sets that are
//!   grants listed in another order have the same digest (the digest is what a tenant consents
//!   to); a set that is not a subset of another adds grants to it.
//!
//! Input: lines, each tried as a topic and as a host pattern; the last line is also a request
//! `<host> <port>`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_package::{
    EventsPermission, HostPattern, HttpPermission, KvPermission, PermissionDiff, Permissions, Topic,
};

struct Input {
    topics: Vec<String>,
    patterns: Vec<String>,
    /// A request: host and port.
    host: String,
    port: u16,
    kv: Option<(u64, Option<u64>)>,
    config: bool,
    /// How many of the parsed items the smaller of the two sets compared gets.
    split: usize,
}

fn input(data: &[u8]) -> Option<Input> {
    let text = std::str::from_utf8(data).ok()?;
    let lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let last = lines.last().cloned().unwrap_or_default();
    let (host, port) = last.rsplit_once(' ').unwrap_or((&last, "443"));
    Some(Input {
        topics: lines.clone(),
        split: lines.len() / 2,
        patterns: lines,
        host: host.to_owned(),
        port: port.parse().unwrap_or(443),
        kv: Some((1024, (text.len() % 2 == 0).then_some(16))),
        config: text.len() % 3 == 0,
    })
}

fn topic(text: &str) -> Option<Topic> {
    let topic: Topic = text.parse().ok()?;
    assert_eq!(topic.as_str(), text);
    assert!(text.len() <= 255);
    assert_eq!(topic.to_string().parse::<Topic>().ok(), Some(topic.clone()));
    Some(topic)
}

fn pattern(text: &str) -> Option<HostPattern> {
    let pattern: HostPattern = text.parse().ok()?;
    assert_eq!(pattern.as_str(), text);
    assert_eq!(
        pattern.as_str().parse::<HostPattern>().ok(),
        Some(pattern.clone())
    );
    assert!(
        pattern.is_covered_by(&pattern),
        "{text} does not cover itself"
    );
    let port = pattern.port().unwrap_or(443);
    let own = match pattern.host().strip_prefix("*.") {
        Some(base) => format!("sub.{base}"),
        None => pattern.host().to_owned(),
    };
    assert!(pattern.allows(&own, port), "{text} refuses {own}:{port}");
    if let Some(p) = pattern.port() {
        assert!(!pattern.allows(&own, p.wrapping_add(1).max(1)) || p == u16::MAX);
    }
    Some(pattern)
}

fn set(
    topics: &[Topic],
    hosts: &[HostPattern],
    kv: Option<KvPermission>,
    config: bool,
) -> Permissions {
    Permissions {
        kv,
        http: (!hosts.is_empty()).then(|| HttpPermission {
            hosts: hosts.to_vec(),
        }),
        events: (!topics.is_empty()).then(|| EventsPermission {
            subscribe: topics.iter().step_by(2).cloned().collect(),
            emit: topics.iter().skip(1).step_by(2).cloned().collect(),
        }),
        config,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = input(data) else {
        return;
    };
    let topics: Vec<Topic> = input.topics.iter().filter_map(|t| topic(t)).collect();
    let patterns: Vec<HostPattern> = input.patterns.iter().filter_map(|p| pattern(p)).collect();

    for a in &patterns {
        for b in &patterns {
            if a.is_covered_by(b) && a.allows(&input.host, input.port) {
                assert!(
                    b.allows(&input.host, input.port),
                    "{a:?} is covered by {b:?}, allows {}:{} but {b:?} does not",
                    input.host,
                    input.port
                );
            }
        }
    }

    let kv = input.kv.and_then(|(max_bytes, max_keys)| {
        (max_bytes > 0).then_some(KvPermission {
            max_bytes,
            max_keys,
        })
    });
    let all = set(&topics, &patterns, kv, input.config);
    assert!(all.is_subset_of(&all));
    assert!(PermissionDiff::between(&all, &all).is_empty());
    assert_eq!(all.describe().len(), all.grants().len());

    let split = input.split;
    let some = set(
        &topics[..split.min(topics.len())],
        &patterns[..split.min(patterns.len())],
        kv,
        input.config,
    );
    assert!(
        some.is_subset_of(&all),
        "a part is not a subset of the whole"
    );
    let diff = PermissionDiff::between(&some, &all);
    assert!(
        diff.removed.is_empty(),
        "growing a set removed {:?}",
        diff.removed
    );
    if !all.is_subset_of(&some) {
        assert!(!diff.added.is_empty(), "a larger set adds nothing");
    }
    let mut reordered = all.clone();
    if let Some(events) = &mut reordered.events {
        events.subscribe.reverse();
        events.emit.reverse();
    }
    if let Some(http) = &mut reordered.http {
        http.hosts.reverse();
    }
    assert_eq!(reordered.grants(), all.grants());
    assert_eq!(
        reordered.digest(),
        all.digest(),
        "reordering changed the digest"
    );
    if some.allows_host(&input.host, input.port) {
        assert!(all.allows_host(&input.host, input.port));
    }
});
