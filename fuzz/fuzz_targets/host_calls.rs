//! Every host function a guest calls, with guest-controlled arguments, called directly on a
//! call's sandbox state (`plinth_host::fuzzing::GuestCalls`) against a model of what it must
//! do:
//!
//! - **kv** (`get`, `set`, `delete`, `list-keys`): keys that are empty, over 512 bytes or hold
//!   NUL are refused as `invalid-key`, values over 1 MiB as `value-too-large`, writes past the
//!   quota as `quota-exceeded` exactly when the model says so; what is read and listed is what
//!   the model holds (lists: in byte order, within the prefix, after the cursor, within the
//!   page); the namespace never holds more than its quota.
//! - **log**: whatever is logged, kept lines are escaped (no control characters) and within the
//!   per-line and per-call caps; every line is kept or counted as dropped.
//! - **events**: an emit succeeds exactly when its topic is declared, the depth, payload and
//!   count are within the limits, and the refusal names the first limit passed.
//! - **config**: declared keys read their value or default; others are `undeclared`.
//! - **outbound HTTP**: a request passes the pre-network checks only for `http(s)` to an
//!   allowlisted host and port, within the call's budget, and is then sent to exactly that host
//!   and port (its address is looked up and checked only when connecting: `egress`).
//!
//! No host function traps.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use arbitrary::Arbitrary;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use libfuzzer_sys::fuzz_target;
use plinth_fuzz::runtime::runtime;
use plinth_host::bindings::config::ConfigError;
use plinth_host::bindings::events::EmitError;
use plinth_host::bindings::kv::KvError;
use plinth_host::bindings::log::Level;
use plinth_host::capabilities::events::MAX_EVENT_DEPTH;
use plinth_host::capabilities::http::OutboundHttp;
use plinth_host::egress::CheckedResolver;
use plinth_host::fuzzing::{GuestCalls, KvGrant, outbound_request};
use plinth_host::kv::{KvQuota, KvStore, MAX_KEY_BYTES, MAX_PAGE, MAX_VALUE_BYTES, Namespace};
use plinth_host::limits::Limits;
use plinth_package::Manifest;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

const MANIFEST: &str = "[plugin]\nid = \"acme.fuzz\"\nversion = \"1.0.0\"\nname = \"Fuzz\"\n\
    description = \"Fuzz.\"\nlicense = \"MIT\"\napi = \"^0.1\"\n\
    [permissions]\nkv = { max-bytes = 1024 }\nconfig = true\n\
    http = { hosts = [\"example.com\", \"*.api.test:8443\", \"93.184.215.14\", \"[2606:2800::1]\"] }\n\
    events = { subscribe = [\"order.created\"], emit = [\"order.shipped\", \"a.b-c_d\"] }\n\
    [config.url]\ntype = \"string\"\n[config.retries]\ntype = \"integer\"\ndefault = 3\n";

/// Text a guest passes: as given, or long (to reach the size limits without long inputs).
#[derive(Debug, Arbitrary)]
enum Text {
    Given(String),
    Repeated(char, u16),
}

impl Text {
    fn text(&self) -> String {
        match self {
            Text::Given(s) => s.clone(),
            Text::Repeated(c, n) => std::iter::repeat_n(*c, usize::from(*n)).collect(),
        }
    }
}

/// Bytes a guest passes: as given, or `n` bytes (up to just over 2 MiB).
#[derive(Debug, Arbitrary)]
enum Payload {
    Given(Vec<u8>),
    Sized(u8, u32),
}

impl Payload {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Payload::Given(b) => b.clone(),
            Payload::Sized(byte, n) => {
                vec![*byte; (*n % (2 * MAX_VALUE_BYTES as u32 + 2)) as usize]
            }
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    KvGet(Text),
    KvSet(Text, Payload),
    KvDelete(Text),
    KvList(Text, Option<Text>, u32),
    Log(u8, Text, Vec<(Text, Text)>),
    Emit(Text, Payload),
    ConfigGet(String),
    Http(String),
}

#[derive(Debug, Arbitrary)]
struct Input {
    max_bytes: u16,
    max_keys: Option<u8>,
    max_log_lines: u8,
    max_log_line_bytes: u16,
    max_log_fields: u8,
    max_log_bytes: u16,
    max_events: u8,
    max_payload: u16,
    max_requests: u8,
    depth: u8,
    ops: Vec<Op>,
}

fn store() -> &'static KvStore {
    static STORE: OnceLock<(tempfile::TempDir, KvStore)> = OnceLock::new();
    let (_, store) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let url = format!("sqlite:{}", dir.path().join("kv.db").display());
        let store = runtime()
            .block_on(KvStore::connect(&url))
            .unwrap_or_else(|e| panic!("kv store: {e}"));
        (dir, store)
    });
    store
}

fn manifest() -> &'static Manifest {
    static MANIFEST_PARSED: OnceLock<Manifest> = OnceLock::new();
    MANIFEST_PARSED.get_or_init(|| Manifest::parse(MANIFEST).unwrap_or_else(|e| panic!("{e}")))
}

fn level(byte: u8) -> Level {
    [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
    ][usize::from(byte % 5)]
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_BYTES && !key.contains('\0')
}

fn valid_bound(text: &str) -> bool {
    text.len() <= MAX_KEY_BYTES && !text.contains('\0')
}

fn empty_request(uri: &http::Uri) -> Request<WasiBody> {
    let body = Empty::<Bytes>::new()
        .map_err(HttpError::from)
        .boxed_unsync();
    let mut request = Request::new(body);
    *request.uri_mut() = uri.clone();
    request
}

fuzz_target!(|input: Input| {
    static NAMESPACES: AtomicU64 = AtomicU64::new(0);
    let manifest = manifest();
    let limits = Limits {
        max_log_lines: u32::from(input.max_log_lines),
        max_log_line_bytes: u32::from(input.max_log_line_bytes),
        max_log_fields: u32::from(input.max_log_fields),
        max_log_bytes: u64::from(input.max_log_bytes),
        max_emitted_events: u32::from(input.max_events),
        max_event_payload_bytes: u64::from(input.max_payload),
        max_outbound_requests: u32::from(input.max_requests),
        ..Limits::default()
    };
    let namespace = Namespace::new(
        format!("fuzz-{}", NAMESPACES.fetch_add(1, Ordering::Relaxed)),
        "acme.fuzz",
    );
    let quota = KvQuota {
        max_bytes: u64::from(input.max_bytes),
        max_keys: input.max_keys.map(u64::from),
        tenant_max_bytes: None,
    };
    let grant = KvGrant {
        store: store().clone(),
        namespace: namespace.clone(),
        quota,
    };
    let config = BTreeMap::from([("url".to_owned(), "https://example.com/hook".to_owned())]);
    let depth = u32::from(input.depth % 12);
    let mut calls = GuestCalls::new(manifest, &limits, Some(grant), config, depth);
    let policy = OutboundHttp::new(
        std::sync::Arc::new(manifest.permissions.clone()),
        CheckedResolver::system(false),
        limits.max_outbound_requests,
    );

    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut emitted: Vec<(String, Vec<u8>)> = Vec::new();
    let mut logged = 0u32;
    let mut admitted = 0u32;
    runtime().block_on(async {
        for op in &input.ops {
            match op {
                Op::KvGet(key) => {
                    let key = key.text();
                    let got = calls
                        .kv_get(key.clone())
                        .await
                        .unwrap_or_else(|t| panic!("trap: {t}"));
                    match got {
                        Ok(value) => {
                            assert!(valid_key(&key));
                            assert_eq!(value.as_ref(), model.get(&key), "get {key:?}");
                        }
                        Err(KvError::InvalidKey(_)) => assert!(!valid_key(&key)),
                        Err(other) => panic!("get {key:?}: {other:?}"),
                    }
                }
                Op::KvSet(key, value) => {
                    let (key, value) = (key.text(), value.bytes());
                    let result = calls
                        .kv_set(key.clone(), value.clone())
                        .await
                        .unwrap_or_else(|t| panic!("trap: {t}"));
                    let used: u64 = model.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
                    let old = model.get(&key).map(|v| (key.len() + v.len()) as u64);
                    let bytes_after = used - old.unwrap_or(0) + (key.len() + value.len()) as u64;
                    let keys_after = model.len() as u64 + u64::from(old.is_none());
                    let over_bytes = bytes_after > quota.max_bytes && bytes_after > used;
                    let over_keys = quota
                        .max_keys
                        .is_some_and(|max| keys_after > max && keys_after > model.len() as u64);
                    match result {
                        Ok(()) => {
                            assert!(valid_key(&key) && value.len() <= MAX_VALUE_BYTES);
                            assert!(!over_bytes && !over_keys, "set past the quota");
                            model.insert(key, value);
                        }
                        Err(KvError::InvalidKey(_)) => assert!(!valid_key(&key)),
                        Err(KvError::ValueTooLarge(limit)) => {
                            assert!(valid_key(&key));
                            assert_eq!(limit, MAX_VALUE_BYTES as u64);
                            assert!(value.len() > MAX_VALUE_BYTES);
                        }
                        Err(KvError::QuotaExceeded(_)) => {
                            assert!(valid_key(&key) && value.len() <= MAX_VALUE_BYTES);
                            assert!(over_bytes || over_keys, "refused within the quota");
                        }
                        Err(other) => panic!("set {key:?}: {other:?}"),
                    }
                }
                Op::KvDelete(key) => {
                    let key = key.text();
                    let result = calls
                        .kv_delete(key.clone())
                        .await
                        .unwrap_or_else(|t| panic!("trap: {t}"));
                    match result {
                        Ok(existed) => assert_eq!(existed, model.remove(&key).is_some()),
                        Err(KvError::InvalidKey(_)) => assert!(!valid_key(&key)),
                        Err(other) => panic!("delete {key:?}: {other:?}"),
                    }
                }
                Op::KvList(prefix, cursor, limit) => {
                    let prefix = prefix.text();
                    let cursor = cursor.as_ref().map(Text::text);
                    let result = calls
                        .kv_list_keys(prefix.clone(), cursor.clone(), *limit)
                        .await
                        .unwrap_or_else(|t| panic!("trap: {t}"));
                    let valid = valid_bound(&prefix) && cursor.as_deref().is_none_or(valid_bound);
                    match result {
                        Ok(page) => {
                            assert!(valid);
                            let page_size = if *limit == 0 {
                                MAX_PAGE
                            } else {
                                (*limit).min(MAX_PAGE)
                            };
                            let expected: Vec<String> = model
                                .keys()
                                .filter(|k| k.starts_with(prefix.as_str()))
                                .filter(|k| cursor.as_ref().is_none_or(|c| k.as_str() > c.as_str()))
                                .take(page_size as usize + 1)
                                .cloned()
                                .collect();
                            let more = expected.len() > page_size as usize;
                            let expected = &expected[..expected.len().min(page_size as usize)];
                            assert_eq!(page.keys, expected, "list {prefix:?} after {cursor:?}");
                            assert_eq!(page.next_cursor.is_some(), more);
                        }
                        Err(KvError::InvalidKey(_)) => assert!(!valid),
                        Err(other) => panic!("list {prefix:?}: {other:?}"),
                    }
                }
                Op::Log(lvl, message, fields) => {
                    let fields = fields.iter().map(|(k, v)| (k.text(), v.text())).collect();
                    calls
                        .log(level(*lvl), message.text(), fields)
                        .await
                        .unwrap_or_else(|t| panic!("trap: {t}"));
                    logged += 1;
                }
                Op::Emit(topic, payload) => {
                    let (topic, payload) = (topic.text(), payload.bytes());
                    let result = calls
                        .emit(topic.clone(), payload.clone())
                        .await
                        .unwrap_or_else(|t| panic!("trap: {t}"));
                    let expected = if !manifest.permissions.may_emit(&topic) {
                        Err(EmitError::UndeclaredTopic(topic.clone()))
                    } else if depth + 1 > MAX_EVENT_DEPTH {
                        Err(EmitError::DepthExceeded(MAX_EVENT_DEPTH))
                    } else if payload.len() as u64 > limits.max_event_payload_bytes {
                        Err(EmitError::PayloadTooLarge(limits.max_event_payload_bytes))
                    } else if emitted.len() >= input.max_events as usize {
                        Err(EmitError::RateLimited)
                    } else {
                        Ok(())
                    };
                    assert_eq!(format!("{result:?}"), format!("{expected:?}"));
                    if result.is_ok() {
                        emitted.push((topic, payload));
                    }
                }
                Op::ConfigGet(key) => {
                    let result = calls
                        .config_get(key.clone())
                        .await
                        .unwrap_or_else(|t| panic!("trap: {t}"));
                    let expected = match key.as_str() {
                        "url" => Ok(Some("https://example.com/hook".to_owned())),
                        "retries" => Ok(Some("3".to_owned())),
                        _ => Err(ConfigError::Undeclared(key.clone())),
                    };
                    assert_eq!(format!("{result:?}"), format!("{expected:?}"));
                }
                Op::Http(uri) => {
                    let Ok(uri) = uri.parse::<http::Uri>() else {
                        continue;
                    };
                    let Ok(sent) = outbound_request(&policy, empty_request(&uri)) else {
                        continue;
                    };
                    admitted += 1;
                    assert!(admitted <= limits.max_outbound_requests, "past the budget");
                    let scheme = uri.scheme_str().unwrap_or_default();
                    assert!(scheme == "http" || scheme == "https", "sent {uri}");
                    let host = uri.host().unwrap_or_default().to_ascii_lowercase();
                    let port = uri
                        .port_u16()
                        .unwrap_or(if scheme == "http" { 80 } else { 443 });
                    assert!(manifest.permissions.allows_host(&host, port), "sent {uri}");
                    let sent_to = sent.uri().authority().map(|a| a.as_str().to_owned());
                    let expected = format!("{host}:{port}");
                    assert_eq!(sent_to.as_deref(), Some(expected.as_str()), "sent {uri}");
                }
            }
        }
        let _ = store().delete_namespace(&namespace).await;
    });

    let used: u64 = model.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
    assert!(used <= quota.max_bytes, "the namespace holds {used} bytes");
    let (lines, dropped, events) = calls.finish();
    assert_eq!(
        lines.len() as u32 + dropped,
        logged,
        "lines neither kept nor dropped"
    );
    assert!(lines.len() <= usize::from(input.max_log_lines));
    let mut kept = 0usize;
    for line in &lines {
        let size = line.message.len()
            + line
                .fields
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        assert!(
            size <= usize::from(input.max_log_line_bytes),
            "line of {size} bytes: {line:?}"
        );
        assert!(line.fields.len() <= usize::from(input.max_log_fields));
        let texts =
            std::iter::once(&line.message).chain(line.fields.iter().flat_map(|(k, v)| [k, v]));
        for text in texts {
            assert!(
                !text.chars().any(char::is_control),
                "unescaped control character: {text:?}"
            );
        }
        kept += size;
    }
    assert!(kept <= usize::from(input.max_log_bytes));
    let events: Vec<(String, Vec<u8>)> = events.into_iter().map(|e| (e.topic, e.payload)).collect();
    assert_eq!(events, emitted);
});
