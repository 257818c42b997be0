//! Signing and verifying a [`Package`].

use super::{Countersignature, DeveloperSignature, PublicKey, SecretKey};
use crate::archive::Package;
use crate::canonical::Canonical;
use crate::digest::PackageDigest;
use crate::error::{Error, SignatureError};
use crate::id::PluginId;
use crate::permissions::PermissionsDigest;

/// Domain of the developer's signed message.
const DEVELOPER_DOMAIN: &str = "plinth-developer-signature/v1";
/// Domain of the marketplace's signed message.
const MARKETPLACE_DOMAIN: &str = "plinth-marketplace-countersignature/v1";

fn developer_message(digest: &PackageDigest) -> Vec<u8> {
    let mut c = Canonical::new(DEVELOPER_DOMAIN);
    c.bytes(digest.as_bytes());
    c.into_bytes()
}

fn marketplace_message(
    plugin: &PluginId,
    version: &semver::Version,
    digest: &PackageDigest,
    permissions: &PermissionsDigest,
    signed_at: i64,
) -> Vec<u8> {
    let mut c = Canonical::new(MARKETPLACE_DOMAIN);
    c.str(plugin.as_str())
        .str(&version.to_string())
        .bytes(digest.as_bytes())
        .bytes(permissions.as_bytes())
        .i64(signed_at);
    c.into_bytes()
}

/// The marketplace's countersignature of `package` at `signed_at` (Unix seconds): over the
/// plugin id, version, package digest and permissions digest. Store it with
/// [`Package::set_countersignature`] or use [`Package::countersign`].
pub fn countersign(package: &Package, key: &SecretKey, signed_at: i64) -> Countersignature {
    let manifest = &package.manifest;
    let digest = package.digest();
    let permissions_digest = manifest.permissions.digest();
    let message = marketplace_message(
        &manifest.plugin.id,
        &manifest.plugin.version,
        &digest,
        &permissions_digest,
        signed_at,
    );
    Countersignature {
        key: key.public_key(),
        plugin: manifest.plugin.id.clone(),
        version: manifest.plugin.version.clone(),
        digest,
        permissions_digest,
        signed_at,
        signature: key.sign(&message),
    }
}

fn check_key(expected: &PublicKey, found: &PublicKey) -> Result<(), SignatureError> {
    if expected == found {
        Ok(())
    } else {
        Err(SignatureError::WrongKey {
            expected: expected.fingerprint(),
            found: found.fingerprint(),
        })
    }
}

fn mismatch(field: &'static str, signed: impl ToString, actual: impl ToString) -> SignatureError {
    SignatureError::CountersignatureMismatch {
        field,
        signed: signed.to_string(),
        actual: actual.to_string(),
    }
}

impl Package {
    /// Signs the package's current digest as its developer, replacing any developer signature.
    pub fn sign(&mut self, key: &SecretKey) {
        let digest = self.digest();
        self.signature.developer = Some(DeveloperSignature {
            key: key.public_key(),
            digest,
            signature: key.sign(&developer_message(&digest)),
        });
    }

    /// Checks the developer signature: present, made by `key`, valid, and over this content.
    ///
    /// # Errors
    ///
    /// [`Error::Signature`] with [`SignatureError::MissingDeveloperSignature`],
    /// [`WrongKey`](SignatureError::WrongKey), [`BadSignature`](SignatureError::BadSignature)
    /// (the signature or the signed digest was altered) or
    /// [`DigestMismatch`](SignatureError::DigestMismatch) (the content changed after signing).
    pub fn verify_developer(&self, key: &PublicKey) -> Result<(), Error> {
        let signature = self
            .signature
            .developer
            .as_ref()
            .ok_or(SignatureError::MissingDeveloperSignature)?;
        check_key(key, &signature.key)?;
        self.verify_developer_signature(signature)
    }

    /// Checks the developer signature against the key it names (whoever that is): valid and
    /// over this content. Says nothing about whether the key is trusted.
    ///
    /// # Errors
    ///
    /// As [`verify_developer`](Self::verify_developer), without `WrongKey`.
    pub fn verify_developer_self_consistent(&self) -> Result<(), Error> {
        let signature = self
            .signature
            .developer
            .as_ref()
            .ok_or(SignatureError::MissingDeveloperSignature)?;
        self.verify_developer_signature(signature)
    }

    fn verify_developer_signature(&self, signature: &DeveloperSignature) -> Result<(), Error> {
        if !signature
            .key
            .verifies(&developer_message(&signature.digest), &signature.signature)
        {
            return Err(SignatureError::BadSignature { which: "developer" }.into());
        }
        let actual = self.digest();
        if signature.digest != actual {
            return Err(SignatureError::DigestMismatch {
                signed: signature.digest.to_string(),
                actual: actual.to_string(),
            }
            .into());
        }
        Ok(())
    }

    /// Adds the marketplace's countersignature, made now by `key` at `signed_at` (Unix seconds).
    pub fn countersign(&mut self, key: &SecretKey, signed_at: i64) {
        let countersignature = countersign(self, key, signed_at);
        self.set_countersignature(countersignature);
    }

    /// Stores a countersignature made elsewhere (e.g. by [`countersign`]).
    pub fn set_countersignature(&mut self, countersignature: Countersignature) {
        self.signature.marketplace = Some(countersignature);
    }

    /// Checks the marketplace countersignature: present, made by `key`, valid, and for this
    /// package's id, version, content and permissions.
    ///
    /// # Errors
    ///
    /// [`Error::Signature`] with [`SignatureError::MissingCountersignature`],
    /// [`WrongKey`](SignatureError::WrongKey), [`BadSignature`](SignatureError::BadSignature),
    /// [`DigestMismatch`](SignatureError::DigestMismatch) or
    /// [`CountersignatureMismatch`](SignatureError::CountersignatureMismatch).
    pub fn verify_countersignature(&self, key: &PublicKey) -> Result<(), Error> {
        let c = self
            .signature
            .marketplace
            .as_ref()
            .ok_or(SignatureError::MissingCountersignature)?;
        check_key(key, &c.key)?;
        let message = marketplace_message(
            &c.plugin,
            &c.version,
            &c.digest,
            &c.permissions_digest,
            c.signed_at,
        );
        if !c.key.verifies(&message, &c.signature) {
            return Err(SignatureError::BadSignature {
                which: "marketplace",
            }
            .into());
        }
        let manifest = &self.manifest;
        if c.plugin != manifest.plugin.id {
            return Err(mismatch("plugin", &c.plugin, &manifest.plugin.id).into());
        }
        if c.version != manifest.plugin.version {
            return Err(mismatch("version", &c.version, &manifest.plugin.version).into());
        }
        let actual = self.digest();
        if c.digest != actual {
            return Err(SignatureError::DigestMismatch {
                signed: c.digest.to_string(),
                actual: actual.to_string(),
            }
            .into());
        }
        let permissions = manifest.permissions.digest();
        if c.permissions_digest != permissions {
            return Err(mismatch("permissions", c.permissions_digest, permissions).into());
        }
        Ok(())
    }
}
