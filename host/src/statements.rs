//! Freeze and rollback defence: the newest marketplace state statement this host has verified
//! ([`plinth_package::signing::statement`]).
//!
//! A statement is accepted only if a trusted marketplace key signed it and its sequence is not
//! lower than the newest one seen (the same sequence must be the same statement). The newest
//! is persisted next to the compiled cache, so a restart does not forget it: storage, or a
//! replica, that serves an older state (a withheld security yank, a lifted block that was never
//! lifted) cannot take this host back. What the newest statement revokes is refused by
//! [`Host::load`](crate::Host::load) whatever storage says, and installs running it are stopped
//! as soon as it is seen. Past its expiry with nothing newer, [`StatementGuard::freshness`]
//! says so: the server's `/healthz` turns `degraded`, a metric and the log raise the alarm.
//!
//! Statements also rotate the marketplace key: once one is seen, the keys it names replace the
//! configured ones, for countersignatures and for the next statements. A statement signed by
//! the current key that names a new one introduces it (both trusted during the overlap); one
//! that leaves a key out retires (or, when compromised, revokes) it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use plinth_package::PublicKey;
use plinth_package::signing::statement::{SignedStatement, StateStatement, StatementError};

/// Why a statement was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementRefused {
    /// It does not verify.
    #[error("{0}")]
    Invalid(#[from] StatementError),
    /// It is older than the newest statement seen: a replayed or withheld state.
    #[error(
        "statement {offered} is older than statement {seen}, which this host has seen: refused as a replayed or withheld state"
    )]
    Older {
        /// The newest sequence seen.
        seen: u64,
        /// The sequence offered.
        offered: u64,
    },
    /// It has the sequence of the newest statement seen but other content.
    #[error("statement {sequence} differs from the statement {sequence} this host has seen")]
    Conflicting {
        /// The sequence.
        sequence: u64,
    },
}

/// What accepting a statement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// It is newer than what was seen: it is the newest now.
    Newer {
        /// Its sequence.
        sequence: u64,
    },
    /// It is the newest statement seen already.
    Same,
}

/// How current the newest statement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// No statement seen yet.
    Unknown,
    /// Within its validity.
    Fresh {
        /// Its sequence.
        sequence: u64,
        /// Its expiry (Unix seconds).
        expires_at: i64,
    },
    /// Past its expiry, and nothing newer seen.
    Expired {
        /// Its sequence.
        sequence: u64,
        /// Its expiry (Unix seconds).
        expired_at: i64,
    },
}

/// The newest statement this host verified, persisted at `path`.
#[derive(Debug)]
pub struct StatementGuard {
    path: Option<PathBuf>,
    newest: Mutex<Option<SignedStatement>>,
}

/// The file the newest statement is kept in, inside the cache directory.
pub const FILE_NAME: &str = "state-statement.json";

impl StatementGuard {
    /// A guard keeping the newest statement in `dir` (none: in memory only), starting from the
    /// one kept there if any. A kept file that does not read is set aside (renamed `.bad`)
    /// with a warning: the next statement from the marketplace replaces it.
    pub fn open(dir: Option<&Path>) -> StatementGuard {
        let path = dir.map(|dir| dir.join(FILE_NAME));
        let newest = path.as_deref().and_then(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            match serde_json::from_str::<SignedStatement>(&text) {
                Ok(statement) => Some(statement),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "the kept state statement does not read; set aside");
                    let _ = std::fs::rename(path, path.with_extension("json.bad"));
                    None
                }
            }
        });
        StatementGuard {
            path,
            newest: Mutex::new(newest),
        }
    }

    /// Accepts `signed` if it is not older than the newest seen and was signed by a key the
    /// newest statement names, or before any statement by one of `configured` (any key when
    /// `configured` is `None`: the development trust policy); keeps it when it is newer. So
    /// a statement signed by the current key can introduce a new one, and one that leaves a
    /// key out retires it for good.
    ///
    /// # Errors
    ///
    /// [`StatementRefused`].
    pub fn observe(
        &self,
        signed: &SignedStatement,
        configured: Option<&[PublicKey]>,
    ) -> Result<Observed, StatementRefused> {
        let mut newest = self.newest.lock().unwrap_or_else(PoisonError::into_inner);
        let own = [signed.key];
        let trusted: &[PublicKey] = match (newest.as_ref(), configured) {
            (Some(seen), _) => &seen.statement.keys,
            (None, Some(configured)) => configured,
            (None, None) => &own,
        };
        signed.verify(trusted)?;
        let offered = signed.statement.sequence;
        if let Some(seen) = newest.as_ref() {
            let seen_sequence = seen.statement.sequence;
            if offered < seen_sequence {
                return Err(StatementRefused::Older {
                    seen: seen_sequence,
                    offered,
                });
            }
            if offered == seen_sequence {
                return if seen == signed {
                    Ok(Observed::Same)
                } else {
                    Err(StatementRefused::Conflicting { sequence: offered })
                };
            }
        }
        if let Some(path) = &self.path {
            keep(path, signed);
        }
        *newest = Some(signed.clone());
        Ok(Observed::Newer { sequence: offered })
    }

    /// The newest statement seen.
    pub fn newest(&self) -> Option<StateStatement> {
        self.newest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|signed| signed.statement.clone())
    }

    /// The marketplace keys the newest statement names (a key rotation's outcome): from then
    /// on they, not the configured keys, are trusted for countersignatures and statements.
    pub fn keys(&self) -> Option<Vec<PublicKey>> {
        self.newest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|signed| signed.statement.keys.clone())
    }

    /// Whether the newest statement revokes `version` of `plugin`.
    pub fn revokes(&self, plugin: &str, version: &str) -> Option<u64> {
        let newest = self.newest.lock().unwrap_or_else(PoisonError::into_inner);
        newest
            .as_ref()
            .filter(|signed| signed.statement.revokes(plugin, version))
            .map(|signed| signed.statement.sequence)
    }

    /// How current the newest statement is at `now` (Unix seconds).
    pub fn freshness(&self, now: i64) -> Freshness {
        let newest = self.newest.lock().unwrap_or_else(PoisonError::into_inner);
        match newest.as_ref().map(|signed| &signed.statement) {
            None => Freshness::Unknown,
            Some(statement) if statement.expired(now) => Freshness::Expired {
                sequence: statement.sequence,
                expired_at: statement.expires_at,
            },
            Some(statement) => Freshness::Fresh {
                sequence: statement.sequence,
                expires_at: statement.expires_at,
            },
        }
    }
}

/// Writes `signed` to `path` whole (a temporary file, then a rename); a failure is logged (the
/// statement is still kept in memory).
fn keep(path: &Path, signed: &SignedStatement) {
    let written = serde_json::to_vec(signed)
        .map_err(std::io::Error::other)
        .and_then(|bytes| {
            let temporary = path.with_extension("json.tmp");
            std::fs::write(&temporary, bytes)?;
            std::fs::rename(&temporary, path)
        });
    if let Err(error) = written {
        tracing::error!(path = %path.display(), %error, "cannot keep the state statement; a restart would forget it");
    }
}

#[cfg(test)]
mod tests {
    use plinth_package::SecretKey;
    use plinth_package::signing::statement::Revoked;

    use super::*;

    fn signed(key: &SecretKey, sequence: u64, revoked: &[(&str, &str)]) -> SignedStatement {
        let revoked = revoked
            .iter()
            .map(|(plugin, version)| Revoked {
                plugin: (*plugin).to_owned(),
                version: Some((*version).to_owned()),
            })
            .collect();
        StateStatement::new(
            sequence,
            1_000,
            600,
            revoked,
            "sha256:00".into(),
            vec![key.public_key()],
        )
        .sign(key)
    }

    #[test]
    fn older_and_conflicting_statements_are_refused_and_the_newest_survives_a_restart()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let key = SecretKey::generate()?;
        let trusted = [key.public_key()];
        let guard = StatementGuard::open(Some(dir.path()));
        assert_eq!(guard.freshness(1_000), Freshness::Unknown);
        assert_eq!(
            guard.observe(&signed(&key, 1, &[]), Some(&trusted))?,
            Observed::Newer { sequence: 1 }
        );
        let yank = signed(&key, 2, &[("acme.a", "1.0.0")]);
        assert_eq!(
            guard.observe(&yank, Some(&trusted))?,
            Observed::Newer { sequence: 2 }
        );
        assert_eq!(guard.observe(&yank, Some(&trusted))?, Observed::Same);
        // A replay of the statement before the yank, and another statement 2: refused.
        assert_eq!(
            guard.observe(&signed(&key, 1, &[]), Some(&trusted)),
            Err(StatementRefused::Older {
                seen: 2,
                offered: 1
            })
        );
        assert_eq!(
            guard.observe(&signed(&key, 2, &[]), Some(&trusted)),
            Err(StatementRefused::Conflicting { sequence: 2 })
        );
        assert_eq!(guard.revokes("acme.a", "1.0.0"), Some(2));
        // A statement by another key is refused; the development policy takes any valid one.
        let other = SecretKey::generate()?;
        assert!(matches!(
            guard.observe(&signed(&other, 9, &[]), Some(&trusted)),
            Err(StatementRefused::Invalid(
                StatementError::UntrustedKey { .. }
            ))
        ));
        // After a restart the host still knows statement 2.
        let reopened = StatementGuard::open(Some(dir.path()));
        assert_eq!(reopened.revokes("acme.a", "1.0.0"), Some(2));
        assert!(matches!(
            reopened.observe(&signed(&key, 1, &[]), Some(&trusted)),
            Err(StatementRefused::Older { .. })
        ));
        assert_eq!(
            reopened.freshness(1_600),
            Freshness::Fresh {
                sequence: 2,
                expires_at: 1_600
            }
        );
        assert_eq!(
            reopened.freshness(1_601),
            Freshness::Expired {
                sequence: 2,
                expired_at: 1_600
            }
        );
        Ok(())
    }

    fn keyed(signer: &SecretKey, sequence: u64, keys: &[&SecretKey]) -> SignedStatement {
        StateStatement::new(
            sequence,
            1_000,
            600,
            Vec::new(),
            "sha256:00".into(),
            keys.iter().map(|key| key.public_key()).collect(),
        )
        .sign(signer)
    }

    #[test]
    fn a_statement_by_the_old_key_introduces_the_new_one_and_a_later_one_retires_the_old()
    -> Result<(), Box<dyn std::error::Error>> {
        let old = SecretKey::generate()?;
        let new = SecretKey::generate()?;
        let configured = [old.public_key()];
        let guard = StatementGuard::open(None);
        // The new key alone is not trusted yet.
        assert!(
            guard
                .observe(&keyed(&new, 1, &[&new]), Some(&configured))
                .is_err()
        );
        // Introduced by the old key: both are trusted during the overlap.
        guard.observe(&keyed(&old, 1, &[&old, &new]), Some(&configured))?;
        assert_eq!(guard.keys(), Some(vec![old.public_key(), new.public_key()]));
        guard.observe(&keyed(&new, 2, &[&new, &old]), Some(&configured))?;
        // The overlap ends: the old key is out, and what it signs is refused from then on,
        // although the configuration still names it.
        guard.observe(&keyed(&new, 3, &[&new]), Some(&configured))?;
        assert_eq!(guard.keys(), Some(vec![new.public_key()]));
        assert!(matches!(
            guard.observe(&keyed(&old, 4, &[&old]), Some(&configured)),
            Err(StatementRefused::Invalid(
                StatementError::UntrustedKey { .. }
            ))
        ));
        Ok(())
    }
}
