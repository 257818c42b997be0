//! Reading `.plinth` bytes defensively.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

use flate2::bufread::DeflateDecoder;

use super::write::GZIP_HEADER;
use super::{
    ArchiveLimits, CHANGELOG_FILE, MANIFEST_FILE, Package, README_FILE, SIGNATURE_FILE, WASM_FILE,
};
use crate::error::{ArchiveError, Error};
use crate::manifest::Manifest;
use crate::signing::SignatureFile;

/// Length of the gzip trailer (CRC32, ISIZE).
const TRAILER: usize = 8;

/// The compressed input after the gzip header; notes when the decoder asked for more than
/// there is (the package is truncated).
struct Input<'a> {
    rest: &'a [u8],
    exhausted: Rc<Cell<bool>>,
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Input<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.rest.is_empty() {
            self.exhausted.set(true);
        }
        Ok(self.rest)
    }

    fn consume(&mut self, amt: usize) {
        self.rest = self.rest.get(amt..).unwrap_or_default();
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
    let input = Input {
        rest: body,
        exhausted: Rc::clone(&classifier.exhausted),
    };
    let counted = Counted {
        inner: DeflateDecoder::new(input),
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
    let rest = counted.inner.into_inner().rest;
    check_trailer(rest, &counted.crc, counted.count)?;
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
