//! Reading `.plinth` bytes defensively.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::rc::Rc;

use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use super::write::GZIP_HEADER;
use super::{
    ArchiveLimits, CHANGELOG_FILE, MANIFEST_FILE, Package, README_FILE, SIGNATURE_FILE, WASM_FILE,
};
use crate::error::{ArchiveError, Error};
use crate::manifest::Manifest;
use crate::signing::SignatureFile;

/// Length of the gzip trailer (CRC32, ISIZE).
const TRAILER: usize = 8;

/// The decoder's state just before it was given the final deflate byte, and how much of the
/// body it had consumed by then.
struct BeforeFinalByte {
    state: Box<InflateState>,
    consumed: usize,
}

/// Decompresses the deflate stream that follows the gzip header (the same decoder flate2 uses).
///
/// In a well-formed package the stream's final byte is `body[len - 9]`, just before the
/// trailer. The decoder is first given only the bytes before it, and the state it reaches is
/// kept ([`BeforeFinalByte`]) so that [`check_final_padding`] can re-run the end of the stream
/// cheaply. It notes when it needed more input than there is (the package is truncated).
struct Inflater<'a> {
    state: Box<InflateState>,
    body: &'a [u8],
    /// Bytes of `body` consumed so far.
    consumed: usize,
    /// Index in `body` of the final deflate byte if the package is well formed.
    final_byte: usize,
    before_final_byte: Option<BeforeFinalByte>,
    ended: bool,
    exhausted: Rc<Cell<bool>>,
}

impl<'a> Inflater<'a> {
    fn new(body: &'a [u8], exhausted: Rc<Cell<bool>>) -> Self {
        Inflater {
            state: InflateState::new_boxed(DataFormat::Raw),
            body,
            consumed: 0,
            final_byte: body.len().saturating_sub(TRAILER + 1),
            before_final_byte: None,
            ended: false,
            exhausted,
        }
    }

    /// What follows the deflate stream (once it has ended).
    fn rest(&self) -> &'a [u8] {
        self.body.get(self.consumed..).unwrap_or_default()
    }
}

impl Read for Inflater<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ended || buf.is_empty() {
            return Ok(0);
        }
        loop {
            let end = if self.before_final_byte.is_some() {
                self.body.len()
            } else {
                self.final_byte
            };
            let input = self.body.get(self.consumed..end).unwrap_or_default();
            let result = inflate(&mut self.state, input, buf, MZFlush::None);
            self.consumed += result.bytes_consumed;
            match result.status {
                Ok(MZStatus::StreamEnd) => {
                    self.ended = true;
                    return Ok(result.bytes_written);
                }
                Ok(_) if result.bytes_written > 0 => return Ok(result.bytes_written),
                Ok(_) if result.bytes_consumed > 0 => {}
                // No progress: the decoder has used all it was given and needs more.
                Ok(_) | Err(MZError::Buf) => {
                    if self.before_final_byte.is_none() {
                        self.before_final_byte = Some(BeforeFinalByte {
                            state: self.state.clone(),
                            consumed: self.consumed,
                        });
                    } else {
                        self.exhausted.set(true);
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the deflate stream ends early",
                        ));
                    }
                }
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "corrupt deflate stream",
                    ));
                }
            }
        }
    }
}

/// The decompressed stream: computes its CRC32 and length, and fails once it passes `limit`.
struct Counted<R> {
    inner: R,
    crc: flate2::Crc,
    count: u64,
    limit: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        self.count += n as u64;
        if self.count > self.limit {
            self.exceeded.set(true);
            return Err(io::Error::other("decompressed size limit exceeded"));
        }
        Ok(n)
    }
}

/// Turns an I/O error while decompressing or reading tar into the archive error it means.
struct Classifier {
    exhausted: Rc<Cell<bool>>,
    exceeded: Rc<Cell<bool>>,
    total: u64,
}

impl Classifier {
    fn classify(&self, e: &io::Error) -> ArchiveError {
        if self.exceeded.get() {
            ArchiveError::TotalTooLarge { limit: self.total }
        } else if self.exhausted.get() || e.kind() == io::ErrorKind::UnexpectedEof {
            ArchiveError::Truncated
        } else {
            ArchiveError::Corrupt(e.to_string())
        }
    }
}

impl Package {
    /// Reads a package with the default [`ArchiveLimits`].
    ///
    /// # Errors
    ///
    /// See [`from_bytes_with_limits`](Self::from_bytes_with_limits).
    pub fn from_bytes(bytes: &[u8]) -> Result<Package, Error> {
        Self::from_bytes_with_limits(bytes, &ArchiveLimits::default())
    }

    /// Reads a package, refusing anything malformed, unsafe or past `limits`. Signatures are
    /// parsed but not verified; use [`verify_developer`](Self::verify_developer).
    ///
    /// # Errors
    ///
    /// [`Error::Archive`] with the specific [`ArchiveError`]; [`Error::Manifest`] if
    /// `plinth.toml` is invalid; [`Error::Signature`] for an unknown `signature.json` format.
    pub fn from_bytes_with_limits(bytes: &[u8], limits: &ArchiveLimits) -> Result<Package, Error> {
        if bytes.len() as u64 > limits.compressed {
            return Err(ArchiveError::CompressedTooLarge {
                size: bytes.len() as u64,
                limit: limits.compressed,
            }
            .into());
        }
        let Some(body) = bytes.get(GZIP_HEADER.len()..) else {
            return Err(if GZIP_HEADER.starts_with(bytes) {
                ArchiveError::Truncated
            } else {
                ArchiveError::NonCanonicalGzipHeader
            }
            .into());
        };
        if bytes[..GZIP_HEADER.len()] != GZIP_HEADER {
            return Err(ArchiveError::NonCanonicalGzipHeader.into());
        }
        let mut files = read_entries(body, limits)?;
        let mut take_text = |name: &'static str| -> Result<Option<String>, Error> {
            files
                .remove(name)
                .map(|bytes| {
                    String::from_utf8(bytes).map_err(|_| ArchiveError::NotUtf8(name.into()).into())
                })
                .transpose()
        };
        let manifest_toml =
            take_text(MANIFEST_FILE)?.ok_or(ArchiveError::MissingEntry(MANIFEST_FILE))?;
        let readme = take_text(README_FILE)?;
        let changelog = take_text(CHANGELOG_FILE)?;
        let wasm = files
            .remove(WASM_FILE)
            .ok_or(ArchiveError::MissingEntry(WASM_FILE))?;
        let signature = match files.remove(SIGNATURE_FILE) {
            Some(json) => SignatureFile::from_json(&json)?,
            None => SignatureFile::default(),
        };
        Ok(Package {
            manifest: Manifest::parse(&manifest_toml)?,
            manifest_toml,
            wasm,
            readme,
            changelog,
            signature,
        })
    }
}

/// Decompresses and unpacks the entries, checking the gzip trailer and what follows it.
fn read_entries(
    body: &[u8],
    limits: &ArchiveLimits,
) -> Result<BTreeMap<&'static str, Vec<u8>>, ArchiveError> {
    let classifier = Classifier {
        exhausted: Rc::new(Cell::new(false)),
        exceeded: Rc::new(Cell::new(false)),
        total: limits.total,
    };
    let counted = Counted {
        inner: Inflater::new(body, Rc::clone(&classifier.exhausted)),
        crc: flate2::Crc::new(),
        count: 0,
        limit: limits.total.saturating_add(ArchiveLimits::TAR_OVERHEAD),
        exceeded: Rc::clone(&classifier.exceeded),
    };
    let mut archive = tar::Archive::new(counted);
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    {
        let entries = archive
            .entries()
            .map_err(|e| classifier.classify(&e))?
            .raw(true);
        for entry in entries {
            let entry = entry.map_err(|e| classifier.classify(&e))?;
            let (name, size) = check_entry(entry.header(), &files, total, limits)?;
            total += size;
            let capacity = usize::try_from(size).map_err(|_| ArchiveError::TotalTooLarge {
                limit: limits.total,
            })?;
            let mut data = Vec::with_capacity(capacity);
            entry
                .take(size)
                .read_to_end(&mut data)
                .map_err(|e| classifier.classify(&e))?;
            if data.len() as u64 != size {
                return Err(ArchiveError::Truncated);
            }
            files.insert(name, data);
        }
    }
    let mut counted = archive.into_inner();
    io::copy(&mut counted, &mut io::sink()).map_err(|e| classifier.classify(&e))?;
    if classifier.exhausted.get() {
        return Err(ArchiveError::Truncated);
    }
    let inflater = counted.inner;
    check_trailer(inflater.rest(), &counted.crc, counted.count)?;
    check_final_padding(&inflater)?;
    Ok(files)
}

/// Checks one entry's header: path, type, name, duplicates and sizes. Returns the entry's
/// known name and size.
fn check_entry(
    header: &tar::Header,
    seen: &BTreeMap<&'static str, Vec<u8>>,
    total: u64,
    limits: &ArchiveLimits,
) -> Result<(&'static str, u64), ArchiveError> {
    let raw_path = header.path_bytes();
    let path = String::from_utf8_lossy(&raw_path).into_owned();
    if path.starts_with('/') || path.starts_with('\\') {
        return Err(ArchiveError::AbsolutePath(path));
    }
    if path.split(['/', '\\']).any(|part| part == "..") {
        return Err(ArchiveError::PathTraversal(path));
    }
    match header.entry_type() {
        tar::EntryType::Regular => {}
        tar::EntryType::Symlink => {
            return Err(ArchiveError::Link {
                name: path,
                kind: "symbolic link",
            });
        }
        tar::EntryType::Link => {
            return Err(ArchiveError::Link {
                name: path,
                kind: "hard link",
            });
        }
        other => {
            return Err(ArchiveError::NotRegularFile {
                name: path,
                kind: format!("{other:?}"),
            });
        }
    }
    let name = [
        MANIFEST_FILE,
        WASM_FILE,
        README_FILE,
        CHANGELOG_FILE,
        SIGNATURE_FILE,
    ]
    .into_iter()
    .find(|known| *known == path)
    .ok_or_else(|| ArchiveError::UnknownEntry(path.clone()))?;
    if seen.contains_key(name) {
        return Err(ArchiveError::DuplicateEntry(path));
    }
    let size = header
        .entry_size()
        .map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
    let limit = limits.for_entry(name).unwrap_or(0);
    if size > limit {
        return Err(ArchiveError::FileTooLarge {
            name: path,
            size,
            limit,
        });
    }
    if total.saturating_add(size) > limits.total {
        return Err(ArchiveError::TotalTooLarge {
            limit: limits.total,
        });
    }
    Ok((name, size))
}

/// Checks the gzip trailer against the decompressed data, and that nothing follows it.
fn check_trailer(rest: &[u8], crc: &flate2::Crc, count: u64) -> Result<(), ArchiveError> {
    let Some((trailer, after)) = rest.split_first_chunk::<TRAILER>() else {
        return Err(ArchiveError::Truncated);
    };
    let stored_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let stored_len = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    if stored_crc != crc.sum() {
        return Err(ArchiveError::ChecksumMismatch {
            stored: stored_crc,
            computed: crc.sum(),
        });
    }
    // ISIZE is the length modulo 2^32 by definition, so truncation is intended.
    let actual_len = count as u32;
    if stored_len != actual_len {
        return Err(ArchiveError::LengthMismatch {
            stored: stored_len,
            actual: actual_len,
        });
    }
    if !after.is_empty() {
        return Err(ArchiveError::TrailingBytes { count: after.len() });
    }
    Ok(())
}

/// Refuses a package whose final deflate byte has a padding bit set.
///
/// Deflate packs bits from the least significant end of each byte, and the stream ends with
/// up to 7 unused high bits of its final byte, which decoders skip; our writer leaves them
/// zero. Called once the stream has decoded and its trailer checked out, so the final deflate
/// byte is `body[len - 9]`, and `m` (1 to 8) of its low bits are read by the decoder.
///
/// Which bits are padding is found by re-running only the end of the stream from the state
/// kept just before the final byte, with one bit of that byte flipped, from bit 7 down:
///
/// - flipping a padding bit (bit `m` or above) changes nothing the decoder reads, so the run
///   ends after that byte with the same output;
/// - flipping bit `m - 1`, the last bit read, always changes the run. If the stream ends in a
///   stored block, that bit is part of a data byte (or of the length check) of that block. If
///   it ends in a Huffman-coded block, that bit ends the end-of-block code: with it flipped,
///   everything before reads the same, so all the output has been produced, and the prefix
///   code now yields some other symbol or none, which adds output, fails, or reads past the
///   final byte.
///
/// So the first flip from the top that changes the run is at bit `m - 1`; every bit above it
/// is padding and must be clear. Below `m - 1` nothing is claimed (a flip there may even give
/// the same output, since deflate can encode the same bytes in several ways, e.g. a distance
/// of 1 or 2 inside a run of zeros), which is why this does not clear bits and test the
/// result, nor binary-search: neither is sound for data bits below `m - 1`.
///
/// Each run decodes at most the final byte and the bits left over before it, from a copy of a
/// ~43 KB state: at most 8 short runs, independent of the package's size.
fn check_final_padding(inflater: &Inflater<'_>) -> Result<(), ArchiveError> {
    // The decoder consumed the final byte, so it was given it, so the state before it was kept.
    let Some(before) = &inflater.before_final_byte else {
        return Ok(());
    };
    let body = inflater.body;
    let final_index = inflater.final_byte;
    let (Some(pending), Some(&byte), Some(trailer)) = (
        body.get(before.consumed..final_index),
        body.get(final_index),
        body.get(final_index + 1..),
    ) else {
        return Ok(());
    };
    let ends_after = pending.len() + 1;
    let mut tail = Vec::new();
    let finished = run_to_end(
        &before.state,
        [pending, &[byte], trailer],
        ends_after,
        |out| {
            tail.extend_from_slice(out);
            true
        },
    );
    if !finished {
        // The main decode succeeded on exactly this input; a deterministic re-run cannot fail.
        return Err(ArchiveError::Corrupt(
            "the end of the deflate stream does not decode consistently".into(),
        ));
    }
    for bit in (1..8).rev() {
        if u32::from(byte) & ((2 << bit) - 2) == 0 {
            // Bits 1..=bit are all clear: none of them can be a set padding bit.
            break;
        }
        let flipped = byte ^ (1 << bit);
        let mut offset = 0;
        let same = run_to_end(
            &before.state,
            [pending, &[flipped], trailer],
            ends_after,
            |out| {
                let matches = tail.get(offset..offset + out.len()) == Some(out);
                offset += out.len();
                matches
            },
        ) && offset == tail.len();
        if !same {
            // `bit` is the last bit the decoder reads; it and those below are data.
            break;
        }
        if byte & (1 << bit) != 0 {
            return Err(ArchiveError::NonCanonicalDeflatePadding {
                offset: GZIP_HEADER.len() + final_index,
            });
        }
    }
    Ok(())
}

/// Runs a copy of `start` over `pieces` in order, passing its output to `out` (which returns
/// `false` to stop). True if the stream ends having consumed exactly `ends_after` bytes and
/// `out` accepted everything.
fn run_to_end(
    start: &InflateState,
    pieces: [&[u8]; 3],
    ends_after: usize,
    mut out: impl FnMut(&[u8]) -> bool,
) -> bool {
    let mut state = Box::new(start.clone());
    let mut buf = [0u8; 4096];
    let mut consumed = 0;
    for mut input in pieces {
        loop {
            let result = inflate(&mut state, input, &mut buf, MZFlush::None);
            consumed += result.bytes_consumed;
            input = input.get(result.bytes_consumed..).unwrap_or_default();
            if !out(buf.get(..result.bytes_written).unwrap_or_default()) {
                return false;
            }
            match result.status {
                Ok(MZStatus::StreamEnd) => return consumed == ends_after,
                Ok(_) if result.bytes_consumed > 0 || result.bytes_written > 0 => {}
                // Needs more input: go on with the next piece.
                Ok(_) | Err(MZError::Buf) => break,
                Err(_) => return false,
            }
        }
    }
    false
}
