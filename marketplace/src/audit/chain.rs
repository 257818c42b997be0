//! The hash chain: what an entry's hash covers, and the check that the stored log is the one
//! that was written.

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::Db;
use crate::error::Result;

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How many entries [`verify`] reads at a time.
const PAGE: i64 = 1_000;

/// The fields of an entry that its hash covers: all of them but the hash itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed<'a> {
    /// Position in the log, from 1 without gaps.
    pub seq: i64,
    /// The entry's id.
    pub id: &'a str,
    /// When, in ms since the Unix epoch.
    pub at: i64,
    /// `user`, `tenant_key`, `publisher_key` or `system`.
    pub actor_kind: &'a str,
    /// The user (or key's user); none for the system.
    pub actor_id: Option<&'a str>,
    /// What was done, e.g. `install.created`.
    pub action: &'a str,
    /// The tenant the entry concerns, if one.
    pub tenant_id: Option<&'a str>,
    /// What it was done to, e.g. `plugin:acme/hello@1.0.0`.
    pub subject: &'a str,
    /// The details as stored (JSON text).
    pub details: &'a str,
    /// The hash of the entry before (or [`GENESIS_HASH`]).
    pub prev_hash: &'a str,
}

impl Sealed<'_> {
    /// The entry's hash: SHA-256, lower-case hex, over every field length-prefixed (so no two
    /// different entries encode alike), an absent field told apart from an empty one.
    pub fn hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"plinth-audit-v1");
        let mut field = |bytes: Option<&[u8]>| match bytes {
            None => hasher.update([0u8]),
            Some(bytes) => {
                hasher.update([1u8]);
                hasher.update((bytes.len() as u64).to_be_bytes());
                hasher.update(bytes);
            }
        };
        field(Some(&self.seq.to_be_bytes()));
        field(Some(self.id.as_bytes()));
        field(Some(&self.at.to_be_bytes()));
        field(Some(self.actor_kind.as_bytes()));
        field(self.actor_id.map(str::as_bytes));
        field(Some(self.action.as_bytes()));
        field(self.tenant_id.map(str::as_bytes));
        field(Some(self.subject.as_bytes()));
        field(Some(self.details.as_bytes()));
        field(Some(self.prev_hash.as_bytes()));
        hex::encode(hasher.finalize())
    }
}

/// A sound chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ChainReport {
    /// How many entries were checked.
    pub entries: i64,
    /// The newest entry's hash ([`GENESIS_HASH`] for an empty log).
    pub head_hash: String,
}

/// The first place the stored log differs from what was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Violation {
    /// The sequence number of the entry where the chain breaks.
    pub seq: i64,
    /// That entry's id, if it exists.
    pub id: Option<String>,
    /// What is wrong, as a sentence.
    pub problem: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.id {
            Some(id) => write!(f, "audit entry {} ({id}): {}", self.seq, self.problem),
            None => write!(f, "audit entry {}: {}", self.seq, self.problem),
        }
    }
}

/// Reads the whole log in order and checks that every entry's hash matches its contents, that
/// each names its predecessor's hash, that sequence numbers run from 1 without gaps, and that
/// the log ends where the head says it does. Detects any entry edited, deleted (in the middle
/// or at the end) or reordered.
///
/// # Errors
///
/// [`crate::Error::Database`] if the log cannot be read. A broken chain is `Ok(Err(_))`.
pub async fn verify(db: &Db) -> Result<std::result::Result<ChainReport, Violation>> {
    let mut expected_seq = 1_i64;
    let mut prev_hash = GENESIS_HASH.to_owned();
    loop {
        let rows = sqlx::query(
            "SELECT seq, id, at, actor_kind, actor_id, action, tenant_id, subject, details, \
                    prev_hash, hash \
             FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(expected_seq)
        .bind(PAGE)
        .fetch_all(db.pool())
        .await?;
        let page_len = rows.len();
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            let id: String = row.try_get("id")?;
            if seq != expected_seq {
                return Ok(Err(Violation {
                    seq: expected_seq,
                    id: None,
                    problem: format!(
                        "is missing: the entry after {} is {seq} ({id})",
                        expected_seq - 1
                    ),
                }));
            }
            let actor_id: Option<String> = row.try_get("actor_id")?;
            let tenant_id: Option<String> = row.try_get("tenant_id")?;
            let stored_prev: String = row.try_get("prev_hash")?;
            let stored_hash: String = row.try_get("hash")?;
            let action: String = row.try_get("action")?;
            let actor_kind: String = row.try_get("actor_kind")?;
            let subject: String = row.try_get("subject")?;
            let details: String = row.try_get("details")?;
            if stored_prev != prev_hash {
                return Ok(Err(Violation {
                    seq,
                    id: Some(id),
                    problem: format!(
                        "does not follow entry {}: it names {stored_prev} as the previous hash, \
                         but that entry's hash is {prev_hash} (an entry was removed, reordered \
                         or rewritten)",
                        seq - 1
                    ),
                }));
            }
            let sealed = Sealed {
                seq,
                id: &id,
                at: row.try_get("at")?,
                actor_kind: &actor_kind,
                actor_id: actor_id.as_deref(),
                action: &action,
                tenant_id: tenant_id.as_deref(),
                subject: &subject,
                details: &details,
                prev_hash: &stored_prev,
            };
            if sealed.hash() != stored_hash {
                return Ok(Err(Violation {
                    seq,
                    id: Some(id),
                    problem: format!(
                        "{action}: its contents do not match its hash (it was edited)"
                    ),
                }));
            }
            prev_hash = stored_hash;
            expected_seq += 1;
        }
        if i64::try_from(page_len).unwrap_or(i64::MAX) < PAGE {
            break;
        }
    }
    let entries = expected_seq - 1;
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_optional(db.pool())
        .await?;
    let Some(head) = head else {
        return Ok(Err(Violation {
            seq: entries,
            id: None,
            problem: "the head record of the log is missing".to_owned(),
        }));
    };
    let head_seq: i64 = head.try_get("seq")?;
    let head_hash: String = head.try_get("hash")?;
    if head_seq != entries || head_hash != prev_hash {
        return Ok(Err(Violation {
            seq: head_seq,
            id: None,
            problem: format!(
                "the log ends at entry {entries} but its head records entry {head_seq} \
                 (entries at the end were removed, or the head was altered)"
            ),
        }));
    }
    Ok(Ok(ChainReport {
        entries,
        head_hash: prev_hash,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>() -> Sealed<'a> {
        Sealed {
            seq: 1,
            id: "a",
            at: 5,
            actor_kind: "user",
            actor_id: Some("u"),
            action: "install.created",
            tenant_id: None,
            subject: "plugin:acme/hello",
            details: "{}",
            prev_hash: GENESIS_HASH,
        }
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let base = entry().hash();
        let changed = [
            Sealed { seq: 2, ..entry() },
            Sealed { id: "b", ..entry() },
            Sealed { at: 6, ..entry() },
            Sealed {
                actor_kind: "system",
                ..entry()
            },
            Sealed {
                actor_id: None,
                ..entry()
            },
            Sealed {
                actor_id: Some(""),
                ..entry()
            },
            Sealed {
                action: "install.removed",
                ..entry()
            },
            Sealed {
                tenant_id: Some("t"),
                ..entry()
            },
            Sealed {
                subject: "plugin:acme/other",
                ..entry()
            },
            Sealed {
                details: "{\"a\":1}",
                ..entry()
            },
            Sealed {
                prev_hash: "ff",
                ..entry()
            },
        ];
        for other in changed {
            assert_ne!(other.hash(), base, "{other:?}");
        }
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        let a = Sealed {
            subject: "ab",
            details: "c",
            ..entry()
        };
        let b = Sealed {
            subject: "a",
            details: "bc",
            ..entry()
        };
        assert_ne!(a.hash(), b.hash());
    }
}
