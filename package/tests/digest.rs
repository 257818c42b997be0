//! The package digest: content-addressed, deterministic, independent of archive layout.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::*;
use plinth_package::{Package, PackageDigest};
use proptest::prelude::*;

#[test]
fn digest_is_stable_text_and_ignores_the_signature() {
    let unsigned = package();
    let signed = signed_package();
    assert_eq!(unsigned.digest(), signed.digest());
    let text = unsigned.digest().to_string();
    assert_eq!(text.parse::<PackageDigest>().unwrap(), unsigned.digest());
    assert_eq!(
        serde_json::to_string(&unsigned.digest()).unwrap(),
        format!("\"{text}\"")
    );
}

#[test]
fn digest_covers_every_content_file() {
    let base = package();
    let mut no_readme = base.clone();
    no_readme.readme = None;
    let mut empty_readme = base.clone();
    empty_readme.readme = Some(String::new());
    let mut changelog = base.clone();
    changelog.changelog = Some("other".into());
    let mut wasm = base.clone();
    wasm.wasm.push(0);
    let toml = base
        .manifest_toml
        .replace("license = \"MIT\"", "license  =  \"MIT\"");
    let reformatted = Package::new(
        toml,
        base.wasm.clone(),
        base.readme.clone(),
        base.changelog.clone(),
    )
    .unwrap();
    let digests = [
        &base,
        &no_readme,
        &empty_readme,
        &changelog,
        &wasm,
        &reformatted,
    ]
    .map(Package::digest);
    for (i, a) in digests.iter().enumerate() {
        for b in &digests[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The digest is a function of content only: recomputing gives the same value, and an
    /// archive with the same files in any entry order reads back to the same digest.
    #[test]
    fn digest_is_deterministic_and_independent_of_entry_order(
        wasm in proptest::collection::vec(any::<u8>(), 0..512),
        readme in "[a-z ]{0,40}",
        order in Just(vec![0usize, 1, 2, 3]).prop_shuffle(),
    ) {
        let p = Package::new(manifest_with(""), wasm.clone(), Some(readme.clone()), Some("log".into())).unwrap();
        prop_assert_eq!(p.digest(), p.clone().digest());
        let files: [(&str, &[u8]); 4] = [
            ("plinth.toml", p.manifest_toml.as_bytes()),
            ("plugin.wasm", &wasm),
            ("README.md", readme.as_bytes()),
            ("CHANGELOG.md", b"log"),
        ];
        let shuffled: Vec<(&str, &[u8])> = order.iter().map(|&i| files[i]).collect();
        let read = Package::from_bytes(&gzip(&tar_of(&shuffled))).unwrap();
        prop_assert_eq!(read.digest(), p.digest());
    }
}
