//! Writing a backup: snapshot the databases and copy the files into a staging directory,
//! hash them, then write the archive beside its destination and rename it into place.

use std::fs::File;
use std::io::{self, BufWriter, Read as _, Write as _};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest as _, Sha256};

use super::contents::{DATABASE_FILES, KEY_FILES, PAYOUTS_DIR, compiled_entries, files_under};
use super::{BackedUpFile, BackupError, BackupManifest, FORMAT, MANIFEST_FILE, Source, sqlite};
use crate::clock::{now_ms, rfc3339};

/// Writes a backup of the marketplace at `source` to `out`, which must not exist; returns its
/// manifest. See the [module documentation](super) for what it holds.
///
/// # Errors
///
/// [`BackupError::OutputExists`] if `out` exists; [`BackupError::NoDatabase`] if the data dir
/// has no SQLite database and no URL was given; [`BackupError::SqliteUrl`] if the URL is not a
/// PostgreSQL one; [`BackupError::Sqlite`] or
/// [`BackupError::Io`] if something cannot be read or written. `out` is then left as it was.
pub async fn create(source: &Source<'_>, out: &Path) -> Result<BackupManifest, BackupError> {
    if out.exists() {
        return Err(BackupError::OutputExists(out.to_path_buf()));
    }
    if source
        .database_url
        .is_some_and(|url| !url.starts_with("postgres:") && !url.starts_with("postgresql:"))
    {
        return Err(BackupError::SqliteUrl);
    }
    let out_dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let staging = tempfile::Builder::new()
        .prefix(".plinth-backup-")
        .tempdir_in(out_dir)
        .map_err(BackupError::io(out_dir))?;
    let data_dir = source.data_dir;
    let mut staged: Vec<(String, PathBuf)> = Vec::new();

    let backend = if source.database_url.is_some() {
        "postgres"
    } else {
        if !data_dir.join(DATABASE_FILES[0]).is_file() {
            return Err(BackupError::NoDatabase(data_dir.join(DATABASE_FILES[0])));
        }
        for name in DATABASE_FILES {
            let live = data_dir.join(name);
            if !live.is_file() {
                continue;
            }
            let copy = staging.path().join(name);
            sqlite::snapshot(&live, &copy).await?;
            staged.push((name.to_owned(), copy));
        }
        "sqlite"
    };
    let mut keys_not_found = Vec::new();
    let mut copied = Vec::new();
    for name in KEY_FILES {
        let path = data_dir.join(name);
        if path.is_file() {
            copied.push((name.to_owned(), path));
        } else {
            keys_not_found.push(name.to_owned());
        }
    }
    copied.extend(files_under(data_dir, &data_dir.join(PAYOUTS_DIR))?);
    // Copies, so that what is hashed is what is archived even if a file changes meanwhile.
    for (name, live) in copied {
        let copy = staging.path().join(&name);
        if let Some(parent) = copy.parent() {
            std::fs::create_dir_all(parent).map_err(BackupError::io(parent))?;
        }
        std::fs::copy(&live, &copy).map_err(BackupError::io(&live))?;
        staged.push((name, copy));
    }

    let mut files = Vec::with_capacity(staged.len());
    for (name, path) in &staged {
        let (bytes, sha256) = hash_file(path)?;
        files.push(BackedUpFile {
            path: name.clone(),
            bytes,
            sha256,
        });
    }
    let manifest = BackupManifest {
        format: FORMAT,
        plinth_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: rfc3339(now_ms()),
        backend: backend.to_owned(),
        files,
        keys_not_found,
        compiled: compiled_entries(data_dir)?,
    };
    write_archive(&manifest, &staged, out, out_dir)?;
    tracing::info!(out = %out.display(), files = manifest.files.len(), backend, "backup written");
    Ok(manifest)
}

/// The size and SHA-256 (hex) of the file at `path`.
fn hash_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut file = File::open(path).map_err(BackupError::io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(BackupError::io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// A tar header for a regular file of `size` bytes: mode 0600, mtime 0, owner 0.
fn header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

/// Writes the archive (manifest first, then `staged` in order) to a temporary file in
/// `out_dir`, syncs it and renames it to `out` without replacing anything.
fn write_archive(
    manifest: &BackupManifest,
    staged: &[(String, PathBuf)],
    out: &Path,
    out_dir: &Path,
) -> Result<(), BackupError> {
    let fail = BackupError::io;
    let temp = tempfile::Builder::new()
        .prefix(".plinth-backup-")
        .suffix(".tmp")
        .tempfile_in(out_dir)
        .map_err(fail(out_dir))?;
    let manifest_json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| BackupError::Invalid(format!("manifest: {e}")))?;
    let encoder = GzEncoder::new(BufWriter::new(temp.as_file()), Compression::default());
    let mut builder = tar::Builder::new(encoder);
    builder
        .append_data(
            &mut header(manifest_json.len() as u64),
            MANIFEST_FILE,
            manifest_json.as_slice(),
        )
        .map_err(fail(out))?;
    for ((name, path), listed) in staged.iter().zip(&manifest.files) {
        let file = File::open(path).map_err(fail(path))?;
        builder
            .append_data(&mut header(listed.bytes), name, file)
            .map_err(fail(path))?;
    }
    let encoder = builder.into_inner().map_err(fail(out))?;
    let mut writer = encoder.finish().map_err(fail(out))?;
    writer.flush().map_err(fail(out))?;
    drop(writer);
    temp.as_file().sync_all().map_err(fail(out))?;
    // On failure the returned error owns the temporary file and deletes it when dropped.
    temp.persist_noclobber(out).map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            BackupError::OutputExists(out.to_path_buf())
        } else {
            BackupError::Io {
                path: out.to_path_buf(),
                source: e.error,
            }
        }
    })?;
    if let Ok(dir) = File::open(out_dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}
