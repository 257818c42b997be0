//! The web console over plain HTTP against `plinth serve`: forms without the CSRF token are
//! refused (before and after logging in), the session cookie is `HttpOnly` and
//! `SameSite=Strict`, pages carry a Content-Security-Policy that allows only this server, and
//! the console's pages need a session where the API would need a token; the log-in form is
//! throttled as the API's log-in is.

mod common {
    pub mod api;
    pub mod server;
}

use anyhow::{Context, Result, ensure};
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

use common::api::Api;
use common::server::PlinthServer;

/// The value of the hidden `csrf` field in `html`.
fn csrf_of(html: &str) -> Result<String> {
    let at = html
        .find("name=\"csrf\" value=\"")
        .context("no csrf field in the page")?;
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    Ok(rest[..rest.find('"').context("unterminated value")?].to_owned())
}

/// `name=value` of the `Set-Cookie` for `name` in `response`, and the whole header.
fn cookie_of(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            (
                v.split(';').next().unwrap_or_default().to_owned(),
                v.to_owned(),
            )
        })
}

/// Logs `email` in through the log-in form; returns the `Cookie` header to send.
async fn sign_in(client: &reqwest::Client, base: &str, email: &str) -> Result<String> {
    let page = client.get(format!("{base}/login")).send().await?;
    let (pre_session, _) = cookie_of(&page, "plinth_csrf").context("no csrf cookie")?;
    let token = csrf_of(&page.text().await?)?;
    let answer = client
        .post(format!("{base}/login"))
        .header(COOKIE, &pre_session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email={}&password=a+long+enough+password&csrf={token}",
            email.replace('@', "%40")
        ))
        .send()
        .await?;
    let (session, _) = cookie_of(&answer, "plinth_session").context("no session cookie")?;
    Ok(format!("{pre_session}; {session}"))
}

/// A `plinth serve` in a fresh data dir (kept until the first value is dropped), a client that
/// does not follow redirects, and the API through that client.
async fn start() -> Result<(tempfile::TempDir, PlinthServer, reqwest::Client, Api)> {
    let work = tempfile::tempdir()?;
    let server = PlinthServer::start(&work.path().join("data"), None)?;
    let client = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()?;
    let api = Api {
        base: server.base.clone(),
        client: client.clone(),
    };
    Ok((work, server, client, api))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_csrf_token_are_refused() -> Result<()> {
    let (_work, server, client, api) = start().await?;
    api.account("ada@example.com").await?;
    api.developer("dev@example.com", "examples").await?;
    let (_, admin) = api.account("admin@acme.example").await?;
    api.ok(
        reqwest::Method::POST,
        "/v1/tenants",
        Some(&admin),
        Some(serde_json::json!({"slug": "acme", "name": "Acme"})),
    )
    .await?;
    let base = &server.base;

    // The log-in page sets the pre-session cookie its form's token comes from.
    let page = client.get(format!("{base}/login")).send().await?;
    ensure!(page.status() == 200);
    let policy = page
        .headers()
        .get(CONTENT_SECURITY_POLICY)
        .context("no Content-Security-Policy")?
        .to_str()?
        .to_owned();
    ensure!(
        policy.contains("default-src 'none'") && policy.contains("script-src 'self'"),
        "{policy}"
    );
    let (pre_session, header) = cookie_of(&page, "plinth_csrf").context("no csrf cookie")?;
    ensure!(header.contains("HttpOnly") && header.contains("SameSite=Strict"));
    let token = csrf_of(&page.text().await?)?;
    let log_in = |body: String| {
        client
            .post(format!("{base}/login"))
            .header(COOKIE, &pre_session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let credentials = "email=ada%40example.com&password=a+long+enough+password";

    // Without the token, with another token, or without the cookie: 403, nobody logged in.
    let refused = log_in(credentials.to_owned()).await?;
    ensure!(refused.status() == 403, "no token: {}", refused.status());
    ensure!(cookie_of(&refused, "plinth_session").is_none());
    let refused = log_in(format!("{credentials}&csrf=0000")).await?;
    ensure!(refused.status() == 403, "wrong token: {}", refused.status());
    let refused = client
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("{credentials}&csrf={token}"))
        .send()
        .await?;
    ensure!(refused.status() == 403, "no cookie: {}", refused.status());

    // With it, a wrong password is a 401 page and the right one a session cookie.
    let wrong = log_in(format!(
        "email=ada%40example.com&password=nope&csrf={token}"
    ))
    .await?;
    ensure!(wrong.status() == 401, "wrong password: {}", wrong.status());
    let signed_in = log_in(format!("{credentials}&csrf={token}")).await?;
    ensure!(signed_in.status() == 303, "log in: {}", signed_in.status());
    let (session, header) = cookie_of(&signed_in, "plinth_session").context("no session cookie")?;
    ensure!(
        header.contains("HttpOnly")
            && header.contains("SameSite=Strict")
            && !header.contains("Secure"),
        "{header}"
    );
    let cookies = format!("{pre_session}; {session}");
    // Behind a TLS-terminating proxy the cookie is also `Secure`.
    let page = client
        .get(format!("{base}/login"))
        .header(COOKIE, &pre_session)
        .send()
        .await?;
    let behind_tls = client
        .post(format!("{base}/login"))
        .header(COOKIE, &pre_session)
        .header("x-forwarded-proto", "https")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "{credentials}&csrf={}",
            csrf_of(&page.text().await?)?
        ))
        .send()
        .await?;
    let (_, header) =
        cookie_of(&behind_tls, "plinth_session").context("no session cookie over TLS")?;
    ensure!(header.contains("; Secure"), "{header}");

    // Signed in, the token changes with the session; a form without it is refused.
    let tenants = client
        .get(format!("{base}/tenants"))
        .header(COOKIE, &cookies)
        .send()
        .await?;
    ensure!(tenants.status() == 200);
    let signed_in_token = csrf_of(&tenants.text().await?)?;
    ensure!(
        signed_in_token != token,
        "the token must follow the session"
    );
    let logout = |body: &'static str| {
        client
            .post(format!("{base}/logout"))
            .header(COOKIE, &cookies)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    ensure!(logout("").await?.status() == 403);
    ensure!(logout("csrf=abc").await?.status() == 403);
    // The pre-session token is not valid once logged in either.
    let stale = client
        .post(format!("{base}/logout"))
        .header(COOKIE, &cookies)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={token}"))
        .send()
        .await?;
    ensure!(stale.status() == 403, "stale token: {}", stale.status());
    // Uploads are forms too.
    let upload = client
        .post(format!("{base}/developer/submissions"))
        .header(COOKIE, &cookies)
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(
            "--XyZ\r\nContent-Disposition: form-data; name=\"package\"; filename=\"x.plinth\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nnot a package\r\n--XyZ--\r\n",
        )
        .send()
        .await?;
    ensure!(
        upload.status() == 403,
        "upload without token: {}",
        upload.status()
    );

    // Someone else's tenant is a 404 page, as in the API.
    let foreign = client
        .get(format!("{base}/tenants/acme"))
        .header(COOKIE, &cookies)
        .send()
        .await?;
    ensure!(
        foreign.status() == 404,
        "foreign tenant: {}",
        foreign.status()
    );

    // Logging out revokes the session: the cookie no longer opens pages.
    let out = client
        .post(format!("{base}/logout"))
        .header(COOKIE, &cookies)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={signed_in_token}"))
        .send()
        .await?;
    ensure!(out.status() == 303, "log out: {}", out.status());
    let after = client
        .get(format!("{base}/tenants"))
        .header(COOKIE, &cookies)
        .send()
        .await?;
    ensure!(
        after.status() == 303
            && after.headers().get(LOCATION).and_then(|v| v.to_str().ok()) == Some("/login"),
        "after log out: {}",
        after.status()
    );

    // The same authorisation as the API: reviewers' and operators' pages refuse others, and a
    // statement is for its publisher's members only.
    let dev = sign_in(&client, base, "dev@example.com").await?;
    for (path, status) in [
        ("/review", 403),
        ("/operator", 403),
        ("/developer/examples/statements/2026-01.csv", 200),
        ("/developer/examples/statements/2026-13.csv", 400),
    ] {
        let answer = client
            .get(format!("{base}{path}"))
            .header(COOKIE, &dev)
            .send()
            .await?;
        ensure!(answer.status() == status, "{path}: {}", answer.status());
        if status == 200 {
            ensure!(
                answer
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    == Some("text/csv; charset=utf-8")
            );
            ensure!(answer.text().await?.contains("currency"), "statement CSV");
        }
    }
    // A tenant's own admin is no operator: the plans page offers no move, and a forged plan
    // form is refused by the tenants service itself, the tenant left on its plan.
    let owner = sign_in(&client, base, "admin@acme.example").await?;
    let plans = client
        .get(format!("{base}/tenants/acme/plans"))
        .header(COOKIE, &owner)
        .send()
        .await?;
    ensure!(plans.status() == 200, "plans page: {}", plans.status());
    let plans = plans.text().await?;
    ensure!(
        !plans.contains("Move to"),
        "moves offered to a tenant admin"
    );
    let forged = client
        .post(format!("{base}/operator/tenants/acme/plan"))
        .header(COOKIE, &owner)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("plan=pro&csrf={}", csrf_of(&plans)?))
        .send()
        .await?;
    ensure!(
        forged.status() == 403,
        "forged plan form: {}",
        forged.status()
    );
    ensure!(
        forged
            .text()
            .await?
            .contains("only an operator may change a tenant"),
        "the service's refusal is shown"
    );
    let acme = api
        .ok(reqwest::Method::GET, "/v1/tenants/acme", Some(&admin), None)
        .await?;
    ensure!(acme["plan"] == "free", "plan changed: {acme}");

    let stranger = sign_in(&client, base, "ada@example.com").await?;
    let hidden = client
        .get(format!("{base}/developer/examples/statements/2026-01.csv"))
        .header(COOKIE, &stranger)
        .send()
        .await?;
    ensure!(
        hidden.status() == 404,
        "a stranger's statement: {}",
        hidden.status()
    );

    // Assets are served by plinth itself.
    let css = client
        .get(format!("{base}/assets/console.css"))
        .send()
        .await?;
    ensure!(css.status() == 200);
    ensure!(
        client
            .get(format!("{base}/assets/nope.js"))
            .send()
            .await?
            .status()
            == 404
    );
    server.stop()?;
    Ok(())
}

/// The console's log-in form is throttled as `POST /v1/tokens` is (one service): after an
/// account's burst of wrong passwords the form comes back with 429, `Retry-After` and the
/// reason, and the right password is refused too until the wait is over, with no session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_in_form_is_throttled() -> Result<()> {
    let (_work, server, client, api) = start().await?;
    api.account("ada@example.com").await?;
    let base = &server.base;
    let page = client.get(format!("{base}/login")).send().await?;
    let (pre_session, _) = cookie_of(&page, "plinth_csrf").context("no csrf cookie")?;
    let token = csrf_of(&page.text().await?)?;
    let log_in = |password: &str| {
        client
            .post(format!("{base}/login"))
            .header(COOKIE, &pre_session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "email=ada%40example.com&password={password}&csrf={token}"
            ))
            .send()
    };
    // The account's log-in above was the first of its 5 attempts.
    for n in 0..4 {
        let wrong = log_in(&format!("guess+{n}")).await?;
        ensure!(wrong.status() == 401, "guess {n}: {}", wrong.status());
    }
    let throttled = log_in("a+long+enough+password").await?;
    ensure!(throttled.status() == 429, "{}", throttled.status());
    ensure!(cookie_of(&throttled, "plinth_session").is_none());
    let wait: u64 = throttled
        .headers()
        .get("retry-after")
        .context("no Retry-After")?
        .to_str()?
        .parse()?;
    ensure!((1..=60).contains(&wait), "Retry-After {wait}");
    let html = throttled.text().await?;
    ensure!(
        html.contains("too many attempts for this account") && html.contains("name=\"password\""),
        "{html}"
    );
    server.stop()?;
    Ok(())
}

/// GET `path` with `cookies`: (status, body).
async fn page(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    cookies: Option<&str>,
) -> Result<(u16, String)> {
    let mut request = client.get(format!("{base}{path}"));
    if let Some(cookies) = cookies {
        request = request.header(COOKIE, cookies);
    }
    let response = request.send().await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// Posts the form `body` (URL-encoded, the CSRF token added) to `path` with `cookies`.
async fn post_form(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    cookies: &str,
    token: &str,
    body: &str,
) -> Result<reqwest::Response> {
    Ok(client
        .post(format!("{base}{path}"))
        .header(COOKIE, cookies)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("{body}&csrf={token}"))
        .send()
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_deprecations_and_private_plugins_in_the_console() -> Result<()> {
    use plinth_test_artifacts::HELLO;
    use reqwest::Method;
    use serde_json::json;

    let (work, server, client, api) = start().await?;
    let base = server.base.clone();
    let (ok, operator, stderr) = common::server::bootstrap(&work.path().join("data"), None)?;
    ensure!(ok, "bootstrap failed: {stderr}");
    let operator = operator.trim().to_owned();
    let (developer, key) = api.developer("dev@example.com", "examples").await?;
    let dir = work.path();
    let hello = common::api::signed_package(dir, &HELLO, &key)?;
    api.publish_and_approve(&hello, &developer, &operator)
        .await?;
    let (_, admin) = api.account("admin@acme.example").await?;
    api.tenant(&admin, "acme", None).await?;
    api.install(
        &admin,
        "acme",
        "examples.hello",
        None,
        json!({"update_policy": "minor"}),
    )
    .await?;

    // A rollout of 0.2.0: the developer pauses it from the portal.
    api.ok(
        Method::PUT,
        "/v1/plugins/examples.hello/versions/0.2.0/rollout",
        Some(&developer),
        Some(json!({"stages": [{"percent": 50, "soak_minutes": 60}, {"percent": 100}]})),
    )
    .await?;
    let next = common::api::versioned_package(dir, &HELLO, &key, "0.2.0", "")?;
    api.publish_and_approve(&next, &developer, &operator)
        .await?;
    let dev_cookies = sign_in(&client, &base, "dev@example.com").await?;
    let (status, portal) = page(&client, &base, "/developer", Some(&dev_cookies)).await?;
    ensure!(
        status == 200 && portal.contains("data-rollout=\"examples.hello 0.2.0\""),
        "{status}"
    );
    ensure!(portal.contains("active") && portal.contains("Halt and roll back"));
    let token = csrf_of(&portal)?;
    let paused = post_form(
        &client,
        &base,
        "/rollouts/examples.hello/0.2.0/pause",
        &dev_cookies,
        &token,
        "back=developer&reason=Checking+a+report",
    )
    .await?;
    ensure!(
        paused.status() == 303
            && paused.headers().get(LOCATION).and_then(|v| v.to_str().ok())
                == Some("/developer?done=rollout"),
        "pause: {}",
        paused.status()
    );
    let shown = api
        .ok(
            Method::GET,
            "/v1/plugins/examples.hello/versions/0.2.0/rollout",
            Some(&developer),
            None,
        )
        .await?;
    ensure!(
        shown["state"] == "paused" && shown["reason"] == "Checking a report",
        "{shown}"
    );
    // The portal schedules the next version's rollout through the same service.
    let scheduled = post_form(
        &client,
        &base,
        "/rollouts",
        &dev_cookies,
        &token,
        "back=developer&plugin=examples.hello&version=0.3.0&stages=10%3A30%2C+100",
    )
    .await?;
    ensure!(
        scheduled.status() == 303,
        "schedule: {}",
        scheduled.status()
    );
    let pending = api
        .ok(
            Method::GET,
            "/v1/plugins/examples.hello/versions/0.3.0/rollout",
            Some(&developer),
            None,
        )
        .await?;
    ensure!(
        pending["state"] == "pending"
            && pending["stages"][0] == json!({"percent": 10, "soak_minutes": 30}),
        "{pending}"
    );
    // A tenant admin is no steward: the same form is a 404 for them.
    let admin_cookies = sign_in(&client, &base, "admin@acme.example").await?;
    let (_, tenants_page) = page(&client, &base, "/tenants", Some(&admin_cookies)).await?;
    let admin_token = csrf_of(&tenants_page)?;
    let refused = post_form(
        &client,
        &base,
        "/rollouts/examples.hello/0.2.0/halt",
        &admin_cookies,
        &admin_token,
        "back=developer&reason=mine",
    )
    .await?;
    ensure!(
        refused.status() == 404,
        "halt by a tenant: {}",
        refused.status()
    );

    // A deprecation is a banner on the plugin's page.
    api.ok(
        Method::PUT,
        "/v1/plugins/examples.hello/deprecation",
        Some(&developer),
        Some(json!({"message": "Superseded by a better greeter."})),
    )
    .await?;
    let (status, detail) = page(&client, &base, "/plugins/examples.hello", None).await?;
    ensure!(
        status == 200
            && detail.contains("id=\"deprecation\"")
            && detail.contains("Superseded by a better greeter."),
        "{status}"
    );

    // A private plugin: its page and its card exist only for its audience.
    api.ok(
        Method::PUT,
        "/v1/plugins/examples.internal/audience",
        Some(&developer),
        Some(json!({"tenants": ["acme"]})),
    )
    .await?;
    let internal = common::api::renamed_package(dir, &HELLO, &key, "examples.internal")?;
    api.publish_and_approve(&internal, &developer, &operator)
        .await?;
    let (status, _) = page(&client, &base, "/plugins/examples.internal", None).await?;
    ensure!(
        status == 404,
        "a stranger sees the private plugin: {status}"
    );
    let (_, catalog) = page(&client, &base, "/catalog/results?q=hello", None).await?;
    ensure!(catalog.contains("examples.hello") && !catalog.contains("examples.internal"));
    let (status, mine) = page(
        &client,
        &base,
        "/plugins/examples.internal",
        Some(&admin_cookies),
    )
    .await?;
    ensure!(
        status == 200 && mine.contains("private to your organisation"),
        "{status}"
    );
    let (_, catalog) = page(
        &client,
        &base,
        "/catalog/results?q=hello",
        Some(&admin_cookies),
    )
    .await?;
    ensure!(catalog.contains("examples.internal"));
    Ok(())
}
