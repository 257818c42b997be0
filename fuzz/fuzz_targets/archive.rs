//! The `.plinth` reader, two ways.
//!
//! - **Raw bytes**: whatever reads is within the limits, and writing it again and reading that
//!   gives the same package with the same digest.
//! - **Arbitrary tar entries** (names that escape with `..` or `/`, links, directories, long
//!   names, duplicates, unknown files), compressed the way the writer compresses so the reader
//!   has to judge the entries: a package reads only if every entry was a regular file with one
//!   of the five known names, each at most once, and what it holds is exactly those entries'
//!   bytes; any entry with an absolute or `..` path makes the read fail.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use plinth_fuzz::gzip_tar::{self, Entry};
use plinth_package::{ArchiveLimits, Package};

/// Small limits, so that the size checks are reached with small inputs.
const LIMITS: ArchiveLimits = ArchiveLimits {
    compressed: 16 * 1024,
    wasm: 4096,
    manifest: 2048,
    readme: 512,
    changelog: 512,
    signature: 1024,
    total: 6000,
};

const KNOWN: [&str; 5] = [
    "plinth.toml",
    "plugin.wasm",
    "README.md",
    "CHANGELOG.md",
    "signature.json",
];

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0, raw)) => raw_bytes(raw),
        Some((_, rest)) => {
            let mut u = Unstructured::new(rest);
            if let Ok(mut entries) = Vec::<Entry>::arbitrary(&mut u) {
                for entry in &mut entries {
                    entry.type_flag = gzip_tar::type_flag(entry.type_flag);
                }
                entries_of(&entries);
            }
        }
        None => {}
    }
});

fn raw_bytes(bytes: &[u8]) {
    let Ok(package) = Package::from_bytes_with_limits(bytes, &LIMITS) else {
        return;
    };
    within_limits(&package);
    let written = match package.to_bytes() {
        Ok(written) => written,
        Err(e) => panic!("a package that reads does not write: {e}"),
    };
    let again = match Package::from_bytes_with_limits(&written, &LIMITS) {
        Ok(again) => again,
        Err(e) => panic!("a package that reads, written again, does not read: {e}"),
    };
    assert_eq!(again, package);
    assert_eq!(again.digest(), package.digest());
}

fn entries_of(entries: &[Entry]) {
    let bytes = gzip_tar::gzip(&gzip_tar::tar(entries));
    let result = Package::from_bytes_with_limits(&bytes, &LIMITS);
    let escapes = entries.iter().any(|entry| {
        let name = String::from_utf8_lossy(&entry.name.bytes()).into_owned();
        name.starts_with('/')
            || name.starts_with('\\')
            || name.split(['/', '\\']).any(|part| part == "..")
    });
    let Ok(package) = result else {
        return;
    };
    assert!(
        !escapes,
        "a package with an escaping path read: {entries:?}"
    );
    within_limits(&package);
    let mut held = BTreeMap::new();
    for entry in entries {
        assert!(
            entry.is_regular(),
            "a non-regular entry was accepted: {entry:?}"
        );
        let name = entry.name.bytes();
        let Some(known) = KNOWN.iter().find(|k| k.as_bytes() == name) else {
            panic!(
                "an unknown entry was accepted: {:?}",
                String::from_utf8_lossy(&name)
            );
        };
        assert!(
            held.insert(*known, entry.content.clone()).is_none(),
            "a duplicate entry was accepted: {known}"
        );
    }
    assert_eq!(
        held.get("plinth.toml").map(Vec::as_slice),
        Some(package.manifest_toml.as_bytes())
    );
    assert_eq!(held.get("plugin.wasm"), Some(&package.wasm));
    assert_eq!(
        held.get("README.md").map(Vec::as_slice),
        package.readme.as_deref().map(str::as_bytes)
    );
    assert_eq!(
        held.get("CHANGELOG.md").map(Vec::as_slice),
        package.changelog.as_deref().map(str::as_bytes)
    );
}

fn within_limits(package: &Package) {
    assert!(package.manifest_toml.len() as u64 <= LIMITS.manifest);
    assert!(package.wasm.len() as u64 <= LIMITS.wasm);
    assert!(package.readme.as_ref().map_or(0, String::len) as u64 <= LIMITS.readme);
    assert!(package.changelog.as_ref().map_or(0, String::len) as u64 <= LIMITS.changelog);
}
