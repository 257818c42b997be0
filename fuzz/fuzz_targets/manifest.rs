//! `plinth.toml`: any text either fails to parse with a typed error, or parses to a manifest
//! that serialises back to TOML and parses again to the same manifest (so what the marketplace
//! stores and shows is what the developer wrote), whose grants are sorted and unique, and whose
//! permission digest depends only on those grants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_package::Manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(manifest) = Manifest::parse(text) else {
        return;
    };
    let written = match toml::to_string(&manifest) {
        Ok(written) => written,
        Err(e) => panic!("a parsed manifest does not serialise: {e}\n{manifest:?}"),
    };
    let reparsed = match Manifest::parse(&written) {
        Ok(reparsed) => reparsed,
        Err(e) => panic!("a parsed manifest, written back, does not parse: {e}\n{written}"),
    };
    assert_eq!(
        reparsed, manifest,
        "round trip changed the manifest:\n{written}"
    );

    let grants = manifest.permissions.grants();
    assert!(
        grants.windows(2).all(|w| w[0] < w[1]),
        "grants not sorted and unique"
    );
    for grant in &grants {
        assert!(
            manifest.permissions.covers(grant),
            "{grant:?} not covered by its own set"
        );
    }
    assert!(manifest.permissions.is_subset_of(&manifest.permissions));
    assert_eq!(manifest.permissions.sentences().len(), grants.len());
    assert_eq!(manifest.permissions.digest(), reparsed.permissions.digest());
});
