//! [`Grant`]: one atomic permission and how it reads to a tenant.

use serde::{Deserialize, Serialize};

use super::{HostPattern, Risk, Schedule, Topic};
use crate::canonical::Canonical;

/// One atomic permission. [`Permissions::grants`](super::Permissions::grants) lists them in
/// this type's order: kv, hosts, subscriptions, emits, config, schedules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Grant {
    /// A private key-value store with this quota.
    Kv {
        /// Most bytes stored.
        max_bytes: u64,
        /// Most keys stored, if limited.
        max_keys: Option<u64>,
    },
    /// Outbound HTTP to one host pattern.
    HttpHost(HostPattern),
    /// Receiving events on one topic.
    Subscribe(Topic),
    /// Emitting events on one topic.
    Emit(Topic),
    /// Reading the tenant's configuration values.
    Config,
    /// Running on its own clock, receiving one topic.
    Schedule(Schedule),
}

/// A grant as the API shows it: `{capability, detail, sentence, risk}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantDescription {
    /// Machine name of the capability: `kv`, `http`, `events.subscribe`, `events.emit`,
    /// `config`, `schedule`.
    pub capability: String,
    /// What exactly: a quota, a host, a topic.
    pub detail: String,
    /// A sentence for the tenant, e.g. `Send HTTP requests to hooks.slack.com`.
    pub sentence: String,
    /// How much it exposes the tenant.
    pub risk: Risk,
}

impl Grant {
    /// Machine name of the capability: `kv`, `http`, `events.subscribe`, `events.emit`,
    /// `config`, `schedule`.
    pub fn capability(&self) -> &'static str {
        match self {
            Grant::Kv { .. } => "kv",
            Grant::HttpHost(_) => "http",
            Grant::Subscribe(_) => "events.subscribe",
            Grant::Emit(_) => "events.emit",
            Grant::Config => "config",
            Grant::Schedule(_) => "schedule",
        }
    }

    /// What exactly is granted: `max-bytes=1048576` (`, max-keys=N`), the host, the topic, or
    /// `read` for config, `every 15m → topic` or `cron PATTERN → topic` for a schedule.
    pub fn detail(&self) -> String {
        match self {
            Grant::Kv {
                max_bytes,
                max_keys: None,
            } => format!("max-bytes={max_bytes}"),
            Grant::Kv {
                max_bytes,
                max_keys: Some(keys),
            } => format!("max-bytes={max_bytes}, max-keys={keys}"),
            Grant::HttpHost(host) => host.to_string(),
            Grant::Subscribe(topic) | Grant::Emit(topic) => topic.to_string(),
            Grant::Config => "read".to_owned(),
            Grant::Schedule(schedule) => format!("{} → {}", schedule.detail(), schedule.topic),
        }
    }

    /// A sentence for the tenant's consent screen, e.g. `Store up to 1.0 MiB in its own
    /// key-value store`.
    pub fn sentence(&self) -> String {
        match self {
            Grant::Kv {
                max_bytes,
                max_keys: None,
            } => format!(
                "Store up to {} in its own key-value store",
                human_bytes(*max_bytes)
            ),
            Grant::Kv {
                max_bytes,
                max_keys: Some(keys),
            } => format!(
                "Store up to {} in at most {keys} keys in its own key-value store",
                human_bytes(*max_bytes)
            ),
            Grant::HttpHost(host) => {
                let port = host
                    .port()
                    .map(|p| format!(" on port {p}"))
                    .unwrap_or_default();
                match host.host().strip_prefix("*.") {
                    Some(base) => format!("Send HTTP requests to any subdomain of {base}{port}"),
                    None => format!("Send HTTP requests to {}{port}", host.host()),
                }
            }
            Grant::Subscribe(topic) => format!("Receive your {topic} events"),
            Grant::Emit(topic) => format!("Emit {topic} events"),
            Grant::Config => "Read the configuration values you set for it".to_owned(),
            Grant::Schedule(schedule) => format!(
                "Run on its own {}, receiving {} events (each run counts against your \
                 invocations)",
                schedule.cadence(),
                schedule.topic
            ),
        }
    }

    /// How much the grant exposes the tenant: outbound HTTP is high (data can leave the
    /// platform), emitting events medium (other plugins act on them), the rest low (a schedule
    /// spends invocations but exposes nothing).
    pub fn risk(&self) -> Risk {
        match self {
            Grant::HttpHost(_) => Risk::High,
            Grant::Emit(_) => Risk::Medium,
            Grant::Kv { .. } | Grant::Subscribe(_) | Grant::Config | Grant::Schedule(_) => {
                Risk::Low
            }
        }
    }

    /// The grant as `{capability, detail, sentence, risk}`.
    pub fn describe(&self) -> GrantDescription {
        GrantDescription {
            capability: self.capability().to_owned(),
            detail: self.detail(),
            sentence: self.sentence(),
            risk: self.risk(),
        }
    }

    pub(crate) fn encode(&self, c: &mut Canonical) {
        c.str(self.capability());
        match self {
            Grant::Kv {
                max_bytes,
                max_keys,
            } => {
                c.u64(*max_bytes).opt_u64(*max_keys);
            }
            Grant::HttpHost(host) => {
                c.str(host.as_str());
            }
            Grant::Subscribe(topic) | Grant::Emit(topic) => {
                c.str(topic.as_str());
            }
            Grant::Config => {}
            Grant::Schedule(schedule) => {
                c.str(&schedule.detail()).str(schedule.topic.as_str());
            }
        }
    }
}

/// A size as people read it: `1.0 MiB`, `512 bytes`, `2.5 KiB` (the consent screen's unit,
/// and the console's for quotas).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return if n == 1 {
            "1 byte".to_owned()
        } else {
            format!("{n} bytes")
        };
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::{Grant, Risk, human_bytes};

    #[test]
    fn grants_carry_the_risk_tenants_see() {
        let host = Grant::HttpHost("*.example.com".parse().unwrap());
        let emit = Grant::Emit("order.created".parse().unwrap());
        let subscribe = Grant::Subscribe("order.created".parse().unwrap());
        let kv = Grant::Kv {
            max_bytes: 1024,
            max_keys: None,
        };
        assert_eq!(host.describe().risk, Risk::High);
        assert_eq!(emit.risk(), Risk::Medium);
        for low in [subscribe, kv, Grant::Config] {
            assert_eq!(low.risk(), Risk::Low, "{low:?}");
        }
        assert!(Risk::Low < Risk::Medium && Risk::Medium < Risk::High);
        assert_eq!(
            serde_json::to_value(host.describe()).unwrap()["risk"],
            "high"
        );
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_bytes(1), "1 byte");
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(1_048_576), "1.0 MiB");
        assert_eq!(human_bytes(2560), "2.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
