//! Who is looking: the session cookie, the [`Viewer`] of a page, and CSRF protection.
//!
//! Logging in stores the marketplace's session token in the cookie [`SESSION_COOKIE`]
//! (`HttpOnly`, `SameSite=Strict`, `Secure` behind TLS); each request resolves it with
//! [`plinth_marketplace::auth::authenticate`], exactly as the API resolves a bearer token.
//!
//! Every form carries a CSRF token: a hash of the session token (or, before logging in, of
//! the random pre-session cookie [`CSRF_COOKIE`]). Another site can neither read those
//! cookies nor compute the token, so a form it posts is refused (`crate::form::Posted`).

use axum::extract::{FromRequestParts, Request};
use axum::http::header::{CONTENT_SECURITY_POLICY, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use plinth_marketplace::AppState;
use plinth_marketplace::auth::{Principal, UserCaller};
use sha2::{Digest, Sha256};

use crate::error::ConsoleError;

/// The cookie holding a signed-in user's session token.
pub const SESSION_COOKIE: &str = "plinth_session";

/// The random cookie a CSRF token is derived from before anyone logs in.
pub const CSRF_COOKIE: &str = "plinth_csrf";

/// The name of the hidden form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// Where pages may load anything from: this server only.
const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// The value of cookie `name` in `headers`, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// The CSRF token forms must carry on a request with `headers`: derived from the session
/// cookie if there is one, else from the pre-session cookie.
pub fn expected_csrf(headers: &HeaderMap) -> Option<String> {
    let seed = cookie(headers, SESSION_COOKIE).or_else(|| cookie(headers, CSRF_COOKIE))?;
    let digest = Sha256::new()
        .chain_update(b"plinth-console-csrf\0")
        .chain_update(seed.as_bytes())
        .finalize();
    Some(hex::encode(digest))
}

/// Whether `given` is the CSRF token expected on a request with `headers` (compared in
/// constant time).
pub fn csrf_matches(headers: &HeaderMap, given: Option<&str>) -> bool {
    let (Some(expected), Some(given)) = (expected_csrf(headers), given) else {
        return false;
    };
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Whether the request came over TLS (as a TLS-terminating proxy in front says).
pub fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value for cookie `name`: `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure`
/// when `secure`; `max_age_secs` of 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}")
}

/// Gives every visitor a pre-session CSRF cookie (visible to this very request too) and every
/// console response its security headers.
pub async fn guard(mut request: Request, next: Next) -> Response {
    let mut new_cookie = None;
    if cookie(request.headers(), CSRF_COOKIE).is_none() {
        let mut bytes = [0u8; 32];
        if getrandom::fill(&mut bytes).is_ok() {
            let value = hex::encode(bytes);
            let pair = format!("{CSRF_COOKIE}={value}");
            if let Ok(header) = HeaderValue::from_str(&pair) {
                request.headers_mut().append(COOKIE, header);
            }
            new_cookie = Some(set_cookie(
                CSRF_COOKIE,
                &value,
                60 * 60 * 24 * 365,
                over_tls(request.headers()),
            ));
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Some(value) = new_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.append(SET_COOKIE, value);
    }
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    response
}

/// Whoever is looking at a page: signed in or not, and the CSRF token for its forms.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The signed-in caller, resolved from the session cookie.
    pub principal: Option<Principal>,
    /// The CSRF token this viewer's forms carry.
    pub csrf: String,
}

impl Viewer {
    /// The signed-in user, if any.
    pub fn user(&self) -> Option<&UserCaller> {
        self.principal.as_ref().and_then(|p| p.user().ok())
    }

    /// The signed-in caller.
    ///
    /// # Errors
    ///
    /// [`ConsoleError::LoginRequired`] when nobody is signed in.
    pub fn require(&self) -> Result<&Principal, ConsoleError> {
        self.principal.as_ref().ok_or(ConsoleError::LoginRequired)
    }

    /// The signed-in user.
    ///
    /// # Errors
    ///
    /// [`ConsoleError::LoginRequired`] when nobody is signed in.
    pub fn require_user(&self) -> Result<&UserCaller, ConsoleError> {
        self.user().ok_or(ConsoleError::LoginRequired)
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = match cookie(&parts.headers, SESSION_COOKIE) {
            // An expired or revoked session is simply no session: the page asks to log in.
            Some(secret) => plinth_marketplace::auth::authenticate(state, secret)
                .await
                .ok(),
            None => None,
        };
        Ok(Viewer {
            principal,
            csrf: expected_csrf(&parts.headers).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(cookies).unwrap());
        headers
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = headers("a=1; plinth_session=tok; plinth_session_x=no");
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "plinth"), None);
    }

    #[test]
    fn the_csrf_token_follows_the_session_and_refuses_anything_else() {
        let anonymous = headers("plinth_csrf=abc");
        let token = expected_csrf(&anonymous).unwrap();
        assert!(csrf_matches(&anonymous, Some(&token)));
        assert!(!csrf_matches(&anonymous, None));
        assert!(!csrf_matches(&anonymous, Some("")));
        let signed_in = headers("plinth_csrf=abc; plinth_session=plt_x");
        assert_ne!(expected_csrf(&signed_in).unwrap(), token);
        assert!(!csrf_matches(&signed_in, Some(&token)));
        assert!(!csrf_matches(&HeaderMap::new(), Some(&token)));
    }

    #[test]
    fn session_cookies_are_http_only_and_strict() {
        let cookie = set_cookie(SESSION_COOKIE, "t", 60, true);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.ends_with("; Secure"));
        assert!(!set_cookie(SESSION_COOKIE, "t", 60, false).contains("Secure"));
    }
}
