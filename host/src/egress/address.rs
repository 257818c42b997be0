//! Which addresses are public: the one rule that decides whether outbound HTTP may reach an
//! address when the operator does not allow private destinations.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is a public unicast address: one that plugins' requests and webhook deliveries
/// may reach when private destinations are refused.
///
/// Not public: IPv4 `0.0.0.0/8` (unspecified), `10/8`, `100.64/10` (CGNAT), `127/8`,
/// `169.254/16` (link-local, cloud metadata), `172.16/12`, `192.0.0/24`, the documentation
/// nets, `192.168/16`, `198.18/15`, `224/4` (multicast), `240/4` and the broadcast address;
/// IPv6 `::` and `::1`, `fc00::/7` (unique local), `fe80::/10` (link-local), `fec0::/10`,
/// `ff00::/8` (multicast), `2001:db8::/32`, `100::/64`; and IPv6 forms that embed an IPv4
/// address (mapped `::ffff:0:0/96`, compatible `::/96`, NAT64 `64:ff9b::/96`, 6to4
/// `2002::/16`) whose IPv4 address is not public.
///
/// ```
/// use plinth_host::egress::is_public_address;
/// assert!(is_public_address("93.184.215.14".parse()?));
/// assert!(!is_public_address("169.254.169.254".parse()?));
/// assert!(!is_public_address("::ffff:127.0.0.1".parse()?));
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let not_public = a == 0
        || a == 10
        || (a == 100 && (b & 0xc0) == 64)
        || a == 127
        || (a == 169 && b == 254)
        || (a == 172 && (b & 0xf0) == 16)
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 168)
        || (a == 198 && (b & 0xfe) == 18)
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224;
    !not_public
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_ipv4(ip) {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let not_public = (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] & 0xff00) == 0xff00
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]);
    !not_public
}

/// The IPv4 address inside an IPv4-mapped, IPv4-compatible (which covers `::` and `::1`),
/// NAT64 or 6to4 IPv6 address.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let from = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if s[..6] == [0; 6] || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]) {
        Some(from(s[6], s[7]))
    } else if s[0] == 0x2002 {
        Some(from(s[1], s[2]))
    } else {
        None
    }
}
