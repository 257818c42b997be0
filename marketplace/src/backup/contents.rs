//! Which files of a data dir a backup holds, and the one rule for the paths a backup may name.

use std::path::{Path, PathBuf};

use super::{BackupError, CompiledEntry};

/// The SQLite databases of a data dir: the marketplace's and the host's kv store.
pub const DATABASE_FILES: [&str; 2] = ["marketplace.db", "kv.db"];

/// The key files of a data dir: the marketplace's signing key and its public half, the key
/// sealing secret configuration values, the key sealing the audit log.
pub const KEY_FILES: [&str; 4] = [
    crate::signing_key::FILE_NAME,
    "marketplace.key.pub",
    crate::secrets::FILE_NAME,
    crate::audit::key::FILE_NAME,
];

/// The directory of payout files, under the data dir.
pub const PAYOUTS_DIR: &str = "payouts";

/// The compiled-component cache, under the data dir.
const COMPILED_DIR: &str = "compiled";

/// The most files a backup may list.
pub(super) const MAX_FILES: usize = 100_000;

/// The longest path a backup may name.
const MAX_PATH_CHARS: usize = 255;

/// Checks a path a backup names: relative, `/`-separated, no empty, `.` or `..` part, at most
/// [`MAX_PATH_CHARS`], and either a database, a key, or a file under [`PAYOUTS_DIR`].
///
/// # Errors
///
/// [`BackupError::Invalid`] naming the path.
pub(super) fn check_path(path: &str) -> Result<(), BackupError> {
    let invalid = |why: &str| Err(BackupError::Invalid(format!("entry {path:?} {why}")));
    if path.is_empty() || path.chars().count() > MAX_PATH_CHARS {
        return invalid("has no name or a name that is too long");
    }
    if path.contains('\\') || path.contains('\0') {
        return invalid("has a character a path may not hold");
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return invalid("is not a plain relative path");
    }
    let known = match parts.as_slice() {
        [name] => DATABASE_FILES.contains(name) || KEY_FILES.contains(name),
        [dir, ..] => *dir == PAYOUTS_DIR,
        [] => false,
    };
    if known {
        Ok(())
    } else {
        invalid("is not a file a backup holds")
    }
}

/// The files under `dir` (recursively), as `/`-separated paths relative to `base`, sorted.
///
/// # Errors
///
/// [`BackupError::Io`] if a directory cannot be read.
pub(super) fn files_under(base: &Path, dir: &Path) -> Result<Vec<(String, PathBuf)>, BackupError> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = match std::fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(BackupError::io(&current)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(BackupError::io(&current))?;
            let kind = entry.file_type().map_err(BackupError::io(entry.path()))?;
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                let relative = path
                    .strip_prefix(base)
                    .ok()
                    .and_then(|p| {
                        p.components()
                            .map(|c| c.as_os_str().to_str())
                            .collect::<Option<Vec<_>>>()
                    })
                    .map(|parts| parts.join("/"))
                    .ok_or_else(|| {
                        BackupError::Invalid(format!(
                            "{} has a name that is not UTF-8",
                            path.display()
                        ))
                    })?;
                found.push((relative, path));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The compiled-component cache of `data_dir`: its entries, by name.
///
/// # Errors
///
/// [`BackupError::Io`] if the cache directory cannot be read.
pub(super) fn compiled_entries(data_dir: &Path) -> Result<Vec<CompiledEntry>, BackupError> {
    let dir = data_dir.join(COMPILED_DIR);
    let mut entries = Vec::new();
    for (relative, path) in files_under(&dir, &dir)? {
        if !relative.ends_with(".cwasm") {
            continue;
        }
        let bytes = std::fs::metadata(&path)
            .map_err(BackupError::io(&path))?
            .len();
        entries.push(CompiledEntry {
            file: relative,
            bytes,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_plain_relative_paths_are_accepted() {
        for good in [
            "marketplace.db",
            "kv.db",
            "audit.key",
            "marketplace.key.pub",
            "payouts/run-1.csv",
            "payouts/2026/run-1.json",
        ] {
            assert!(check_path(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../marketplace.db",
            "payouts/../../x",
            "payouts/./x",
            "payouts//x",
            "payouts",
            "payouts\\x",
            "compiled/a.cwasm",
            "notes.txt",
            "kv.db/x",
            &format!("payouts/{}", "a".repeat(300)),
        ] {
            assert!(
                matches!(check_path(bad), Err(BackupError::Invalid(_))),
                "{bad:?}"
            );
        }
    }
}
