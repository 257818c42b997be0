//! [`HostPattern`]: one entry of `permissions.http.hosts`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::InvalidValue;

/// An outbound HTTP allowlist entry: an exact lowercase DNS host (`hooks.slack.com`), a
/// wildcard covering every subdomain (`*.example.com`, which does not cover `example.com`
/// itself), or an IP literal (`10.0.0.1`, `[::1]`), each with an optional `:port`.
///
/// A pattern without a port allows every port; with a port, only that port. Schemes, paths,
/// user info and upper case are refused, and an IPv6 address must be in its canonical form
/// (`[::1]`, not `[0:0::1]` or `[A::1]`).
///
/// ```
/// use plinth_package::HostPattern;
/// let p: HostPattern = "*.example.com".parse()?;
/// assert!(p.allows("api.example.com", 443));
/// assert!(!p.allows("example.com", 443));
/// assert!("https://example.com".parse::<HostPattern>().is_err());
/// # Ok::<(), plinth_package::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostPattern {
    text: String,
    host_len: usize,
    port: Option<u16>,
}

impl HostPattern {
    /// The pattern as written, e.g. `*.example.com:8443`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The host part without the port, e.g. `*.example.com` or `[::1]`.
    pub fn host(&self) -> &str {
        &self.text[..self.host_len]
    }

    /// The port, if the pattern names one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether this is a `*.` wildcard pattern.
    pub fn is_wildcard(&self) -> bool {
        self.text.starts_with("*.")
    }

    /// Whether a request to `host` on `port` is allowed by this pattern. `host` is compared
    /// case-insensitively, ignoring a trailing dot; an IPv6 host may be given with or without
    /// brackets.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let mut host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.contains(':') && !host.starts_with('[') {
            host = format!("[{host}]");
        }
        host_covers(self.host(), &host)
    }

    /// Whether every request this pattern allows is also allowed by `other`.
    pub fn is_covered_by(&self, other: &HostPattern) -> bool {
        let port_ok = match (other.port, self.port) {
            (None, _) => true,
            (Some(o), Some(s)) => o == s,
            (Some(_), None) => false,
        };
        port_ok && host_covers(other.host(), self.host())
    }
}

/// Whether the host pattern `pattern` covers `host` (itself possibly a wildcard pattern).
fn host_covers(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(base) => host
            .strip_suffix(base)
            .is_some_and(|front| front.ends_with('.') && front.len() > 1),
        None => false,
    }
}

fn check_dns_name(name: &str) -> Result<(), String> {
    if name.len() > 253 {
        return Err("a host name is at most 253 characters".into());
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err("empty label".into());
        }
        if label.len() > 63 {
            return Err("a label is at most 63 characters".into());
        }
        if label.chars().any(|c| c.is_ascii_uppercase()) {
            return Err("use lowercase".into());
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(format!("'{c}' is not allowed in a host name"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label may not start or end with '-'".into());
        }
    }
    let last = labels.last().copied().unwrap_or_default();
    if last.chars().all(|c| c.is_ascii_digit()) && name.parse::<Ipv4Addr>().is_err() {
        return Err("not a DNS name nor an IPv4 address".into());
    }
    Ok(())
}

fn parse_port(text: &str) -> Result<u16, String> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("\"{text}\" is not a port number"));
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{text} is not a port between 1 and 65535")),
        Ok(port) => Ok(port),
    }
}

impl FromStr for HostPattern {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| InvalidValue::new("host", s, reason);
        if s.is_empty() {
            return Err(invalid("it is empty".into()));
        }
        if s.contains("://") {
            return Err(invalid("remove the scheme; give only the host".into()));
        }
        if s.contains('/') || s.contains('?') || s.contains('#') {
            return Err(invalid("remove the path; give only the host".into()));
        }
        if s.contains('@') {
            return Err(invalid("user info is not allowed".into()));
        }
        if s.chars().any(|c| c.is_whitespace()) {
            return Err(invalid("whitespace is not allowed".into()));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let Some((inner, after)) = rest.split_once(']') else {
                return Err(invalid("unclosed '['".into()));
            };
            let address = inner
                .parse::<Ipv6Addr>()
                .map_err(|_| invalid(format!("\"{inner}\" is not an IPv6 address")))?;
            // Requests are compared as text, lowercased: a pattern in any other spelling of
            // the address (upper case, zeros written out) would never match one.
            if inner != address.to_string() {
                return Err(invalid(format!("write the address as [{address}]")));
            }
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(p) => Some(parse_port(p).map_err(invalid)?),
                    None => return Err(invalid("unexpected text after ']'".into())),
                },
            };
            (&s[..inner.len() + 2], port)
        } else {
            let (host, port) = match s.rsplit_once(':') {
                Some((host, port)) => (host, Some(parse_port(port).map_err(invalid)?)),
                None => (s, None),
            };
            if host.contains(':') {
                return Err(invalid(
                    "write an IPv6 address in brackets, e.g. [::1]".into(),
                ));
            }
            match host.strip_prefix("*.") {
                Some(base) => {
                    check_dns_name(base).map_err(invalid)?;
                    if !base.contains('.') || base.parse::<Ipv4Addr>().is_ok() {
                        return Err(invalid(
                            "a wildcard must cover subdomains of a domain, e.g. *.example.com"
                                .into(),
                        ));
                    }
                }
                None => check_dns_name(host).map_err(invalid)?,
            }
            (host, port)
        };
        Ok(HostPattern {
            text: s.to_owned(),
            host_len: host.len(),
            port,
        })
    }
}

impl TryFrom<String> for HostPattern {
    type Error = InvalidValue;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<HostPattern> for String {
    fn from(h: HostPattern) -> String {
        h.text
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
