//! The marketplace's ed25519 key, which countersigns every approved version.

use std::io::Write;
use std::path::Path;

use plinth_package::SecretKey;

use crate::error::{Error, Result};

/// The key file's name inside the data directory.
pub const FILE_NAME: &str = "marketplace.key";

/// Loads `<data_dir>/marketplace.key`, or creates it (mode 0600) with a new key, and writes
/// the public half next to it as `marketplace.key.pub` for hosts to trust.
///
/// # Errors
///
/// [`Error::Internal`] if the file cannot be read, parsed or written.
pub fn load_or_create(data_dir: &Path) -> Result<SecretKey> {
    load_or_create_file(&data_dir.join(FILE_NAME))
}

/// Loads the key at `path`, or creates it as [`load_or_create`] does.
///
/// # Errors
///
/// [`Error::Internal`] if the file cannot be read, parsed or written.
pub fn load_or_create_file(path: &Path) -> Result<SecretKey> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Error::Internal(format!("{what} {}: {e}", path.display()))
    };
    match std::fs::read_to_string(path) {
        Ok(text) => SecretKey::parse(text.trim()).map_err(|e| fail("cannot parse", &e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| fail("cannot create the directory of", &e))?;
            }
            let key = SecretKey::generate().map_err(|e| fail("cannot generate", &e))?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(|e| fail("cannot create", &e))?;
            writeln!(file, "{}", key.to_file_string()).map_err(|e| fail("cannot write", &e))?;
            let public = path.with_extension("key.pub");
            std::fs::write(&public, format!("{}\n", key.public_key()))
                .map_err(|e| fail("cannot write the public key next to", &e))?;
            tracing::info!(path = %path.display(), "created the marketplace signing key");
            Ok(key)
        }
        Err(e) => Err(fail("cannot read", &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_then_loads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        let second = load_or_create(dir.path()).unwrap();
        assert_eq!(first.public_key(), second.public_key());
        let public = std::fs::read_to_string(dir.path().join("marketplace.key.pub")).unwrap();
        assert_eq!(public.trim(), first.public_key().to_string());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
