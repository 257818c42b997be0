//! Helpers shared by the integration tests: manifests, packages and hand-built archives.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::io::Write as _;

use flate2::Compression;
use flate2::write::DeflateEncoder;
use plinth_package::{Package, SecretKey};

/// The fixed `.plinth` gzip header.
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// An empty but valid component.
pub const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

/// A minimal valid manifest with `extra` appended.
pub fn manifest_with(extra: &str) -> String {
    format!(
        r#"[plugin]
id = "acme.hello"
version = "1.2.0"
name = "Hello"
description = "Says hello."
license = "MIT"
categories = ["examples"]
api = "^0.1"
{extra}"#
    )
}

/// A deterministic key for tests.
pub fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

/// An unsigned package with some wasm bytes, a readme and a changelog.
pub fn package() -> Package {
    let manifest = manifest_with(
        "[permissions]\nkv = { max-bytes = 1024 }\nevents = { subscribe = [\"greet\"] }\n",
    );
    let wasm = [EMPTY_COMPONENT, &[7u8; 300]].concat();
    Package::new(
        manifest,
        wasm,
        Some("# Hello\n".into()),
        Some("## 1.2.0\n".into()),
    )
    .unwrap_or_else(|e| panic!("test package: {e}"))
}

/// The test package signed with `key(1)`.
pub fn signed_package() -> Package {
    let mut p = package();
    p.sign(&key(1));
    p
}

/// A tar entry with a raw name (no sanitising) and type.
pub fn raw_entry(out: &mut Vec<u8>, name: &[u8], kind: tar::EntryType, data: &[u8]) {
    raw_entry_with_size(out, name, kind, data, data.len() as u64);
}

/// A tar entry whose header claims `size` while carrying `data`.
pub fn raw_entry_with_size(
    out: &mut Vec<u8>,
    name: &[u8],
    kind: tar::EntryType,
    data: &[u8],
    size: u64,
) {
    out.extend_from_slice(&raw_header(name, kind, size));
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

/// A ustar header block with a raw name.
pub fn raw_header(name: &[u8], kind: tar::EntryType, size: u64) -> [u8; 512] {
    let mut header = tar::Header::new_ustar();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(kind);
    if kind == tar::EntryType::Symlink || kind == tar::EntryType::Link {
        header.as_old_mut().linkname[..11].copy_from_slice(b"plugin.wasm");
    }
    header.set_cksum();
    *header.as_bytes()
}

/// Ends a tar stream.
pub fn end_tar(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0u8; 1024]);
}

/// A valid tar of `entries` (regular files).
pub fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in entries {
        raw_entry(&mut out, name.as_bytes(), tar::EntryType::Regular, data);
    }
    end_tar(&mut out);
    out
}

/// Wraps tar bytes in the canonical `.plinth` gzip member.
pub fn gzip(tar: &[u8]) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(GZIP_HEADER.to_vec(), Compression::default());
    encoder.write_all(tar).unwrap_or_else(|e| panic!("{e}"));
    let mut out = encoder.finish().unwrap_or_else(|e| panic!("{e}"));
    let mut crc = flate2::Crc::new();
    crc.update(tar);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(tar.len() as u32).to_le_bytes());
    out
}

/// The content entries of the test package, for hand-built archives.
pub fn good_entries() -> Vec<(&'static str, Vec<u8>)> {
    let p = package();
    vec![
        ("plinth.toml", p.manifest_toml.into_bytes()),
        ("plugin.wasm", p.wasm),
    ]
}

/// A gzip'd tar of the good entries plus `extra` raw bytes appended to the tar (before its end).
pub fn archive_with(extra: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in good_entries() {
        raw_entry(&mut out, name.as_bytes(), tar::EntryType::Regular, &data);
    }
    extra(&mut out);
    end_tar(&mut out);
    gzip(&out)
}
