//! Restoring a backup into a new data dir: everything is unpacked and checked in a staging
//! directory beside the target, which is renamed into place only when all of it holds.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write as _};
use std::path::Path;

use flate2::read::GzDecoder;
use sha2::{Digest as _, Sha256};

use super::contents::{DATABASE_FILES, MAX_FILES, check_path};
use super::{BackedUpFile, BackupError, BackupManifest, FORMAT, MANIFEST_FILE, sqlite};

/// The largest manifest a backup may have.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// Restores the backup `archive` into `data_dir`, which must not exist or be empty; returns the
/// backup's manifest. On PostgreSQL backups only the files are restored: the database comes
/// from its `pg_dump`. See the [module documentation](super).
///
/// # Errors
///
/// [`BackupError::TargetNotEmpty`]; [`BackupError::Invalid`] or [`BackupError::Format`] for a
/// file that is not a backup this `plinth` reads, or whose content does not match its
/// manifest; [`BackupError::Integrity`] for a database SQLite finds damaged;
/// [`BackupError::Io`]. Nothing is left in `data_dir` then.
pub async fn restore(archive: &Path, data_dir: &Path) -> Result<BackupManifest, BackupError> {
    if !is_empty_or_missing(data_dir)? {
        return Err(BackupError::TargetNotEmpty(data_dir.to_path_buf()));
    }
    let parent = match data_dir.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent).map_err(BackupError::io(parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".plinth-restore-")
        .tempdir_in(parent)
        .map_err(BackupError::io(parent))?;
    let manifest = unpack(archive, staging.path())?;
    for listed in &manifest.files {
        if DATABASE_FILES.contains(&listed.path.as_str()) {
            sqlite::check_integrity(&staging.path().join(&listed.path), &listed.path).await?;
        }
    }
    // The target was checked empty above; an empty directory is replaced by the staging one.
    if data_dir.exists() {
        std::fs::remove_dir(data_dir).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                BackupError::io(data_dir)(e)
            } else {
                BackupError::TargetNotEmpty(data_dir.to_path_buf())
            }
        })?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, data_dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        BackupError::io(data_dir)(e)
    })?;
    tracing::info!(data_dir = %data_dir.display(), files = manifest.files.len(), "backup restored");
    Ok(manifest)
}

/// Whether `dir` does not exist or is an empty directory.
fn is_empty_or_missing(dir: &Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => Ok(false),
        Err(e) => Err(BackupError::io(dir)(e)),
    }
}

/// Reads `archive` into `staging`: the manifest first, then exactly the files it lists, each
/// checked for size and SHA-256 as it is written.
fn unpack(archive: &Path, staging: &Path) -> Result<BackupManifest, BackupError> {
    let file = File::open(archive).map_err(BackupError::io(archive))?;
    let mut tar = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    let corrupt = |e: io::Error| BackupError::Invalid(format!("the archive is damaged: {e}"));
    let mut entries = tar.entries().map_err(corrupt)?;
    let first = entries
        .next()
        .ok_or_else(|| {
            BackupError::Invalid(format!("it is empty; {MANIFEST_FILE} must come first"))
        })?
        .map_err(corrupt)?;
    let manifest = read_manifest(first)?;
    let mut expected: BTreeMap<&str, &BackedUpFile> = BTreeMap::new();
    for listed in &manifest.files {
        check_path(&listed.path)?;
        if expected.insert(listed.path.as_str(), listed).is_some() {
            return Err(BackupError::Invalid(format!(
                "the manifest lists {:?} twice",
                listed.path
            )));
        }
    }
    for entry in entries {
        let mut entry = entry.map_err(corrupt)?;
        let name = entry_name(&entry)?;
        let listed = expected.remove(name.as_str()).ok_or_else(|| {
            BackupError::Invalid(format!(
                "entry {name:?} is not in the manifest, or comes twice"
            ))
        })?;
        if entry.size() != listed.bytes {
            return Err(mismatch(&name, "size"));
        }
        let target = staging.join(&name);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(BackupError::io(dir))?;
        }
        let sha256 = copy_hashing(&mut entry, &target, listed.bytes)?;
        if sha256 != listed.sha256 {
            return Err(mismatch(&name, "SHA-256"));
        }
    }
    if let Some(missing) = expected.keys().next() {
        return Err(BackupError::Invalid(format!(
            "entry {missing:?} is in the manifest but not in the archive"
        )));
    }
    Ok(manifest)
}

fn mismatch(name: &str, what: &str) -> BackupError {
    BackupError::Invalid(format!(
        "the {what} of {name:?} differs from the manifest's: the file was changed or damaged"
    ))
}

/// The manifest from the archive's first entry.
fn read_manifest(mut entry: tar::Entry<'_, impl Read>) -> Result<BackupManifest, BackupError> {
    if entry_name(&entry)? != MANIFEST_FILE {
        return Err(BackupError::Invalid(format!(
            "{MANIFEST_FILE} must be its first entry"
        )));
    }
    if entry.size() > MAX_MANIFEST_BYTES {
        return Err(BackupError::Invalid(format!(
            "{MANIFEST_FILE} is larger than {MAX_MANIFEST_BYTES} bytes"
        )));
    }
    let mut text = Vec::new();
    entry
        .by_ref()
        .take(MAX_MANIFEST_BYTES)
        .read_to_end(&mut text)
        .map_err(|e| BackupError::Invalid(format!("the archive is damaged: {e}")))?;
    // The format first, so a newer backup is named as such rather than as malformed.
    let format = serde_json::from_slice::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("format").and_then(serde_json::Value::as_u64));
    if let Some(found) = format
        && found > u64::from(FORMAT)
    {
        return Err(BackupError::Format {
            found: u32::try_from(found).unwrap_or(u32::MAX),
        });
    }
    let manifest: BackupManifest = serde_json::from_slice(&text)
        .map_err(|e| BackupError::Invalid(format!("{MANIFEST_FILE}: {e}")))?;
    if manifest.format != FORMAT {
        return Err(BackupError::Invalid(format!(
            "{MANIFEST_FILE}: unknown format {}",
            manifest.format
        )));
    }
    if manifest.files.len() > MAX_FILES {
        return Err(BackupError::Invalid(format!(
            "{MANIFEST_FILE} lists more than {MAX_FILES} files"
        )));
    }
    Ok(manifest)
}

/// An entry's path, if it is a regular file.
fn entry_name(entry: &tar::Entry<'_, impl Read>) -> Result<String, BackupError> {
    let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let kind = entry.header().entry_type();
    if kind != tar::EntryType::Regular {
        return Err(BackupError::Invalid(format!(
            "entry {name:?} is not a regular file ({kind:?})"
        )));
    }
    Ok(name)
}

/// Copies `bytes` bytes of `from` into the new file `to` (mode 0600); their SHA-256, hex.
fn copy_hashing(from: &mut impl Read, to: &Path, bytes: u64) -> Result<String, BackupError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(to).map_err(BackupError::io(to))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut limited = from.take(bytes);
    loop {
        let n = limited
            .read(&mut buf)
            .map_err(|e| BackupError::Invalid(format!("the archive is damaged: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(BackupError::io(to))?;
    }
    file.sync_all().map_err(BackupError::io(to))?;
    Ok(hex::encode(hasher.finalize()))
}
