//! Symmetric keys kept outside the database: 32 random bytes, written as base64, taken from an
//! environment variable when it is set, else from a file in the data dir that is created (mode
//! 0600) on first use. The secrets key ([`crate::secrets`]) and the audit key
//! ([`crate::audit::key`]) are both kept this way.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Error, Result};

/// Where a key is looked for: its name for messages, its environment variable and its file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeySource<'a> {
    /// What the key is, for messages: `the secrets key`.
    pub what: &'static str,
    /// The environment variable that, when set, holds the key.
    pub env_var: &'static str,
    /// The file that holds it otherwise.
    pub path: &'a Path,
}

/// 32 bytes from their base64 text.
///
/// # Errors
///
/// [`Error::Internal`] naming `what` if the text is not base64 of exactly 32 bytes.
pub(crate) fn parse(what: &str, text: &str) -> Result<[u8; 32]> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| Error::Internal(format!("{what} is not base64: {e}")))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| Error::Internal(format!("{what} must be 32 bytes, not {}", b.len())))
}

/// 32 random bytes and their base64 text.
///
/// # Errors
///
/// [`Error::Internal`] if the system's random source fails.
pub(crate) fn generate() -> Result<([u8; 32], String)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("random: {e}")))?;
    Ok((bytes, STANDARD.encode(bytes)))
}

/// The key from the environment variable if set, else from the file if it exists.
///
/// # Errors
///
/// [`Error::Internal`] if the key cannot be read or parsed.
pub(crate) fn load(source: KeySource<'_>) -> Result<Option<[u8; 32]>> {
    if let Ok(text) = std::env::var(source.env_var) {
        return parse(source.what, &text).map(Some);
    }
    match std::fs::read_to_string(source.path) {
        Ok(text) => parse(source.what, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Internal(format!(
            "cannot read {} from {}: {e}",
            source.what,
            source.path.display()
        ))),
    }
}

/// As [`load`], creating the file with a new key when neither is there.
///
/// # Errors
///
/// [`Error::Internal`] if the key cannot be read, parsed or created.
pub(crate) fn load_or_create(source: KeySource<'_>) -> Result<[u8; 32]> {
    if let Some(key) = load(source)? {
        return Ok(key);
    }
    let path = source.path;
    let fail =
        |e: std::io::Error| Error::Internal(format!("cannot create {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let (key, text) = generate()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            writeln!(file, "{text}").map_err(fail)?;
            file.sync_all().map_err(fail)?;
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            load(source)?.ok_or_else(|| Error::Internal(format!("{} vanished", path.display())))
        }
        Err(e) => Err(fail(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_once_with_owner_only_access() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/test.key");
        let source = KeySource {
            what: "the test key",
            env_var: "KEY_FILE_TEST_VARIABLE_NEVER_SET",
            path: &path,
        };
        assert_eq!(load(source).unwrap(), None);
        let first = load_or_create(source).unwrap();
        assert_eq!(load_or_create(source).unwrap(), first);
        assert_eq!(load(source).unwrap(), Some(first));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(parse("k", "c2hvcnQ=").is_err());
        assert!(parse("k", "not base64!").is_err());
    }
}
