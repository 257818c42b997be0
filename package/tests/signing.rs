//! Keys, developer signatures and marketplace countersignatures.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::*;
use plinth_package::{Error, KeyError, Package, PublicKey, SecretKey, SignatureError};

fn sig_err(result: Result<(), Error>) -> SignatureError {
    match result {
        Err(Error::Signature(e)) => e,
        other => panic!("expected a signature error, got {other:?}"),
    }
}

#[test]
fn key_files_round_trip() {
    let secret = SecretKey::generate().unwrap();
    let line = secret.to_file_string();
    assert!(line.starts_with("ed25519-secret:") && !line.contains('\n'));
    let again = SecretKey::parse(&format!("{line}\n")).unwrap();
    assert_eq!(again.public_key(), secret.public_key());
    let public = secret.public_key().to_string();
    assert!(public.starts_with("ed25519:"));
    assert_eq!(PublicKey::parse(&public).unwrap(), secret.public_key());
    assert_eq!(secret.public_key().fingerprint().len(), 16);
    assert!(
        !format!("{secret:?}").contains(&line[15..]),
        "Debug must not reveal the key"
    );
}

#[test]
fn malformed_keys_are_rejected() {
    assert!(matches!(
        PublicKey::parse("ssh-ed25519 AAAA"),
        Err(Error::Key(KeyError::MissingPrefix(_)))
    ));
    assert!(matches!(
        PublicKey::parse("ed25519:!!!"),
        Err(Error::Key(KeyError::Base64))
    ));
    assert!(matches!(
        PublicKey::parse("ed25519:AAAA"),
        Err(Error::Key(KeyError::Length(3)))
    ));
    assert!(matches!(
        SecretKey::parse(&key(1).public_key().to_string()),
        Err(Error::Key(KeyError::MissingPrefix("ed25519-secret:")))
    ));
}

#[test]
fn signed_package_verifies() {
    signed_package()
        .verify_developer(&key(1).public_key())
        .unwrap();
}

#[test]
fn unsigned_package_is_missing_its_signature() {
    assert_eq!(
        sig_err(package().verify_developer(&key(1).public_key())),
        SignatureError::MissingDeveloperSignature
    );
}

#[test]
fn wrong_key_is_reported_with_both_fingerprints() {
    let e = sig_err(signed_package().verify_developer(&key(2).public_key()));
    assert_eq!(
        e,
        SignatureError::WrongKey {
            expected: key(2).public_key().fingerprint(),
            found: key(1).public_key().fingerprint(),
        }
    );
}

#[test]
fn changed_wasm_is_a_digest_mismatch() {
    let mut p = signed_package();
    p.wasm[20] ^= 1;
    // Through the archive too: the altered package is well-formed, but no longer what was signed.
    let read = Package::from_bytes(&p.to_bytes().unwrap()).unwrap();
    assert!(matches!(
        sig_err(read.verify_developer(&key(1).public_key())),
        SignatureError::DigestMismatch { .. }
    ));
}

#[test]
fn changed_manifest_is_a_digest_mismatch() {
    let p = signed_package();
    let toml = p.manifest_toml.replace("Says hello.", "Says hullo.");
    let mut changed =
        Package::new(toml, p.wasm.clone(), p.readme.clone(), p.changelog.clone()).unwrap();
    changed.signature = p.signature.clone();
    assert!(matches!(
        sig_err(changed.verify_developer(&key(1).public_key())),
        SignatureError::DigestMismatch { .. }
    ));
    // Even a change only in the readme counts.
    let mut readme = p.clone();
    readme.readme = Some("# Changed\n".into());
    assert!(matches!(
        sig_err(readme.verify_developer(&key(1).public_key())),
        SignatureError::DigestMismatch { .. }
    ));
}

#[test]
fn changed_signature_does_not_match() {
    let mut p = signed_package();
    let dev = p.signature.developer.as_mut().unwrap();
    let mut bytes = dev.signature.to_bytes();
    bytes[5] ^= 0x40;
    dev.signature = plinth_package::SignatureValue::from_bytes(bytes);
    let read = Package::from_bytes(&p.to_bytes().unwrap()).unwrap();
    assert_eq!(
        sig_err(read.verify_developer(&key(1).public_key())),
        SignatureError::BadSignature { which: "developer" }
    );
}

#[test]
fn changed_signed_digest_does_not_match() {
    let mut p = signed_package();
    let mut other = p.clone();
    other.wasm.push(1);
    p.signature.developer.as_mut().unwrap().digest = other.digest();
    assert_eq!(
        sig_err(p.verify_developer(&key(1).public_key())),
        SignatureError::BadSignature { which: "developer" }
    );
}

#[test]
fn countersignature_verifies_and_names_its_fields() {
    let mut p = signed_package();
    let market = key(9);
    p.countersign(&market, 1_700_000_000);
    let read = Package::from_bytes(&p.to_bytes().unwrap()).unwrap();
    read.verify_countersignature(&market.public_key()).unwrap();
    read.verify_developer(&key(1).public_key()).unwrap();
    let c = read.signature.marketplace.as_ref().unwrap();
    assert_eq!(c.plugin.as_str(), "acme.hello");
    assert_eq!(c.signed_at, 1_700_000_000);
    assert_eq!(c.permissions_digest, read.manifest.permissions.digest());
}

#[test]
fn countersignature_errors_are_specific() {
    let market = key(9);
    assert_eq!(
        sig_err(signed_package().verify_countersignature(&market.public_key())),
        SignatureError::MissingCountersignature
    );
    let mut p = signed_package();
    p.countersign(&market, 5);
    assert!(matches!(
        sig_err(p.verify_countersignature(&key(8).public_key())),
        SignatureError::WrongKey { .. }
    ));
    let mut time = p.clone();
    time.signature.marketplace.as_mut().unwrap().signed_at = 6;
    assert_eq!(
        sig_err(time.verify_countersignature(&market.public_key())),
        SignatureError::BadSignature {
            which: "marketplace"
        }
    );
    // A countersignature moved onto a package with other permissions.
    let c = plinth_package::signing::countersign(&p, &market, 5);
    let toml = p
        .manifest_toml
        .replace("max-bytes = 1024", "max-bytes = 2048");
    let mut other =
        Package::new(toml, p.wasm.clone(), p.readme.clone(), p.changelog.clone()).unwrap();
    other.set_countersignature(c);
    assert!(matches!(
        sig_err(other.verify_countersignature(&market.public_key())),
        SignatureError::DigestMismatch { .. }
    ));
}

#[test]
fn signature_json_is_stable_and_readable() {
    let p = signed_package();
    let json: serde_json::Value = serde_json::from_slice(&p.signature.to_json().unwrap()).unwrap();
    assert_eq!(json["format"], 1);
    assert_eq!(json["developer"]["key"], key(1).public_key().to_string());
    assert_eq!(json["developer"]["digest"], p.digest().to_string());
    assert!(json["marketplace"].is_null());
}
