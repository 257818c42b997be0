//! Writing a [`Package`] as deterministic `.plinth` bytes, and atomically to a file.

use std::io::Write as _;
use std::path::Path;

use flate2::Compression;
use flate2::write::DeflateEncoder;

use super::{Package, SIGNATURE_FILE};
use crate::error::Error;

/// The fixed gzip header of every `.plinth` file: magic, deflate, no flags, mtime 0, XFL 0,
/// OS 255 (unknown).
pub(crate) const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

fn io_to_archive(e: std::io::Error) -> Error {
    Error::io("building the package archive", e)
}

impl Package {
    /// The package as `.plinth` bytes: a gzip'd ustar archive with entries in a fixed order
    /// (`plinth.toml`, `plugin.wasm`, `README.md`, `CHANGELOG.md`, `signature.json` when
    /// signed), each with mtime 0, mode 0644, uid/gid 0; the same package always gives the same
    /// bytes with the same compressor.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::Json`] if building the archive fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let signature = if self.signature.is_empty() {
            None
        } else {
            Some(self.signature.to_json()?)
        };
        let mut files = self.content_files();
        if let Some(signature) = &signature {
            files.push((SIGNATURE_FILE, signature.as_slice()));
        }

        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut header = tar::Header::new_ustar();
            header.set_path(name).map_err(io_to_archive)?;
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            builder.append(&header, data).map_err(io_to_archive)?;
        }
        let tar_bytes = builder.into_inner().map_err(io_to_archive)?;

        let mut out = Vec::with_capacity(tar_bytes.len() / 2 + 64);
        out.extend_from_slice(&GZIP_HEADER);
        let mut encoder = DeflateEncoder::new(out, Compression::default());
        encoder.write_all(&tar_bytes).map_err(io_to_archive)?;
        let mut out = encoder.finish().map_err(io_to_archive)?;
        let mut crc = flate2::Crc::new();
        crc.update(&tar_bytes);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        // ISIZE is the length modulo 2^32 by definition, so truncation is intended.
        let isize = tar_bytes.len() as u32;
        out.extend_from_slice(&isize.to_le_bytes());
        Ok(out)
    }

    /// Writes the package to `path` atomically: to a temporary file in the same directory,
    /// synced, then renamed over `path`. On any failure nothing is left at `path` (and an
    /// existing file there is untouched).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the path, or what [`to_bytes`](Self::to_bytes) returns.
    pub fn write_to(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let bytes = self.to_bytes()?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let context = || format!("writing {}", path.display());
        let mut temp = tempfile::Builder::new()
            .prefix(".plinth-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| Error::io(context(), e))?;
        temp.write_all(&bytes)
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| Error::io(context(), e))?;
        // On failure the returned error owns the temporary file and deletes it when dropped.
        temp.persist(path)
            .map_err(|e| Error::io(context(), e.error))?;
        // Make the rename durable; a failure here does not undo the write, so it is ignored.
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}
