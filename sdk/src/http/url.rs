//! Splitting an absolute URL into the parts a wasi:http request carries.

use super::HttpError;

/// The parts of an absolute `http(s)` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    /// `true` for `https`.
    pub(crate) https: bool,
    /// `host` or `host:port`.
    pub(crate) authority: &'a str,
    /// The path and query, at least `/`; the fragment is dropped.
    pub(crate) path_with_query: String,
}

/// Parses `scheme://authority[/path][?query][#fragment]`.
pub(crate) fn parse(url: &str) -> Result<Target<'_>, HttpError> {
    let invalid = |why: &str| HttpError::InvalidUrl(format!("`{url}`: {why}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("expected an absolute URL such as https://example.com/"))?;
    let https = if scheme.eq_ignore_ascii_case("https") {
        true
    } else if scheme.eq_ignore_ascii_case("http") {
        false
    } else {
        return Err(invalid("the scheme must be http or https"));
    };
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return Err(invalid("the host is missing"));
    }
    if authority.contains('@') {
        return Err(invalid("credentials in the URL are not supported"));
    }
    if authority
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid("the host contains whitespace"));
    }
    let path_with_query = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    Ok(Target {
        https,
        authority,
        path_with_query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_full_url() -> Result<(), HttpError> {
        let target = parse("https://api.example.com:8443/v1/items?x=1#top")?;
        assert!(target.https);
        assert_eq!(target.authority, "api.example.com:8443");
        assert_eq!(target.path_with_query, "/v1/items?x=1");
        Ok(())
    }

    #[test]
    fn defaults_the_path_to_slash() -> Result<(), HttpError> {
        assert_eq!(parse("http://example.com")?.path_with_query, "/");
        assert_eq!(parse("http://example.com?q=1")?.path_with_query, "/?q=1");
        assert!(!parse("HTTP://example.com")?.https);
        Ok(())
    }

    #[test]
    fn refuses_what_it_cannot_send() {
        for url in [
            "example.com/x",
            "ftp://example.com/",
            "https:///path",
            "https://user:pw@example.com/",
            "https://exa mple.com/",
        ] {
            assert!(
                matches!(parse(url), Err(HttpError::InvalidUrl(_))),
                "{url} accepted"
            );
        }
    }
}
