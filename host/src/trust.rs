//! [`TrustPolicy`]: which packages this host will load.
//!
//! In production ([`TrustPolicy::enforce`]) a package is loaded only if
//!
//! 1. its developer signature is valid and covers the package's current content (its digest),
//!    and
//! 2. it carries a marketplace countersignature, made by one of the marketplace keys this host
//!    trusts, over the package's id, version, digest and permission set.
//!
//! The developer's key is vouched for by the countersignature: the marketplace countersigns
//! only versions signed by a key registered to the publisher.
//!
//! [`TrustPolicy::development`] loads any package, signed or not, for local development, and
//! logs a warning on every check saying that signatures are not being checked.
//!
//! A successful check returns a [`TrustedPackage`], which borrows the package: while it lives
//! the package cannot be changed, so code that takes a `TrustedPackage` knows it runs what was
//! checked.
//!
//! ```
//! use plinth_host::trust::{TrustError, TrustPolicy};
//! use plinth_package::{Package, SecretKey};
//! # let manifest = "[plugin]\nid = \"acme.hello\"\nversion = \"1.0.0\"\nname = \"Hello\"\n\
//! #     description = \"Hi.\"\nlicense = \"MIT\"\napi = \"^0.1\"\n";
//! let mut package = Package::new(manifest.to_owned(), b"\0asm\x0d\0\x01\0".to_vec(), None, None)?;
//! let developer = SecretKey::generate()?;
//! let marketplace = SecretKey::generate()?;
//! let policy = TrustPolicy::enforce(vec![marketplace.public_key()]);
//!
//! assert!(matches!(policy.check(&package), Err(TrustError::Unsigned)));
//! package.sign(&developer);
//! assert!(matches!(policy.check(&package), Err(TrustError::NotCountersigned)));
//! package.countersign(&marketplace, 1_700_000_000);
//! let trusted = policy.check(&package)?;
//! assert_eq!(trusted.package().manifest.plugin.id.as_str(), "acme.hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use plinth_package::{
    Countersignature, Package, PackageDigest, PublicKey, SignatureError, SignatureFile,
};

/// Which packages a host loads. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    mode: Mode,
}

#[derive(Debug, Clone)]
enum Mode {
    /// Both signatures required; countersignatures only from these keys.
    Enforce { marketplace_keys: Vec<PublicKey> },
    /// Nothing checked.
    Development,
}

/// Why a package is not trusted. Every variant refuses the package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The package carries no signature at all.
    #[error(
        "the package is not signed; only packages signed by their developer and countersigned by the marketplace can be loaded"
    )]
    Unsigned,
    /// The package is countersigned but carries no developer signature.
    #[error("the package is not signed by its developer")]
    MissingDeveloperSignature,
    /// The developer signature does not verify: it, or the digest it names, was altered.
    #[error("the developer signature (key {key}) is not valid: it was tampered with")]
    DeveloperSignatureInvalid {
        /// Fingerprint of the key the signature names.
        key: String,
    },
    /// The developer signature is valid but for other content: the package changed after it
    /// was signed.
    #[error("the package changed after it was signed (signed {signed}, now {actual})")]
    Tampered {
        /// The digest the developer signed.
        signed: String,
        /// The digest of the package as it is.
        actual: String,
    },
    /// The package has no marketplace countersignature (it was not approved).
    #[error("the package has no marketplace countersignature; it was not approved")]
    NotCountersigned,
    /// The countersignature was made by a key this host does not trust.
    #[error("the package is countersigned by key {fingerprint}, which this host does not trust")]
    UntrustedMarketplaceKey {
        /// Fingerprint of the key that made the countersignature.
        fingerprint: String,
    },
    /// The countersignature does not verify: it, or what it names, was altered.
    #[error("the marketplace countersignature (key {key}) is not valid: it was tampered with")]
    CountersignatureInvalid {
        /// Fingerprint of the marketplace key.
        key: String,
    },
    /// The countersignature is valid but approves another plugin, version, content or
    /// permission set than this package's.
    #[error(
        "the marketplace countersignature is for {field} {signed}, but the package has {actual}"
    )]
    CountersignatureMismatch {
        /// `plugin`, `version`, `digest` or `permissions`.
        field: &'static str,
        /// What was countersigned.
        signed: String,
        /// What the package has.
        actual: String,
    },
    /// The newest marketplace state statement this host has seen revokes this version (a
    /// security yank, or a blocked plugin), whatever storage says.
    #[error("{plugin} {version} is revoked by marketplace state statement {sequence}")]
    Revoked {
        /// The plugin id.
        plugin: String,
        /// The version.
        version: String,
        /// The statement that revokes it.
        sequence: u64,
    },
    /// A signature check failed in a way this host does not know about.
    #[error("the package's signatures could not be verified: {0}")]
    Unverifiable(String),
}

/// Why a package was trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TrustBasis {
    /// Signed by its developer and countersigned by a trusted marketplace key.
    Countersigned,
    /// Loaded under [`TrustPolicy::development`]: nothing was checked.
    Development,
}

/// A package that passed [`TrustPolicy::check`]. It borrows the package, which therefore
/// cannot change while this exists.
#[derive(Debug, Clone, Copy)]
pub struct TrustedPackage<'a> {
    package: &'a Package,
    digest: PackageDigest,
    basis: TrustBasis,
}

impl<'a> TrustedPackage<'a> {
    /// The checked package.
    pub fn package(&self) -> &'a Package {
        self.package
    }

    /// The package digest that was checked.
    pub fn digest(&self) -> PackageDigest {
        self.digest
    }

    /// Why the package was trusted.
    pub fn basis(&self) -> TrustBasis {
        self.basis
    }

    /// Whether the package was loaded without checking signatures (development mode).
    pub fn is_unverified(&self) -> bool {
        self.basis == TrustBasis::Development
    }

    /// The developer's key, whose signature was verified; `None` in development mode.
    pub fn developer_key(&self) -> Option<&'a PublicKey> {
        self.verified_signatures()
            .and_then(|s| s.developer.as_ref())
            .map(|d| &d.key)
    }

    /// The verified marketplace countersignature (its key, time and what it approved);
    /// `None` in development mode.
    pub fn countersignature(&self) -> Option<&'a Countersignature> {
        self.verified_signatures()
            .and_then(|s| s.marketplace.as_ref())
    }

    fn verified_signatures(&self) -> Option<&'a SignatureFile> {
        match self.basis {
            TrustBasis::Countersigned => Some(&self.package.signature),
            TrustBasis::Development => None,
        }
    }
}

impl TrustPolicy {
    /// The production policy: both signatures required, countersignatures accepted only from
    /// `marketplace_keys`. With no keys, every package is refused.
    pub fn enforce(marketplace_keys: Vec<PublicKey>) -> TrustPolicy {
        TrustPolicy {
            mode: Mode::Enforce { marketplace_keys },
        }
    }

    /// Local development: loads unsigned and self-signed packages, and warns on every check
    /// that signatures are not being checked. Never use it in production.
    pub fn development() -> TrustPolicy {
        tracing::warn!(
            "trust policy is DEVELOPMENT: package signatures are NOT checked; never use this in production"
        );
        TrustPolicy {
            mode: Mode::Development,
        }
    }

    /// The marketplace keys trusted for countersignatures and state statements; `None` under
    /// the development policy (which checks nothing).
    pub fn marketplace_keys(&self) -> Option<&[PublicKey]> {
        match &self.mode {
            Mode::Enforce { marketplace_keys } => Some(marketplace_keys),
            Mode::Development => None,
        }
    }

    /// Whether this is the development policy.
    pub fn is_development(&self) -> bool {
        matches!(self.mode, Mode::Development)
    }

    /// Checks that `package` may be loaded.
    ///
    /// # Errors
    ///
    /// Under [`enforce`](Self::enforce), a [`TrustError`] naming the first check that failed,
    /// in this order: unsigned, developer signature (missing, invalid, content changed),
    /// countersignature (missing, untrusted key, invalid, for another package). Never under
    /// [`development`](Self::development).
    pub fn check<'a>(&self, package: &'a Package) -> Result<TrustedPackage<'a>, TrustError> {
        self.check_with(package, None)
    }

    /// [`check`](Self::check), with the marketplace keys a state statement named in place of
    /// the configured ones when `rotated` is given (a key rotation: see
    /// [`crate::statements`]). The development policy still checks nothing.
    ///
    /// # Errors
    ///
    /// As [`check`](Self::check).
    pub fn check_with<'a>(
        &self,
        package: &'a Package,
        rotated: Option<&[PublicKey]>,
    ) -> Result<TrustedPackage<'a>, TrustError> {
        let digest = package.digest();
        let manifest = &package.manifest;
        let marketplace_keys = match &self.mode {
            Mode::Development => {
                tracing::warn!(
                    plugin = %manifest.plugin.id,
                    version = %manifest.plugin.version,
                    %digest,
                    "loading a package WITHOUT checking its signatures (development trust policy)"
                );
                return Ok(TrustedPackage {
                    package,
                    digest,
                    basis: TrustBasis::Development,
                });
            }
            Mode::Enforce { marketplace_keys } => rotated.unwrap_or(marketplace_keys),
        };

        let signatures = &package.signature;
        if signatures.is_empty() {
            return Err(TrustError::Unsigned);
        }
        let developer = signatures
            .developer
            .as_ref()
            .ok_or(TrustError::MissingDeveloperSignature)?;
        package
            .verify_developer_self_consistent()
            .map_err(|e| developer_error(e, &developer.key))?;

        let countersignature = signatures
            .marketplace
            .as_ref()
            .ok_or(TrustError::NotCountersigned)?;
        if !marketplace_keys.contains(&countersignature.key) {
            return Err(TrustError::UntrustedMarketplaceKey {
                fingerprint: countersignature.key.fingerprint(),
            });
        }
        package
            .verify_countersignature(&countersignature.key)
            .map_err(|e| countersignature_error(e, &countersignature.key))?;

        tracing::debug!(
            plugin = %manifest.plugin.id,
            version = %manifest.plugin.version,
            %digest,
            developer = %developer.key.fingerprint(),
            marketplace = %countersignature.key.fingerprint(),
            "package signatures verified"
        );
        Ok(TrustedPackage {
            package,
            digest,
            basis: TrustBasis::Countersigned,
        })
    }
}

/// The [`TrustError`] for a failed developer signature check.
fn developer_error(error: plinth_package::Error, key: &PublicKey) -> TrustError {
    match error {
        plinth_package::Error::Signature(SignatureError::MissingDeveloperSignature) => {
            TrustError::MissingDeveloperSignature
        }
        plinth_package::Error::Signature(SignatureError::BadSignature { .. }) => {
            TrustError::DeveloperSignatureInvalid {
                key: key.fingerprint(),
            }
        }
        plinth_package::Error::Signature(SignatureError::DigestMismatch { signed, actual }) => {
            TrustError::Tampered { signed, actual }
        }
        other => TrustError::Unverifiable(other.to_string()),
    }
}

/// The [`TrustError`] for a failed countersignature check (the developer signature already
/// matched the content, so a digest mismatch means the countersignature is for another package).
fn countersignature_error(error: plinth_package::Error, key: &PublicKey) -> TrustError {
    match error {
        plinth_package::Error::Signature(SignatureError::MissingCountersignature) => {
            TrustError::NotCountersigned
        }
        plinth_package::Error::Signature(SignatureError::WrongKey { found, .. }) => {
            TrustError::UntrustedMarketplaceKey { fingerprint: found }
        }
        plinth_package::Error::Signature(SignatureError::BadSignature { .. }) => {
            TrustError::CountersignatureInvalid {
                key: key.fingerprint(),
            }
        }
        plinth_package::Error::Signature(SignatureError::DigestMismatch { signed, actual }) => {
            TrustError::CountersignatureMismatch {
                field: "digest",
                signed,
                actual,
            }
        }
        plinth_package::Error::Signature(SignatureError::CountersignatureMismatch {
            field,
            signed,
            actual,
        }) => TrustError::CountersignatureMismatch {
            field,
            signed,
            actual,
        },
        other => TrustError::Unverifiable(other.to_string()),
    }
}
