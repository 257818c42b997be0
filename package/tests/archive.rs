//! The `.plinth` archive: deterministic writing, atomic files, and defensive reading.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::io::{Read as _, Write as _};

use common::*;
use flate2::Compression;
use flate2::write::DeflateEncoder;
use plinth_package::{ArchiveError, ArchiveLimits, Error, Package, SignatureError};
use proptest::prelude::*;

fn archive_err(bytes: &[u8]) -> ArchiveError {
    archive_err_with(bytes, &ArchiveLimits::default())
}

fn archive_err_with(bytes: &[u8], limits: &ArchiveLimits) -> ArchiveError {
    match Package::from_bytes_with_limits(bytes, limits) {
        Err(Error::Archive(e)) => e,
        Err(other) => panic!("expected an archive error, got {other:?}"),
        Ok(_) => panic!("expected an archive error, the package was accepted"),
    }
}

#[test]
fn write_then_read_round_trips() {
    let p = signed_package();
    let bytes = p.to_bytes().unwrap();
    let read = Package::from_bytes(&bytes).unwrap();
    assert_eq!(read, p);
    read.verify_developer(&key(1).public_key()).unwrap();
}

#[test]
fn unsigned_package_has_no_signature_entry() {
    let p = package();
    let read = Package::from_bytes(&p.to_bytes().unwrap()).unwrap();
    assert!(read.signature.is_empty());
    assert_eq!(read, p);
}

#[test]
fn writing_is_deterministic_with_fixed_metadata() {
    let p = signed_package();
    let a = p.to_bytes().unwrap();
    assert_eq!(a, p.to_bytes().unwrap());
    assert_eq!(a[..10], GZIP_HEADER);
    let mut decoder = flate2::read::GzDecoder::new(a.as_slice());
    let mut archive = tar::Archive::new(&mut decoder);
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), 0);
            assert_eq!(h.mode().unwrap(), 0o644);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            e.path().unwrap().display().to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "plinth.toml",
            "plugin.wasm",
            "README.md",
            "CHANGELOG.md",
            "signature.json"
        ]
    );
}

#[test]
fn file_name_is_id_and_version() {
    assert_eq!(package().file_name(), "acme.hello-1.2.0.plinth");
}

#[test]
fn write_to_creates_the_file_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.plinth");
    let p = signed_package();
    p.write_to(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), p.to_bytes().unwrap());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file may remain");
}

#[test]
fn write_to_a_missing_directory_fails_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("x.plinth");
    let e = package().write_to(&path).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn write_to_over_a_directory_fails_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("taken");
    std::fs::create_dir(&path).unwrap();
    let e = package().write_to(&path).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(path.is_dir(), "the directory is untouched");
    assert_eq!(std::fs::read_dir(&path).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file remains"
    );
}

#[test]
fn truncated_package_is_rejected() {
    let bytes = signed_package().to_bytes().unwrap();
    for cut in [
        5,
        10,
        11,
        bytes.len() / 2,
        bytes.len() - 8,
        bytes.len() - 3,
        bytes.len() - 1,
    ] {
        let e = archive_err(&bytes[..cut]);
        assert!(
            matches!(e, ArchiveError::Truncated),
            "cut at {cut} of {}: {e:?}",
            bytes.len()
        );
    }
}

#[test]
fn empty_input_is_truncated() {
    assert_eq!(archive_err(&[]), ArchiveError::Truncated);
}

#[test]
fn trailing_garbage_is_rejected() {
    let mut bytes = package().to_bytes().unwrap();
    bytes.extend_from_slice(b"garbage");
    assert_eq!(
        archive_err(&bytes),
        ArchiveError::TrailingBytes { count: 7 }
    );
    // A second gzip member counts as trailing bytes too.
    let mut twice = package().to_bytes().unwrap();
    twice.extend_from_slice(&package().to_bytes().unwrap());
    assert!(matches!(
        archive_err(&twice),
        ArchiveError::TrailingBytes { .. }
    ));
}

#[test]
fn non_canonical_gzip_header_is_rejected() {
    let good = package().to_bytes().unwrap();
    // A header with a file name flag (as `gzip` writes) or a real mtime.
    for (index, value) in [
        (3usize, 0x08u8),
        (4, 0x5f),
        (8, 2),
        (9, 3),
        (0, 0x1e),
        (2, 7),
    ] {
        let mut bytes = good.clone();
        bytes[index] = value;
        assert_eq!(
            archive_err(&bytes),
            ArchiveError::NonCanonicalGzipHeader,
            "byte {index}"
        );
    }
    // A standard gzip of the same tar is refused for its header alone.
    let mut encoder = flate2::GzBuilder::new()
        .mtime(1_700_000_000)
        .write(Vec::new(), Compression::default());
    encoder
        .write_all(&tar_of(&[("plinth.toml", b"x")]))
        .unwrap();
    assert_eq!(
        archive_err(&encoder.finish().unwrap()),
        ArchiveError::NonCanonicalGzipHeader
    );
}

#[test]
fn zip_slip_entries_are_rejected() {
    let dotdot = archive_with(|t| raw_entry(t, b"../x", tar::EntryType::Regular, b"evil"));
    assert_eq!(
        archive_err(&dotdot),
        ArchiveError::PathTraversal("../x".into())
    );
    let inner = archive_with(|t| raw_entry(t, b"a/../../x", tar::EntryType::Regular, b"evil"));
    assert_eq!(
        archive_err(&inner),
        ArchiveError::PathTraversal("a/../../x".into())
    );
    let abs = archive_with(|t| raw_entry(t, b"/abs", tar::EntryType::Regular, b"evil"));
    assert_eq!(archive_err(&abs), ArchiveError::AbsolutePath("/abs".into()));
}

#[test]
fn symlink_and_hardlink_entries_are_rejected() {
    let sym = archive_with(|t| raw_entry(t, b"README.md", tar::EntryType::Symlink, b""));
    assert_eq!(
        archive_err(&sym),
        ArchiveError::Link {
            name: "README.md".into(),
            kind: "symbolic link"
        }
    );
    let hard = archive_with(|t| raw_entry(t, b"README.md", tar::EntryType::Link, b""));
    assert_eq!(
        archive_err(&hard),
        ArchiveError::Link {
            name: "README.md".into(),
            kind: "hard link"
        }
    );
}

#[test]
fn directories_devices_and_extension_headers_are_rejected() {
    for kind in [
        tar::EntryType::Directory,
        tar::EntryType::Char,
        tar::EntryType::Block,
        tar::EntryType::Fifo,
        tar::EntryType::XHeader,
        tar::EntryType::GNULongName,
    ] {
        let bytes = archive_with(|t| raw_entry(t, b"README.md", kind, b""));
        assert!(
            matches!(archive_err(&bytes), ArchiveError::NotRegularFile { ref name, .. } if name == "README.md"),
            "{kind:?}"
        );
    }
}

#[test]
fn duplicate_entries_are_rejected() {
    let bytes = archive_with(|t| raw_entry(t, b"plugin.wasm", tar::EntryType::Regular, b"again"));
    assert_eq!(
        archive_err(&bytes),
        ArchiveError::DuplicateEntry("plugin.wasm".into())
    );
}

#[test]
fn unknown_entries_are_rejected() {
    for name in [
        &b"extra.txt"[..],
        b"./plinth.toml",
        b"dir/plugin.wasm",
        b"PLUGIN.WASM",
    ] {
        let bytes = archive_with(|t| raw_entry(t, name, tar::EntryType::Regular, b"x"));
        assert_eq!(
            archive_err(&bytes),
            ArchiveError::UnknownEntry(String::from_utf8_lossy(name).into_owned())
        );
    }
}

#[test]
fn missing_manifest_or_wasm_is_rejected() {
    let p = package();
    let no_wasm = gzip(&tar_of(&[("plinth.toml", p.manifest_toml.as_bytes())]));
    assert_eq!(
        archive_err(&no_wasm),
        ArchiveError::MissingEntry("plugin.wasm")
    );
    let no_manifest = gzip(&tar_of(&[("plugin.wasm", &p.wasm)]));
    assert_eq!(
        archive_err(&no_manifest),
        ArchiveError::MissingEntry("plinth.toml")
    );
}

#[test]
fn non_utf8_text_is_rejected() {
    let bytes =
        archive_with(|t| raw_entry(t, b"README.md", tar::EntryType::Regular, &[0xff, 0xfe]));
    assert_eq!(
        archive_err(&bytes),
        ArchiveError::NotUtf8("README.md".into())
    );
}

#[test]
fn invalid_manifest_inside_is_a_manifest_error() {
    let bytes = gzip(&tar_of(&[
        ("plinth.toml", b"[plugin]\nid = 3\n"),
        ("plugin.wasm", EMPTY_COMPONENT),
    ]));
    assert!(
        matches!(Package::from_bytes(&bytes), Err(Error::Manifest(e)) if e.path == "plugin.id")
    );
}

#[test]
fn malformed_signature_file_is_rejected() {
    let bytes =
        archive_with(|t| raw_entry(t, b"signature.json", tar::EntryType::Regular, b"{nope"));
    assert!(matches!(
        archive_err(&bytes),
        ArchiveError::InvalidSignatureFile(_)
    ));
    let future = archive_with(|t| {
        raw_entry(
            t,
            b"signature.json",
            tar::EntryType::Regular,
            br#"{"format":2,"developer":null,"marketplace":null}"#,
        )
    });
    assert!(matches!(
        Package::from_bytes(&future),
        Err(Error::Signature(SignatureError::UnsupportedFormat(2)))
    ));
}

#[test]
fn oversize_entry_is_rejected_from_its_header_before_reading() {
    // The header claims 1 TiB but carries 4 bytes: refused from the header alone, without
    // allocating or reading the claimed size.
    let bytes = archive_with(|t| {
        raw_entry_with_size(t, b"README.md", tar::EntryType::Regular, b"tiny", 1 << 40)
    });
    assert_eq!(
        archive_err(&bytes),
        ArchiveError::FileTooLarge {
            name: "README.md".into(),
            size: 1 << 40,
            limit: 1 << 20
        }
    );
}

#[test]
fn per_file_limits_apply_to_each_name() {
    let p = package();
    let limits = ArchiveLimits {
        wasm: 100,
        ..ArchiveLimits::default()
    };
    assert_eq!(
        archive_err_with(&p.to_bytes().unwrap(), &limits),
        ArchiveError::FileTooLarge {
            name: "plugin.wasm".into(),
            size: p.wasm.len() as u64,
            limit: 100
        }
    );
    let limits = ArchiveLimits {
        manifest: 10,
        ..ArchiveLimits::default()
    };
    assert!(matches!(
        archive_err_with(&p.to_bytes().unwrap(), &limits),
        ArchiveError::FileTooLarge { ref name, .. } if name == "plinth.toml"
    ));
}

#[test]
fn total_size_limit_is_checked_from_headers() {
    let p = package();
    let limits = ArchiveLimits {
        total: 320,
        ..ArchiveLimits::default()
    };
    assert_eq!(
        archive_err_with(&p.to_bytes().unwrap(), &limits),
        ArchiveError::TotalTooLarge { limit: 320 }
    );
}

#[test]
fn compressed_size_limit_is_checked_first() {
    let bytes = package().to_bytes().unwrap();
    let limits = ArchiveLimits {
        compressed: 100,
        ..ArchiveLimits::default()
    };
    assert_eq!(
        archive_err_with(&bytes, &limits),
        ArchiveError::CompressedTooLarge {
            size: bytes.len() as u64,
            limit: 100
        }
    );
}

/// Streams `zeros` zero bytes into a deflate encoder after `prefix`, never holding them all.
fn deflate_with_zeros(prefix: &[u8], zeros: u64) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(GZIP_HEADER.to_vec(), Compression::fast());
    encoder.write_all(prefix).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        encoder.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    let mut out = encoder.finish().unwrap();
    out.extend_from_slice(&[0u8; 8]); // the trailer is never reached
    out
}

#[test]
fn decompression_bomb_entry_is_rejected_by_its_header() {
    // A 300 MiB entry of zeros compresses to well under a MiB.
    let mut prefix = Vec::new();
    raw_entry(
        &mut prefix,
        b"plinth.toml",
        tar::EntryType::Regular,
        package().manifest_toml.as_bytes(),
    );
    prefix.extend_from_slice(&raw_header(
        b"plugin.wasm",
        tar::EntryType::Regular,
        300 << 20,
    ));
    let bytes = deflate_with_zeros(&prefix, 300 << 20);
    assert!(bytes.len() < 2 << 20, "the bomb is small: {}", bytes.len());
    assert!(matches!(
        archive_err(&bytes),
        ArchiveError::FileTooLarge { ref name, size, .. } if name == "plugin.wasm" && size == 300 << 20
    ));
}

#[test]
fn decompression_bomb_after_the_tar_is_stopped_at_the_limit() {
    // A valid tar followed by 300 MiB of zeros in the same deflate stream: reading stops
    // once the decompressed stream passes the total limit.
    let mut prefix = Vec::new();
    for (name, data) in good_entries() {
        raw_entry(&mut prefix, name.as_bytes(), tar::EntryType::Regular, &data);
    }
    let bytes = deflate_with_zeros(&prefix, 300 << 20);
    assert_eq!(
        archive_err(&bytes),
        ArchiveError::TotalTooLarge {
            limit: ArchiveLimits::default().total
        }
    );
}

#[test]
fn corrupt_checksum_and_length_are_rejected() {
    let bytes = package().to_bytes().unwrap();
    let n = bytes.len();
    let mut crc = bytes.clone();
    crc[n - 8] ^= 1;
    assert!(matches!(
        archive_err(&crc),
        ArchiveError::ChecksumMismatch { .. }
    ));
    let mut len = bytes.clone();
    len[n - 1] ^= 1;
    assert!(matches!(
        archive_err(&len),
        ArchiveError::LengthMismatch { .. }
    ));
}

fn tamper_fails(bytes: &[u8], index: usize, xor: u8) {
    replace_fails(bytes, index, bytes[index] ^ xor);
}

fn replace_fails(bytes: &[u8], index: usize, value: u8) {
    let mut changed = bytes.to_vec();
    changed[index] = value;
    let outcome =
        Package::from_bytes(&changed).and_then(|p| p.verify_developer(&key(1).public_key()));
    assert!(
        outcome.is_err(),
        "changing byte {index} of {} from {:#04x} to {value:#04x} went unnoticed",
        bytes.len(),
        bytes[index]
    );
}

/// The tar inside a gzip member, by a standard decoder (which ignores deflate padding bits);
/// `None` if it does not decode.
fn gunzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut tar)
        .ok()?;
    Some(tar)
}

#[test]
fn every_padding_bit_of_the_final_deflate_byte_is_rejected() {
    // Packages whose deflate streams end at different bit positions. A bit of the final
    // deflate byte is padding when a standard decoder still gives the same tar with it set.
    let mut seen = [false; 8];
    for length in 0..48 {
        let mut p = Package::new(manifest_with(""), EMPTY_COMPONENT.to_vec(), None, None).unwrap();
        p.readme = Some("hello ".repeat(length));
        p.sign(&key(1));
        let bytes = p.to_bytes().unwrap();
        let tar = gunzip(&bytes).unwrap();
        let last = bytes.len() - 9;
        let mut all_padding = bytes.clone();
        for (bit, seen) in seen.iter_mut().enumerate() {
            let mut changed = bytes.clone();
            changed[last] ^= 1 << bit;
            if gunzip(&changed).as_ref() == Some(&tar) {
                assert_ne!(bit, 0, "bit 0 of the final byte is always read");
                *seen = true;
                all_padding[last] |= 1 << bit;
                assert_eq!(
                    archive_err(&changed),
                    ArchiveError::NonCanonicalDeflatePadding { offset: last },
                    "readme length {length}, bit {bit}"
                );
            } else {
                tamper_fails(&bytes, last, 1 << bit);
            }
        }
        if all_padding != bytes {
            assert_eq!(
                archive_err(&all_padding),
                ArchiveError::NonCanonicalDeflatePadding { offset: last }
            );
        }
        // The writer leaves the padding clear.
        assert_eq!(Package::from_bytes(&bytes).unwrap(), p);
    }
    assert_eq!(
        seen,
        [false, true, true, true, true, true, true, true],
        "every high bit is padding in some fixture"
    );
}

#[test]
fn the_padding_error_names_the_byte() {
    let mut bytes = package().to_bytes().unwrap();
    let last = bytes.len() - 9;
    bytes[last] |= 0x80;
    let e = Error::from(archive_err(&bytes)).to_string();
    assert!(e.contains(&format!("byte {last}")), "{e}");
    assert!(e.contains("padding"), "{e}");
}

/// The canonical gzip member of `tar` with deflate at `level`.
fn gzip_at(tar: &[u8], level: u32) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(GZIP_HEADER.to_vec(), Compression::new(level));
    encoder.write_all(tar).unwrap();
    let mut out = encoder.finish().unwrap();
    let mut crc = flate2::Crc::new();
    crc.update(tar);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(tar.len() as u32).to_le_bytes());
    out
}

#[test]
fn streams_ending_in_stored_fixed_or_dynamic_blocks_are_accepted() {
    // Level 0 ends in a stored block (the final byte is all data), small inputs at low levels
    // in fixed-Huffman blocks, the rest in dynamic ones: all have clear padding.
    let p = package();
    let small = tar_of(&[
        ("plinth.toml", p.manifest_toml.as_bytes()),
        ("plugin.wasm", EMPTY_COMPONENT),
    ]);
    let large = tar_of(&[
        ("plinth.toml", p.manifest_toml.as_bytes()),
        ("plugin.wasm", &p.wasm),
        ("README.md", "Hello, plugin. ".repeat(500).as_bytes()),
    ]);
    for tar in [small, large] {
        for level in 0..=9 {
            let bytes = gzip_at(&tar, level);
            let read = Package::from_bytes(&bytes).unwrap_or_else(|e| panic!("level {level}: {e}"));
            assert_eq!(read.manifest_toml, p.manifest_toml);
            let last = bytes.len() - 9;
            for bit in 0..8 {
                let mut changed = bytes.clone();
                changed[last] ^= 1 << bit;
                assert!(
                    Package::from_bytes(&changed).is_err(),
                    "level {level}, bit {bit}"
                );
            }
        }
    }
}

#[test]
fn every_byte_of_the_gzip_header_and_trailer_is_protected() {
    let bytes = signed_package().to_bytes().unwrap();
    let n = bytes.len();
    for index in (0..10).chain(n - 8..n) {
        for xor in [0x01, 0x02, 0x10, 0x80, 0xff] {
            tamper_fails(&bytes, index, xor);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any byte of the test package flipped is detected: by the gzip header rule, the deflate
    /// decoder, the tar structure, the CRC32/length trailer, the final padding bits, or the
    /// signature.
    #[test]
    fn any_flipped_byte_is_detected(position in any::<prop::sample::Index>()) {
        let bytes = signed_package().to_bytes().unwrap();
        tamper_fails(&bytes, position.index(bytes.len()), 0xff);
    }

    /// Any single-bit change anywhere in the test package, the final deflate byte included,
    /// is detected.
    #[test]
    fn any_changed_bit_is_detected(position in any::<prop::sample::Index>(), bit in 0u8..8) {
        let bytes = signed_package().to_bytes().unwrap();
        tamper_fails(&bytes, position.index(bytes.len()), 1 << bit);
    }

    /// Any byte of the test package replaced by any other value is detected.
    #[test]
    fn any_replaced_byte_is_detected(
        position in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let bytes = signed_package().to_bytes().unwrap();
        let index = position.index(bytes.len());
        prop_assume!(bytes[index] != value);
        replace_fails(&bytes, index, value);
    }

    /// Any change to the final deflate byte (of packages ending at different bit positions)
    /// is detected.
    #[test]
    fn any_change_to_the_final_deflate_byte_is_detected(
        length in 0usize..48,
        value in any::<u8>(),
    ) {
        let mut p = package();
        p.readme = Some("hello ".repeat(length));
        p.sign(&key(1));
        let bytes = p.to_bytes().unwrap();
        let last = bytes.len() - 9;
        prop_assume!(bytes[last] != value);
        replace_fails(&bytes, last, value);
    }

    /// Whatever the content, writing then reading gives back the same package and digest.
    #[test]
    fn round_trip(
        wasm in proptest::collection::vec(any::<u8>(), 0..2048),
        readme in proptest::option::of("[ -~\n]{0,200}"),
        changelog in proptest::option::of("\\PC{0,50}"),
        sign in any::<bool>(),
    ) {
        let mut p = Package::new(manifest_with(""), wasm, readme, changelog).unwrap();
        if sign {
            p.sign(&key(2));
        }
        let read = Package::from_bytes(&p.to_bytes().unwrap()).unwrap();
        prop_assert_eq!(read.digest(), p.digest());
        prop_assert_eq!(read, p);
    }
}
