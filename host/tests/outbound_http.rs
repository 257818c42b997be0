//! Outbound HTTP policy: the allowlist, private addresses, DNS rebinding, TLS names, the request
//! budget, schemes and redirects, driven through the `WasiHttpHooks::send_request` hook the
//! sandbox installs, against local listeners that count every connection they accept and a
//! scripted resolver that counts every lookup.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::LOCATION;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use plinth_host::capabilities::http::{
    Denial, DenialReason, OutboundConfig, OutboundHttp, TenantRate,
};
use plinth_host::egress::{CheckedResolver, Lookup, LookupFuture, is_public_address};
use plinth_host::rates::window::{until_window_end, wall_clock_ms};
use plinth_host::rates::{MemoryLeases, SharedRates, TenantRates};
use plinth_package::{HttpPermission, Permissions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wasmtime_wasi_http::{Error as HttpError, WasiBody, WasiHttpHooks};

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

/// A local HTTP/1.1 server answering every request with one fixed response.
struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Binds `127.0.0.1:0` and serves `respond(its address)` to every request.
    async fn start(respond: impl FnOnce(SocketAddr) -> String) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let response = Arc::new(respond(addr));
        let accepted = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (accepted.clone(), heads.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (response, seen) = (response.clone(), seen.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Server {
            addr,
            accepted,
            heads,
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn permissions(hosts: &[&str]) -> Arc<Permissions> {
    Arc::new(Permissions {
        http: Some(HttpPermission {
            hosts: hosts.iter().map(|h| h.parse().unwrap()).collect(),
        }),
        ..Permissions::default()
    })
}

fn config(max_requests: u32) -> OutboundConfig {
    OutboundConfig {
        max_requests,
        ..OutboundConfig::default()
    }
}

/// The system's resolver, private destinations allowed (to reach the local listeners).
fn private_allowed() -> CheckedResolver {
    CheckedResolver::system(true)
}

fn get(uri: &str) -> Request<WasiBody> {
    let body = Empty::<Bytes>::new()
        .map_err(HttpError::from)
        .boxed_unsync();
    Request::get(uri).body(body).unwrap()
}

/// Sends `uri` through the hook as the `wasi:http` implementation would.
async fn send(hooks: &mut OutboundHttp, uri: &str) -> Result<Response<WasiBody>, HttpError> {
    let future = hooks.send_request(get(uri), None, Box::new(async { Ok(()) }));
    let (response, _io) = Pin::from(future).await?;
    Ok(response)
}

fn denial(host: &str, port: Option<u16>, reason: DenialReason) -> Denial {
    Denial {
        host: host.to_owned(),
        port,
        reason,
        retry_after: None,
    }
}

fn is_denied<T>(result: &Result<T, HttpError>) -> bool {
    matches!(result, Err(HttpError::HttpRequestDenied))
}

#[tokio::test]
async fn an_allowlisted_host_is_reached_and_its_status_comes_back() {
    let server = Server::start(|_| OK.to_owned()).await;
    let mut hooks = OutboundHttp::new(permissions(&["127.0.0.1"]), private_allowed(), 5);
    let denials = hooks.denials();

    let response = send(&mut hooks, &server.url("/hello")).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.accepted(), 1);
    let heads = server.heads.lock().unwrap().clone();
    assert!(heads[0].starts_with("GET /hello HTTP/1.1\r\n"), "{heads:?}");
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains(&format!("host: 127.0.0.1:{}", server.port())),
        "{heads:?}"
    );
    assert_eq!(hooks.requests_sent(), 1);
    assert!(denials.to_vec().is_empty());
}

#[tokio::test]
async fn a_host_off_the_allowlist_is_denied_before_any_lookup_or_connection() {
    let server = Server::start(|_| OK.to_owned()).await;
    let mut hooks = OutboundHttp::new(permissions(&["allowed.example.com"]), private_allowed(), 5);
    let denials = hooks.denials();

    // The refusal is decided and recorded inside the hook, before its future is ever polled,
    // so nothing can have been resolved or connected.
    let pending = hooks.send_request(
        get("http://evil.example.com/steal"),
        None,
        Box::new(async { Ok(()) }),
    );
    assert_eq!(
        denials.to_vec(),
        [denial(
            "evil.example.com",
            Some(80),
            DenialReason::NotAllowlisted
        )]
    );
    assert!(is_denied(&Pin::from(pending).await));

    // The listener's own address is not on the list either: it never sees a connection.
    let result = send(&mut hooks, &server.url("/")).await;
    assert!(is_denied(&result));
    assert_eq!(server.accepted(), 0);
    assert_eq!(
        denials.first(),
        Some(denial(
            "evil.example.com",
            Some(80),
            DenialReason::NotAllowlisted
        ))
    );
    assert_eq!(
        denials.to_vec()[1],
        denial(
            "127.0.0.1",
            Some(server.port()),
            DenialReason::NotAllowlisted
        )
    );
    assert_eq!(hooks.requests_sent(), 0);
    assert_eq!(
        denials.to_vec()[0].to_string(),
        "outbound request to evil.example.com:80 denied: the host is not on the plugin's allowlist"
    );
}

#[tokio::test]
async fn private_addresses_are_refused_even_when_allowlisted() {
    let server = Server::start(|_| OK.to_owned()).await;
    let port = server.port();
    let mut hooks = OutboundHttp::with_config(
        permissions(&[
            "127.0.0.1",
            "localhost",
            "[::1]",
            "[::ffff:127.0.0.1]",
            "169.254.169.254",
        ]),
        CheckedResolver::system(false),
        config(10),
    );
    let denials = hooks.denials();

    let targets = [
        (format!("http://127.0.0.1:{port}/"), "127.0.0.1"),
        // A name is resolved and refused when it leads to a private address.
        (format!("http://localhost:{port}/"), "localhost"),
        (format!("http://[::1]:{port}/"), "[::1]"),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/"),
            "[::ffff:127.0.0.1]",
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "169.254.169.254",
        ),
    ];
    for (uri, _) in &targets {
        assert!(is_denied(&send(&mut hooks, uri).await), "{uri}");
    }

    assert_eq!(server.accepted(), 0);
    assert_eq!(hooks.requests_sent(), 0);
    let expected: Vec<Denial> = targets
        .iter()
        .map(|(uri, host)| {
            let port = if uri.starts_with("http://169.254") {
                80
            } else {
                port
            };
            denial(host, Some(port), DenialReason::PrivateAddress)
        })
        .collect();
    assert_eq!(denials.to_vec(), expected);
}

/// A public address (the retired 6to4 relay anycast) that stands for "somewhere on the internet":
/// where it leads, if anywhere, does not matter; only that it is not the local listener.
const PUBLIC: &str = "192.88.99.1";

/// A resolver stand-in: its n-th lookup answers `answers[n]` (the last one from then on),
/// whatever the name, and it records every name it is asked.
#[derive(Debug)]
struct Scripted {
    answers: Vec<Vec<IpAddr>>,
    asked: Mutex<Vec<String>>,
}

impl Scripted {
    fn new(answers: &[&[&str]]) -> Arc<Scripted> {
        Arc::new(Scripted {
            answers: answers
                .iter()
                .map(|answer| answer.iter().map(|ip| ip.parse().unwrap()).collect())
                .collect(),
            asked: Mutex::new(Vec::new()),
        })
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Lookup for Scripted {
    fn lookup(&self, host: &str) -> LookupFuture {
        let mut asked = self.asked.lock().unwrap();
        asked.push(host.to_owned());
        let answer = self.answers[(asked.len() - 1).min(self.answers.len() - 1)].clone();
        Box::pin(std::future::ready(Ok(answer)))
    }
}

/// Timeouts short enough that a request to [`PUBLIC`] gives up quickly wherever it leads.
fn quick(max_requests: u32) -> OutboundConfig {
    OutboundConfig {
        max_requests,
        connect_timeout: std::time::Duration::from_secs(1),
        first_byte_timeout: std::time::Duration::from_secs(1),
        between_bytes_timeout: std::time::Duration::from_secs(1),
    }
}

#[tokio::test]
async fn a_name_that_rebinds_to_loopback_after_its_check_never_reaches_loopback() {
    assert!(is_public_address(PUBLIC.parse().unwrap()));
    let server = Server::start(|_| OK.to_owned()).await;
    let port = server.port();
    for scheme in ["http", "https"] {
        // The name answers a public address first and loopback from then on: a host that
        // looked it up to check it and again to connect would reach the listener.
        let lookup = Scripted::new(&[&[PUBLIC], &["127.0.0.1"]]);
        let resolver = CheckedResolver::with_lookup(lookup.clone(), false);
        let mut hooks =
            OutboundHttp::with_config(permissions(&["rebind.test"]), resolver, quick(5));
        let denials = hooks.denials();
        let url = format!("{scheme}://rebind.test:{port}/");

        // Checked once, connected to what was checked: wherever that leads, not to loopback.
        let _ = send(&mut hooks, &url).await;
        assert_eq!(lookup.asked(), ["rebind.test"], "{scheme}: one lookup");
        assert_eq!(server.accepted(), 0, "{scheme}: loopback reached");
        assert_eq!(hooks.requests_sent(), 1, "{scheme}");
        assert!(denials.is_empty(), "{scheme}: {:?}", denials.to_vec());

        // The next request looks the name up again, sees loopback and is refused.
        assert!(is_denied(&send(&mut hooks, &url).await), "{scheme}");
        assert_eq!(lookup.asked().len(), 2, "{scheme}");
        assert_eq!(server.accepted(), 0, "{scheme}: loopback reached");
        assert_eq!(hooks.requests_sent(), 1, "{scheme}");
        assert_eq!(
            denials.to_vec(),
            [denial(
                "rebind.test",
                Some(port),
                DenialReason::PrivateAddress
            )],
            "{scheme}"
        );
    }
}

#[tokio::test]
async fn a_name_with_a_private_address_among_its_answers_is_refused_before_connecting() {
    let server = Server::start(|_| OK.to_owned()).await;
    let port = server.port();
    let lookup = Scripted::new(&[&[PUBLIC, "127.0.0.1"]]);
    let resolver = CheckedResolver::with_lookup(lookup.clone(), false);
    let mut hooks = OutboundHttp::with_config(permissions(&["mixed.test"]), resolver, quick(5));
    let denials = hooks.denials();

    let result = send(&mut hooks, &format!("https://mixed.test:{port}/")).await;

    assert!(is_denied(&result));
    assert_eq!(lookup.asked(), ["mixed.test"]);
    assert_eq!(server.accepted(), 0);
    assert_eq!(hooks.requests_sent(), 0);
    assert_eq!(
        denials.to_vec(),
        [denial(
            "mixed.test",
            Some(port),
            DenialReason::PrivateAddress
        )]
    );
}

#[tokio::test]
async fn plain_http_goes_to_the_looked_up_address_with_the_requested_name_as_host() {
    let server = Server::start(|_| OK.to_owned()).await;
    let port = server.port();
    // `api.example.test` exists only in this lookup: reaching the listener proves the
    // connection went to the address it answered.
    let lookup = Scripted::new(&[&["127.0.0.1"]]);
    let resolver = CheckedResolver::with_lookup(lookup.clone(), true);
    let mut hooks = OutboundHttp::new(permissions(&["api.example.test"]), resolver, 5);

    let url = format!("http://api.example.test:{port}/hello");
    let response = send(&mut hooks, &url).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(lookup.asked(), ["api.example.test"]);
    assert_eq!(server.accepted(), 1);
    let head = server.heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.starts_with("get /hello http/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("host: api.example.test:{port}\r\n")),
        "{head}"
    );
}

#[tokio::test]
async fn https_goes_to_the_looked_up_address_with_the_requested_name_in_sni() {
    // A listener that keeps the first bytes a client sends (a TLS ClientHello) and hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (hello_sent, hello) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).await.unwrap_or(0);
        buf.truncate(n);
        let _ = hello_sent.send(buf);
    });
    let lookup = Scripted::new(&[&["127.0.0.1"]]);
    let resolver = CheckedResolver::with_lookup(lookup.clone(), true);
    let mut hooks =
        OutboundHttp::with_config(permissions(&["api.example.test"]), resolver, quick(5));

    let result = send(&mut hooks, &format!("https://api.example.test:{port}/")).await;

    // No certificate for the name came back, so there is no response.
    assert!(result.is_err());
    assert_eq!(lookup.asked(), ["api.example.test"]);
    let hello = hello.await.unwrap();
    assert_eq!(hello.first(), Some(&0x16), "a TLS handshake record");
    assert!(
        hello.windows(16).any(|w| w == b"api.example.test"),
        "the ClientHello names the host (SNI)"
    );
}

#[tokio::test]
async fn the_request_budget_is_enforced_and_refusals_do_not_spend_it() {
    let server = Server::start(|_| OK.to_owned()).await;
    let hooks =
        OutboundHttp::with_config(permissions(&["127.0.0.1"]), private_allowed(), config(2));
    let denials = hooks.denials();
    // The sandbox boxes a clone into the store: clones share the budget and the record.
    let mut in_store = hooks.clone();

    let off_list = format!("http://localhost:{}/", server.port());
    assert!(is_denied(&send(&mut in_store, &off_list).await));
    for _ in 0..2 {
        let response = send(&mut in_store, &server.url("/")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert!(is_denied(&send(&mut in_store, &server.url("/")).await));

    assert_eq!(server.accepted(), 2);
    assert_eq!(hooks.requests_sent(), 2);
    assert_eq!(
        denials.to_vec(),
        [
            denial(
                "localhost",
                Some(server.port()),
                DenialReason::NotAllowlisted
            ),
            denial(
                "127.0.0.1",
                Some(server.port()),
                DenialReason::TooManyRequests
            ),
        ]
    );
    assert_eq!(denials.total(), 2);
}

#[tokio::test]
async fn the_tenant_rate_is_shared_by_all_of_a_tenants_calls_and_no_other() {
    let server = Server::start(|_| OK.to_owned()).await;
    let rates = Arc::new(TenantRates::new());
    let call_of = |tenant: &str| {
        OutboundHttp::with_config(permissions(&["127.0.0.1"]), private_allowed(), config(10))
            .with_tenant_rate(TenantRate {
                rates: Arc::clone(&rates),
                tenant: tenant.to_owned(),
                per_minute: 2,
            })
    };
    // Two calls of tenant a (two installs, say) share its two requests a minute.
    let (mut first, mut second) = (call_of("a"), call_of("a"));
    send(&mut first, &server.url("/")).await.unwrap();
    send(&mut second, &server.url("/")).await.unwrap();
    let refused = second.denials();
    assert!(is_denied(&send(&mut second, &server.url("/")).await));
    let denial = refused.first().unwrap();
    assert_eq!(denial.reason, DenialReason::TenantRate);
    let wait = denial.retry_after.unwrap();
    assert!(wait > std::time::Duration::ZERO && wait <= std::time::Duration::from_secs(30));
    // The refused request spent neither the call's budget nor a connection.
    assert_eq!(second.requests_sent(), 1);
    assert_eq!(server.accepted(), 2);
    // Tenant b has its own bucket.
    let mut other = call_of("b");
    send(&mut other, &server.url("/")).await.unwrap();
    assert_eq!(server.accepted(), 3);
}

#[tokio::test]
async fn the_tenant_rate_holds_across_hosts_sharing_a_lease_store() {
    let server = Server::start(|_| OK.to_owned()).await;
    // Three processes' rates, leasing from one store (the database, in a deployment).
    let store = Arc::new(MemoryLeases::new());
    let hosts: Vec<_> = (0..3)
        .map(|_| Arc::new(TenantRates::with_shared(SharedRates::new(store.clone()))))
        .collect();
    // In one minute window (each host's bucket alone would let 40 through, 120 together).
    let now = wall_clock_ms();
    if until_window_end(now) < 10_000 {
        tokio::time::sleep(std::time::Duration::from_millis(
            until_window_end(now).unsigned_abs() + 10,
        ))
        .await;
    }
    let mut calls: Vec<_> = hosts
        .iter()
        .map(|rates| {
            OutboundHttp::with_config(permissions(&["127.0.0.1"]), private_allowed(), config(100))
                .with_tenant_rate(TenantRate {
                    rates: Arc::clone(rates),
                    tenant: "a".to_owned(),
                    per_minute: 40,
                })
        })
        .collect();
    let mut sent = 0;
    for i in 0..120 {
        if send(&mut calls[i % 3], &server.url("/")).await.is_ok() {
            sent += 1;
        }
    }
    assert_eq!(sent, 40);
    assert_eq!(server.accepted(), 40);
    let refused = calls[0].denials();
    let denial = refused.first().unwrap();
    assert_eq!(denial.reason, DenialReason::TenantRate);
    assert!(denial.retry_after.unwrap() <= std::time::Duration::from_secs(60));
    // A request refused by the shared rate gave its bucket token and call budget back.
    assert_eq!(
        hosts[0].try_take("a", 40, std::time::Instant::now()),
        Ok(())
    );
    let requests: u32 = calls.iter().map(OutboundHttp::requests_sent).sum();
    assert_eq!(requests, 40);
}

#[tokio::test]
async fn schemes_other_than_http_and_https_are_refused() {
    let server = Server::start(|_| OK.to_owned()).await;
    let mut hooks = OutboundHttp::new(permissions(&["127.0.0.1"]), private_allowed(), 5);
    let denials = hooks.denials();

    // The hook lets every scheme through to `send_request`, so the refusal is recorded there.
    assert!(hooks.is_supported_scheme(&"ftp".parse().unwrap()));
    let with_port = format!("ftp://127.0.0.1:{}/file", server.port());
    assert!(is_denied(&send(&mut hooks, &with_port).await));
    assert!(is_denied(&send(&mut hooks, "gopher://127.0.0.1/").await));

    assert_eq!(server.accepted(), 0);
    assert_eq!(hooks.requests_sent(), 0);
    assert_eq!(
        denials.to_vec(),
        [
            denial("127.0.0.1", Some(server.port()), DenialReason::Scheme),
            denial("127.0.0.1", None, DenialReason::Scheme),
        ]
    );
}

#[tokio::test]
async fn a_redirect_to_a_host_off_the_allowlist_is_denied_when_followed() {
    let server = Server::start(|addr| {
        format!(
            "HTTP/1.1 302 Found\r\nlocation: http://localhost:{}/next\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            addr.port()
        )
    })
    .await;
    let mut hooks = OutboundHttp::new(permissions(&["127.0.0.1"]), private_allowed(), 5);
    let denials = hooks.denials();

    // wasi:http hands the 302 to the guest instead of following it …
    let response = send(&mut hooks, &server.url("/start")).await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();

    // … and the guest's follow-up is a new request through the same hook. `localhost` is the
    // same listener, so a connection would be counted.
    assert!(is_denied(&send(&mut hooks, &location).await));

    assert_eq!(server.accepted(), 1);
    assert_eq!(hooks.requests_sent(), 1);
    assert_eq!(
        denials.to_vec(),
        [denial(
            "localhost",
            Some(server.port()),
            DenialReason::NotAllowlisted
        )]
    );
}

#[tokio::test]
async fn a_guest_looping_on_refused_requests_cannot_grow_the_log() {
    let mut hooks = OutboundHttp::new(permissions(&["allowed.example.com"]), private_allowed(), 5);
    let denials = hooks.denials();
    let attempts = plinth_host::capabilities::http::MAX_RECORDED_DENIALS + 10;
    for _ in 0..attempts {
        assert!(is_denied(
            &send(&mut hooks, "http://evil.example.com/").await
        ));
    }
    assert_eq!(
        denials.to_vec().len(),
        plinth_host::capabilities::http::MAX_RECORDED_DENIALS
    );
    assert_eq!(denials.total() as usize, attempts);
}

#[test]
fn public_and_non_public_addresses_are_told_apart() {
    let public = [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.215.14",
        "172.15.255.255",
        "172.32.0.1",
        "100.63.255.255",
        "100.128.0.1",
        "169.253.0.1",
        "192.169.0.1",
        "2606:4700:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ];
    let not_public = [
        // IPv4: unspecified, "this network", loopback
        "0.0.0.0",
        "0.1.2.3",
        "127.0.0.1",
        "127.255.255.254",
        // RFC 1918
        "10.0.0.1",
        "10.255.255.255",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.0.1",
        "192.168.255.255",
        // link-local, including cloud metadata
        "169.254.0.1",
        "169.254.169.254",
        // CGNAT
        "100.64.0.1",
        "100.127.255.255",
        // multicast, reserved, broadcast
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        // documentation, benchmarking
        "192.0.2.1",
        "198.18.0.1",
        // IPv6: unspecified, loopback, unique local, link-local, multicast
        "::",
        "::1",
        "fc00::1",
        "fd12:3456:789a::1",
        "fe80::1",
        "febf::1",
        "ff02::1",
        "2001:db8::1",
        // IPv4-mapped, -compatible, NAT64 and 6to4 forms of private addresses
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:192.168.1.1",
        "::ffff:0.0.0.0",
        "::127.0.0.1",
        "64:ff9b::a00:1",
        "2002:7f00:1::1",
    ];
    for ip in public {
        assert!(is_public_address(ip.parse::<IpAddr>().unwrap()), "{ip}");
    }
    for ip in not_public {
        assert!(!is_public_address(ip.parse::<IpAddr>().unwrap()), "{ip}");
    }
}
