//! The hash chain: what an entry's hash covers, and the check that the stored log is the one
//! that was written (its hashes, links and the seals of [`super::key`]).

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::key::AuditKey;
use crate::db::Db;
use crate::error::{Error, Result};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How many entries [`verify`] reads at a time.
const PAGE: i64 = 1_000;

/// The fields of an entry that its hash covers: all of them but the hash itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed<'a> {
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

impl Hashed<'_> {
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
    /// Of them, how many were written before entries were sealed (they come first, and the
    /// first sealed entry vouches for them through its hash).
    pub unsealed_entries: i64,
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

/// One stored entry, as [`verify`] reads it.
struct Stored {
    seq: i64,
    id: String,
    at: i64,
    actor_kind: String,
    actor_id: Option<String>,
    action: String,
    tenant_id: Option<String>,
    subject: String,
    details: String,
    prev_hash: String,
    hash: String,
    seal: Option<String>,
}

impl Stored {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Stored> {
        Ok(Stored {
            seq: row.try_get("seq")?,
            id: row.try_get("id")?,
            at: row.try_get("at")?,
            actor_kind: row.try_get("actor_kind")?,
            actor_id: row.try_get("actor_id")?,
            action: row.try_get("action")?,
            tenant_id: row.try_get("tenant_id")?,
            subject: row.try_get("subject")?,
            details: row.try_get("details")?,
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
            seal: row.try_get("seal")?,
        })
    }

    fn hashed(&self) -> Hashed<'_> {
        Hashed {
            seq: self.seq,
            id: &self.id,
            at: self.at,
            actor_kind: &self.actor_kind,
            actor_id: self.actor_id.as_deref(),
            action: &self.action,
            tenant_id: self.tenant_id.as_deref(),
            subject: &self.subject,
            details: &self.details,
            prev_hash: &self.prev_hash,
        }
    }

    fn broken(&self, problem: String) -> Violation {
        Violation {
            seq: self.seq,
            id: Some(self.id.clone()),
            problem,
        }
    }
}

/// Where [`verify`] is in the log.
struct Walk<'k> {
    key: &'k AuditKey,
    expected_seq: i64,
    prev_hash: String,
    unsealed: i64,
    sealed_seen: bool,
}

impl Walk<'_> {
    /// Checks the next entry; the first violation it shows, if any.
    fn check(&mut self, entry: &Stored) -> Option<Violation> {
        if entry.seq != self.expected_seq {
            return Some(Violation {
                seq: self.expected_seq,
                id: None,
                problem: format!(
                    "is missing: the entry after {} is {} ({})",
                    self.expected_seq - 1,
                    entry.seq,
                    entry.id
                ),
            });
        }
        if entry.prev_hash != self.prev_hash {
            return Some(entry.broken(format!(
                "does not follow entry {}: it names {} as the previous hash, but that entry's \
                 hash is {} (an entry was removed, reordered or rewritten)",
                entry.seq - 1,
                entry.prev_hash,
                self.prev_hash
            )));
        }
        if entry.hashed().hash() != entry.hash {
            return Some(entry.broken(format!(
                "{}: its contents do not match its hash (it was edited)",
                entry.action
            )));
        }
        match &entry.seal {
            Some(seal) if self.key.entry_sealed(&entry.hash, seal) => self.sealed_seen = true,
            Some(_) => {
                return Some(entry.broken(format!(
                    "{}: its seal does not match its hash under the audit key (it was written \
                     or rewritten without the key, or the key is not the one the log was \
                     written with)",
                    entry.action
                )));
            }
            None if self.sealed_seen => {
                return Some(entry.broken(format!(
                    "{}: it has no seal though entries before it do (it was written or \
                     rewritten without the audit key)",
                    entry.action
                )));
            }
            None => self.unsealed += 1,
        }
        self.prev_hash.clone_from(&entry.hash);
        self.expected_seq += 1;
        None
    }
}

/// Reads the whole log in order and checks that every entry's hash matches its contents, that
/// each names its predecessor's hash, that sequence numbers run from 1 without gaps, that every
/// entry since sealing began carries a valid seal under the database handle's audit key, and
/// that the log ends where the sealed head says it does. Detects any entry edited, deleted (in
/// the middle or at the end) or reordered, and a tail rewritten with every hash recomputed.
///
/// # Errors
///
/// [`crate::Error::Database`] if the log cannot be read; [`crate::Error::Internal`] if the
/// handle has no audit key to check seals with. A broken chain is `Ok(Err(_))`.
pub async fn verify(db: &Db) -> Result<std::result::Result<ChainReport, Violation>> {
    let key = db.audit_key().ok_or_else(|| {
        Error::Internal("no audit key: the log's seals cannot be checked".to_owned())
    })?;
    let mut walk = Walk {
        key,
        expected_seq: 1,
        prev_hash: GENESIS_HASH.to_owned(),
        unsealed: 0,
        sealed_seen: false,
    };
    loop {
        let rows = sqlx::query(
            "SELECT seq, id, at, actor_kind, actor_id, action, tenant_id, subject, details, \
                    prev_hash, hash, seal \
             FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(walk.expected_seq)
        .bind(PAGE)
        .fetch_all(db.pool())
        .await?;
        for row in &rows {
            if let Some(violation) = walk.check(&Stored::from_row(row)?) {
                return Ok(Err(violation));
            }
        }
        if i64::try_from(rows.len()).unwrap_or(i64::MAX) < PAGE {
            break;
        }
    }
    let entries = walk.expected_seq - 1;
    let head = sqlx::query("SELECT seq, hash, seal FROM audit_head WHERE id = 1")
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
    let head_seal: Option<String> = head.try_get("seal")?;
    let ends_elsewhere = Violation {
        seq: head_seq,
        id: None,
        problem: format!(
            "the log ends at entry {entries} but its head records entry {head_seq} (entries at \
             the end were removed, or the head was altered)"
        ),
    };
    if head_seq != entries || head_hash != walk.prev_hash {
        return Ok(Err(ends_elsewhere));
    }
    if entries > 0 && !walk.sealed_seen {
        return Ok(Err(Violation {
            seq: entries,
            id: None,
            problem: "no entry of the log is sealed: it was written before entries were sealed \
                      (start plinth serve once to seal it) or rewritten without the audit key"
                .to_owned(),
        }));
    }
    if walk.sealed_seen
        && !head_seal.is_some_and(|seal| key.head_sealed(head_seq, &head_hash, &seal))
    {
        return Ok(Err(Violation {
            seq: head_seq,
            id: None,
            problem: "the head's seal does not match the entry it records (the head was \
                      altered, or entries at the end were removed)"
                .to_owned(),
        }));
    }
    Ok(Ok(ChainReport {
        entries,
        unsealed_entries: walk.unsealed,
        head_hash: walk.prev_hash,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>() -> Hashed<'a> {
        Hashed {
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
            Hashed { seq: 2, ..entry() },
            Hashed { id: "b", ..entry() },
            Hashed { at: 6, ..entry() },
            Hashed {
                actor_kind: "system",
                ..entry()
            },
            Hashed {
                actor_id: None,
                ..entry()
            },
            Hashed {
                actor_id: Some(""),
                ..entry()
            },
            Hashed {
                action: "install.removed",
                ..entry()
            },
            Hashed {
                tenant_id: Some("t"),
                ..entry()
            },
            Hashed {
                subject: "plugin:acme/other",
                ..entry()
            },
            Hashed {
                details: "{\"a\":1}",
                ..entry()
            },
            Hashed {
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
        let a = Hashed {
            subject: "ab",
            details: "c",
            ..entry()
        };
        let b = Hashed {
            subject: "a",
            details: "bc",
            ..entry()
        };
        assert_ne!(a.hash(), b.hash());
    }
}
