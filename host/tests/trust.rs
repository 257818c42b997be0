//! The trust policy: only packages signed by their developer and countersigned by a trusted
//! marketplace key are loaded, except in development mode.

use std::path::Path;

use plinth_host::trust::{TrustBasis, TrustError, TrustPolicy};
use plinth_package::{Package, SecretKey};
use plinth_test_artifacts::HELLO;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SIGNED_AT: i64 = 1_750_000_000;

/// The hello plugin as an unsigned package.
fn hello() -> Result<Package, Box<dyn std::error::Error>> {
    let manifest = std::fs::read_to_string(Path::new(HELLO.dir).join("plinth.toml"))?;
    let wasm = std::fs::read(HELLO.wasm)?;
    Ok(Package::new(manifest, wasm, None, None)?)
}

struct Keys {
    developer: SecretKey,
    marketplace: SecretKey,
}

fn keys() -> Result<Keys, plinth_package::Error> {
    Ok(Keys {
        developer: SecretKey::generate()?,
        marketplace: SecretKey::generate()?,
    })
}

/// Hello, signed by the developer and countersigned by the marketplace.
fn approved(keys: &Keys) -> Result<Package, Box<dyn std::error::Error>> {
    let mut package = hello()?;
    package.sign(&keys.developer);
    package.countersign(&keys.marketplace, SIGNED_AT);
    Ok(package)
}

fn policy(keys: &Keys) -> TrustPolicy {
    TrustPolicy::enforce(vec![keys.marketplace.public_key()])
}

#[test]
fn a_signed_and_countersigned_package_is_trusted() -> TestResult {
    let keys = keys()?;
    let package = approved(&keys)?;
    let trusted = policy(&keys).check(&package)?;
    assert_eq!(trusted.digest(), package.digest());
    assert!(std::ptr::eq(trusted.package(), &package));
    assert!(!trusted.is_unverified());
    assert_eq!(trusted.basis(), TrustBasis::Countersigned);
    assert_eq!(trusted.developer_key(), Some(&keys.developer.public_key()));
    let countersignature = trusted
        .countersignature()
        .ok_or("a trusted package is countersigned")?;
    assert_eq!(countersignature.key, keys.marketplace.public_key());
    assert_eq!(countersignature.signed_at, SIGNED_AT);
    Ok(())
}

#[test]
fn a_package_read_back_from_its_archive_is_trusted() -> TestResult {
    let keys = keys()?;
    let bytes = approved(&keys)?.to_bytes()?;
    let package = Package::from_bytes(&bytes)?;
    policy(&keys).check(&package)?;
    Ok(())
}

#[test]
fn any_of_several_marketplace_keys_is_accepted() -> TestResult {
    let keys = keys()?;
    let other = SecretKey::generate()?;
    let policy = TrustPolicy::enforce(vec![other.public_key(), keys.marketplace.public_key()]);
    policy.check(&approved(&keys)?)?;
    Ok(())
}

#[test]
fn an_unsigned_package_is_refused() -> TestResult {
    let keys = keys()?;
    let result = policy(&keys).check(&hello()?).map(|_| ());
    assert_eq!(result, Err(TrustError::Unsigned));
    Ok(())
}

#[test]
fn a_package_signed_but_not_countersigned_is_refused() -> TestResult {
    let keys = keys()?;
    let mut package = hello()?;
    package.sign(&keys.developer);
    let result = policy(&keys).check(&package).map(|_| ());
    assert_eq!(result, Err(TrustError::NotCountersigned));
    Ok(())
}

#[test]
fn a_countersigned_package_without_developer_signature_is_refused() -> TestResult {
    let keys = keys()?;
    let mut package = hello()?;
    package.countersign(&keys.marketplace, SIGNED_AT);
    let result = policy(&keys).check(&package).map(|_| ());
    assert_eq!(result, Err(TrustError::MissingDeveloperSignature));
    Ok(())
}

#[test]
fn a_countersignature_by_an_untrusted_key_is_refused() -> TestResult {
    let keys = keys()?;
    let rogue = SecretKey::generate()?;
    let mut package = hello()?;
    package.sign(&keys.developer);
    package.countersign(&rogue, SIGNED_AT);
    let result = policy(&keys).check(&package).map(|_| ());
    assert_eq!(
        result,
        Err(TrustError::UntrustedMarketplaceKey {
            fingerprint: rogue.public_key().fingerprint()
        })
    );
    // The developer's own key is no marketplace key either.
    let mut self_approved = hello()?;
    self_approved.sign(&keys.developer);
    self_approved.countersign(&keys.developer, SIGNED_AT);
    assert!(matches!(
        policy(&keys).check(&self_approved),
        Err(TrustError::UntrustedMarketplaceKey { .. })
    ));
    // Enforcing with no keys trusts nothing.
    assert!(matches!(
        TrustPolicy::enforce(Vec::new()).check(&approved(&keys)?),
        Err(TrustError::UntrustedMarketplaceKey { .. })
    ));
    Ok(())
}

#[test]
fn a_package_changed_after_countersigning_is_refused() -> TestResult {
    let keys = keys()?;
    let policy = policy(&keys);
    let mut package = approved(&keys)?;
    policy.check(&package)?;

    let last = package.wasm.len() - 1;
    package.wasm[last] ^= 1;
    assert!(matches!(
        policy.check(&package),
        Err(TrustError::Tampered { .. })
    ));

    // The manifest too (here: one more permission).
    let mut package = approved(&keys)?;
    package.manifest_toml.push_str("config = true\n");
    package.manifest = plinth_package::Manifest::parse(&package.manifest_toml)?;
    assert!(matches!(
        policy.check(&package),
        Err(TrustError::Tampered { .. })
    ));
    Ok(())
}

#[test]
fn a_forged_developer_signature_is_refused() -> TestResult {
    let keys = keys()?;
    let mut package = approved(&keys)?;
    let developer = package
        .signature
        .developer
        .as_mut()
        .ok_or("approved packages are signed")?;
    let mut bytes = developer.signature.to_bytes();
    bytes[0] ^= 1;
    developer.signature = plinth_package::SignatureValue::from_bytes(bytes);
    let result = policy(&keys).check(&package).map(|_| ());
    assert_eq!(
        result,
        Err(TrustError::DeveloperSignatureInvalid {
            key: keys.developer.public_key().fingerprint()
        })
    );
    Ok(())
}

#[test]
fn a_re_signed_package_with_a_stale_countersignature_is_refused() -> TestResult {
    // The developer changes the wasm after approval and signs again: the developer signature
    // is valid, but the countersignature approves the old content.
    let keys = keys()?;
    let mut package = approved(&keys)?;
    let last = package.wasm.len() - 1;
    package.wasm[last] ^= 1;
    package.sign(&keys.developer);
    let result = policy(&keys).check(&package);
    assert!(
        matches!(
            result,
            Err(TrustError::CountersignatureMismatch {
                field: "digest",
                ..
            })
        ),
        "{result:?}"
    );
    Ok(())
}

#[test]
fn an_altered_countersignature_is_refused() -> TestResult {
    // Backdating the approval breaks the marketplace's signature.
    let keys = keys()?;
    let mut package = approved(&keys)?;
    let countersignature = package
        .signature
        .marketplace
        .as_mut()
        .ok_or("approved packages are countersigned")?;
    countersignature.signed_at -= 1;
    let result = policy(&keys).check(&package).map(|_| ());
    assert_eq!(
        result,
        Err(TrustError::CountersignatureInvalid {
            key: keys.marketplace.public_key().fingerprint()
        })
    );
    Ok(())
}

#[test]
fn development_mode_accepts_unsigned_and_self_signed_packages() -> TestResult {
    let policy = TrustPolicy::development();
    assert!(policy.is_development());

    let unsigned = hello()?;
    let trusted = policy.check(&unsigned)?;
    assert!(trusted.is_unverified());
    assert_eq!(trusted.basis(), TrustBasis::Development);
    assert_eq!(trusted.developer_key(), None);
    assert!(trusted.countersignature().is_none());
    assert_eq!(trusted.digest(), unsigned.digest());

    let developer = SecretKey::generate()?;
    let mut self_signed = hello()?;
    self_signed.sign(&developer);
    self_signed.countersign(&developer, SIGNED_AT);
    assert!(policy.check(&self_signed)?.is_unverified());
    Ok(())
}

#[test]
fn enforce_mode_is_not_development() -> TestResult {
    let keys = keys()?;
    assert!(!policy(&keys).is_development());
    Ok(())
}
