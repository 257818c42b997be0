//! The web console over plain HTTP against `plinth serve`: forms without the CSRF token are
//! refused (before and after logging in), the session cookie is `HttpOnly` and
//! `SameSite=Strict`, pages carry a Content-Security-Policy that allows only this server, and
//! the console's pages need a session where the API would need a token; the log-in form is
//! throttled as the API's log-in is. The billing pages act through the billing services: an
//! operator's coupons and suspensions (which the events API obeys), and a tenant's plans,
//! pricing calculator and subscription on a server that bills through no processor.

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

/// The markup of the element with id `id` in `html`: from its `id` attribute to the first `end`
/// (a closing tag such as `</tr>`) after it.
fn element<'a>(html: &'a str, id: &str, end: &str) -> Result<&'a str> {
    let at = html
        .find(&format!("id=\"{id}\""))
        .with_context(|| format!("no #{id} in the page"))?;
    let rest = &html[at..];
    let to = rest
        .find(end)
        .with_context(|| format!("#{id} has no {end} after it"))?;
    Ok(&rest[..to])
}

/// The text of the element with id `id` in `html`, up to its first child or its end (as the
/// page escapes it).
fn text_of<'a>(html: &'a str, id: &str) -> Result<&'a str> {
    let tag = element(html, id, "<")?;
    let start = tag
        .find('>')
        .with_context(|| format!("#{id}'s tag is not closed"))?;
    Ok(&tag[start + 1..])
}

/// Whether `html` has an element with id `id`.
fn has_id(html: &str, id: &str) -> bool {
    html.contains(&format!("id=\"{id}\""))
}

/// Sends the event `greet` ("Ada") to tenant `acme` with its API key: (status, answer).
async fn greet(api: &Api, key: &str) -> Result<(u16, serde_json::Value)> {
    api.send(
        reqwest::Method::POST,
        "/v1/tenants/acme/events",
        Some(key),
        Some(serde_json::json!({"topic": "greet", "payload": "Ada"})),
    )
    .await
}

/// The operator's pages: `/operator/coupons` lists, creates (a field the service refuses is
/// named on the page, the form kept as typed) and deactivates coupons; the suspension page
/// suspends a tenant, after which its events answer 402 `payment_required` and its
/// subscription page says so, until the suspension is lifted. A tenant's owner gets from these
/// pages, and from their forms, what `/operator` answers them: 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_pages_create_and_deactivate_coupons_and_suspend_tenants() -> Result<()> {
    use plinth_test_artifacts::HELLO;
    use reqwest::Method;

    let (work, server, client, api) = start().await?;
    let base = server.base.clone();
    let (ok, operator, stderr) = common::server::bootstrap_with_password(
        &work.path().join("data"),
        None,
        Some("a long enough password"),
    )?;
    ensure!(ok, "bootstrap failed: {stderr}");
    // Tenant acme runs hello, called with its API key.
    let (developer, key) = api.developer("dev@example.com", "examples").await?;
    let hello = common::api::signed_package(work.path(), &HELLO, &key)?;
    api.publish_and_approve(&hello, &developer, &operator)
        .await?;
    let (_, admin) = api.account("admin@acme.example").await?;
    api.tenant(&admin, "acme", None).await?;
    api.install(
        &admin,
        "acme",
        "examples.hello",
        None,
        serde_json::json!({}),
    )
    .await?;
    let tenant_key = api.api_key(&admin, "acme").await?;
    let (status, answer) = greet(&api, &tenant_key).await?;
    ensure!(
        status == 200 && answer["results"][0]["output"] == "Hello, Ada!",
        "before any suspension: {status} {answer}"
    );

    // The operator page links to the coupons and to each tenant's suspension.
    let op = sign_in(&client, &base, "operator@plinth.local").await?;
    let (status, dashboard) = page(&client, &base, "/operator", Some(&op)).await?;
    ensure!(status == 200, "operator page: {status}");
    ensure!(
        dashboard.contains("href=\"/operator/coupons\"")
            && dashboard.contains("href=\"/operator/tenants/acme/suspension\""),
        "the operator page does not link to the billing pages"
    );

    // No coupons yet.
    let (status, coupons) = page(&client, &base, "/operator/coupons", Some(&op)).await?;
    ensure!(status == 200, "coupons page: {status}");
    ensure!(
        coupons.contains("No coupons yet.") && !has_id(&coupons, "coupons"),
        "a coupon is listed before any was made"
    );
    ensure!(has_id(&coupons, "new-coupon"), "no form to create a coupon");
    let token = csrf_of(&coupons)?;

    // Created: listed with what it gives, offered, with a button to deactivate it.
    let created = post_form(
        &client,
        &base,
        "/operator/coupons",
        &op,
        &token,
        "code=SPRING10&percent_off=10&duration=once",
    )
    .await?;
    ensure!(created.status() == 200, "create: {}", created.status());
    let created = created.text().await?;
    ensure!(
        created.contains("Coupon SPRING10 is created: 10% off the plan on the next invoice."),
        "no notice of the new coupon"
    );
    let (_, listed) = page(&client, &base, "/operator/coupons", Some(&op)).await?;
    ensure!(
        !listed.contains("No coupons yet."),
        "the list is still empty"
    );
    let row = element(&listed, "coupon-SPRING10", "</tr>")?;
    ensure!(
        row.contains("<td data-label=\"Gives\">10% off the plan on the next invoice</td>")
            && row.contains("<td data-label=\"Expires\">never</td>")
            && row.contains("action=\"/operator/coupons/SPRING10/deactivate\""),
        "{row}"
    );
    let all = api
        .ok(Method::GET, "/v1/billing/coupons", Some(&operator), None)
        .await?;
    ensure!(
        all["items"].as_array().map(Vec::len) == Some(1)
            && all["items"][0]["code"] == "SPRING10"
            && all["items"][0]["percent_off"] == 10
            && all["items"][0]["duration"] == "once"
            && all["items"][0]["active"] == true,
        "{all}"
    );

    // 0 percent off: the service's refusal names the field; the form keeps what was typed and
    // nothing is created.
    let refused = post_form(
        &client,
        &base,
        "/operator/coupons",
        &op,
        &token,
        "code=NOTHING&percent_off=0&duration=once",
    )
    .await?;
    ensure!(
        refused.status() == 400,
        "0 percent off: {}",
        refused.status()
    );
    let refused = refused.text().await?;
    ensure!(
        refused.contains("field `percent_off` must be from 1 to 100"),
        "the refusal does not name the field"
    );
    ensure!(
        refused.contains("value=\"NOTHING\"")
            && !has_id(&refused, "coupon-NOTHING")
            && has_id(&refused, "coupon-SPRING10"),
        "the form was not kept, or the refused coupon is listed"
    );
    let all = api
        .ok(Method::GET, "/v1/billing/coupons", Some(&operator), None)
        .await?;
    ensure!(all["items"].as_array().map(Vec::len) == Some(1), "{all}");

    // Deactivated: still listed, no longer offered, no button.
    let deactivated = post_form(
        &client,
        &base,
        "/operator/coupons/SPRING10/deactivate",
        &op,
        &token,
        "",
    )
    .await?;
    ensure!(
        deactivated.status() == 200,
        "deactivate: {}",
        deactivated.status()
    );
    let deactivated = deactivated.text().await?;
    ensure!(
        deactivated.contains("Coupon SPRING10 is no longer offered."),
        "no notice of the deactivation"
    );
    let row = element(&deactivated, "coupon-SPRING10", "</tr>")?;
    ensure!(
        row.contains("<td data-label=\"Offered\">no</td>") && !row.contains("Deactivate"),
        "{row}"
    );
    let all = api
        .ok(Method::GET, "/v1/billing/coupons", Some(&operator), None)
        .await?;
    ensure!(all["items"][0]["active"] == false, "{all}");

    // A tenant's owner is no operator: these pages answer what `/operator` does, and their
    // forms are refused by the services (nothing created, nothing suspended).
    let owner = sign_in(&client, &base, "admin@acme.example").await?;
    let (refused_operator, _) = page(&client, &base, "/operator", Some(&owner)).await?;
    ensure!(refused_operator == 403, "/operator: {refused_operator}");
    for path in ["/operator/coupons", "/operator/tenants/acme/suspension"] {
        let (status, html) = page(&client, &base, path, Some(&owner)).await?;
        ensure!(
            status == refused_operator && html.contains("this needs the operator role"),
            "{path} for a tenant owner: {status}"
        );
    }
    let (_, tenants_page) = page(&client, &base, "/tenants", Some(&owner)).await?;
    let owner_token = csrf_of(&tenants_page)?;
    for (path, body) in [
        (
            "/operator/coupons",
            "code=MINE&percent_off=100&duration=forever",
        ),
        ("/operator/tenants/acme/suspension", "reason=mine"),
        ("/operator/coupons/SPRING10/deactivate", ""),
    ] {
        let forged = post_form(&client, &base, path, &owner, &owner_token, body).await?;
        ensure!(
            forged.status() == 403,
            "{path} posted by a tenant owner: {}",
            forged.status()
        );
    }
    let all = api
        .ok(Method::GET, "/v1/billing/coupons", Some(&operator), None)
        .await?;
    ensure!(all["items"].as_array().map(Vec::len) == Some(1), "{all}");
    let (status, _) = greet(&api, &tenant_key).await?;
    ensure!(
        status == 200,
        "events after the owner's forged suspension: {status}"
    );

    // The suspension page: not suspended. A blank reason is refused on the page.
    let suspension = "/operator/tenants/acme/suspension";
    let (status, shown) = page(&client, &base, suspension, Some(&op)).await?;
    ensure!(status == 200, "suspension page: {status}");
    ensure!(
        text_of(&shown, "suspension-status")? == "Not suspended: its plugins run."
            && has_id(&shown, "suspend")
            && !has_id(&shown, "unsuspend"),
        "before: {:?}",
        text_of(&shown, "suspension-status")
    );
    let blank = post_form(&client, &base, suspension, &op, &token, "reason=+").await?;
    ensure!(blank.status() == 400, "blank reason: {}", blank.status());
    ensure!(
        blank
            .text()
            .await?
            .contains("field `reason` must be 1 to 500 bytes"),
        "the blank reason's refusal is not shown"
    );
    let (status, _) = greet(&api, &tenant_key).await?;
    ensure!(status == 200, "events after a refused suspension: {status}");

    // Suspended: the page says so and offers the lift; events are refused with 402.
    let suspended = post_form(
        &client,
        &base,
        suspension,
        &op,
        &token,
        "reason=Unpaid+invoices+since+March",
    )
    .await?;
    ensure!(suspended.status() == 200, "suspend: {}", suspended.status());
    let suspended = suspended.text().await?;
    ensure!(
        suspended.contains("acme is suspended; its plugins do not run until you lift it."),
        "no notice of the suspension"
    );
    let said = text_of(&suspended, "suspension-status")?;
    ensure!(
        said.starts_with("Suspended (operator): ") && said.contains("is suspended by an operator"),
        "{said}"
    );
    ensure!(
        has_id(&suspended, "unsuspend") && !has_id(&suspended, "suspend"),
        "the page does not offer to lift the suspension"
    );
    let (status, answer) = greet(&api, &tenant_key).await?;
    ensure!(
        status == 402 && answer["error"]["code"] == "payment_required",
        "events of a suspended tenant: {status} {answer}"
    );
    ensure!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("suspended by an operator")),
        "{answer}"
    );
    // Suspending it again is refused on the page.
    let again = post_form(&client, &base, suspension, &op, &token, "reason=Twice").await?;
    ensure!(again.status() == 409, "suspend twice: {}", again.status());
    ensure!(
        again.text().await?.contains("is suspended already"),
        "the second suspension's refusal is not shown"
    );

    // The tenant's subscription page shows the suspension.
    let (status, billing) = page(&client, &base, "/tenants/acme/billing", Some(&owner)).await?;
    ensure!(status == 200, "billing page: {status}");
    let banner = element(&billing, "suspension", "</div>")?;
    ensure!(
        banner.contains("This tenant is suspended.")
            && banner.contains("is suspended by an operator"),
        "{banner}"
    );

    // Lifted: events run again, and the banner is gone.
    let lifted = post_form(
        &client,
        &base,
        "/operator/tenants/acme/suspension/lift",
        &op,
        &token,
        "",
    )
    .await?;
    ensure!(lifted.status() == 200, "lift: {}", lifted.status());
    let lifted = lifted.text().await?;
    ensure!(
        lifted.contains("suspension is lifted; its plugins run again."),
        "no notice of the lift"
    );
    ensure!(
        text_of(&lifted, "suspension-status")? == "Not suspended: its plugins run.",
        "after the lift: {:?}",
        text_of(&lifted, "suspension-status")
    );
    let (status, answer) = greet(&api, &tenant_key).await?;
    ensure!(
        status == 200 && answer["results"][0]["output"] == "Hello, Ada!",
        "events after the lift: {status} {answer}"
    );
    let (_, billing) = page(&client, &base, "/tenants/acme/billing", Some(&owner)).await?;
    ensure!(
        !has_id(&billing, "suspension"),
        "the banner outlived the suspension"
    );
    server.stop()?;
    Ok(())
}

/// A tenant owner's plans page: every plan's price and the calculator, whose estimate and
/// refusal are shown on the page; the subscription page of a free tenant; and an upgrade to a
/// paid plan on a server without a payment processor, refused on the plans page with the
/// service's reason, the tenant left on its plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plans_page_prices_plans_and_the_calculator_estimates() -> Result<()> {
    use reqwest::Method;

    let (_work, server, client, api) = start().await?;
    let base = server.base.clone();
    let (_, admin) = api.account("admin@acme.example").await?;
    api.tenant(&admin, "acme", None).await?;
    let owner = sign_in(&client, &base, "admin@acme.example").await?;

    // Each plan's price, the choices an admin has, and the calculator (not yet asked).
    let (status, plans) = page(&client, &base, "/tenants/acme/plans", Some(&owner)).await?;
    ensure!(status == 200, "plans page: {status}");
    let prices = element(&plans, "plan-prices", "</tr>")?;
    for price in [
        "<td>free</td>",
        "<td>29.00 USD a month</td>",
        "<td>499.00 USD a month</td>",
    ] {
        ensure!(prices.contains(price), "no {price} in {prices}");
    }
    ensure!(
        element(&plans, "plan-card-pro", "</li>")?.contains("29.00 USD a month"),
        "the pro card has no price"
    );
    ensure!(
        has_id(&plans, "plan-pro-upgrade") && !has_id(&plans, "plan-free-upgrade"),
        "the upgrade choices are wrong"
    );
    let calculator = element(&plans, "calculator", "</form>")?;
    ensure!(
        calculator.contains("name=\"calc_plan\"")
            && calculator.contains("name=\"calc_invocations\"")
            && calculator.contains("action=\"/tenants/acme/plans\""),
        "{calculator}"
    );
    ensure!(
        !has_id(&plans, "calculator-result") && !has_id(&plans, "calculator-error"),
        "the calculator answered before it was asked"
    );
    let token = csrf_of(&plans)?;

    // The calculator's estimate for pro at 1000 invocations: the plan's price.
    let (status, estimated) = page(
        &client,
        &base,
        "/tenants/acme/plans?calc_plan=pro&calc_invocations=1000",
        Some(&owner),
    )
    .await?;
    ensure!(status == 200, "estimate: {status}");
    let result = element(&estimated, "calculator-result", "</table>")?;
    ensure!(
        result.contains("<td>pro plan</td>")
            && result.contains("class=\"total\">29.00 USD</td>")
            && !result.contains("exceed the plan"),
        "{result}"
    );
    // An unknown plan: the service's refusal instead of an estimate.
    let (status, unknown) = page(
        &client,
        &base,
        "/tenants/acme/plans?calc_plan=gold",
        Some(&owner),
    )
    .await?;
    ensure!(status == 400, "unknown plan: {status}");
    ensure!(
        text_of(&unknown, "calculator-error")?.contains("there is no plan &quot;gold&quot;")
            && !has_id(&unknown, "calculator-result"),
        "unknown plan: {:?}",
        text_of(&unknown, "calculator-error")
    );

    // The subscription page: free, no invoices, and no processor to bill through.
    let (status, billing) = page(&client, &base, "/tenants/acme/billing", Some(&owner)).await?;
    ensure!(status == 200, "billing page: {status}");
    ensure!(
        text_of(&billing, "billing-plan")? == "free"
            && text_of(&billing, "billing-status")? == "free",
        "plan {:?}, status {:?}",
        text_of(&billing, "billing-plan"),
        text_of(&billing, "billing-status")
    );
    ensure!(
        text_of(&billing, "no-invoices")? == "No invoices yet." && !has_id(&billing, "invoices"),
        "invoices are listed"
    );
    ensure!(
        has_id(&billing, "billing-unconfigured") && !has_id(&billing, "suspension"),
        "the page does not say that nothing is billed, or shows a suspension"
    );

    // Upgrading to pro: refused (no processor), shown on the plans page; the tenant stays free.
    let upgrade = post_form(
        &client,
        &base,
        "/tenants/acme/billing/plan",
        &owner,
        &token,
        "plan=pro&coupon=",
    )
    .await?;
    ensure!(upgrade.status() == 409, "upgrade: {}", upgrade.status());
    let upgrade = upgrade.text().await?;
    let refusal = element(&upgrade, "billing-error", "</div>")?;
    ensure!(
        refusal.contains("this server has no payment processor configured"),
        "{refusal}"
    );
    ensure!(
        element(&upgrade, "plans-current", "</p>")?.contains("<strong>free</strong>"),
        "the plans page does not show the tenant on free"
    );
    let acme = api
        .ok(Method::GET, "/v1/tenants/acme", Some(&admin), None)
        .await?;
    ensure!(acme["plan"] == "free", "plan changed: {acme}");
    let overview = api
        .ok(Method::GET, "/v1/tenants/acme/billing", Some(&admin), None)
        .await?;
    ensure!(
        overview["plan"] == "free" && overview["status"] == "free",
        "{overview}"
    );
    server.stop()?;
    Ok(())
}
