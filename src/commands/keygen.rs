//! `plinth keygen`: create an ed25519 signing key pair for a publisher.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use plinth_package::{PublicKey, SecretKey};

/// Create an ed25519 key pair for signing plugin packages.
///
/// Writes the secret key to FILE (readable only by you, mode 0600) and the public key to
/// FILE.pub. Register the key with your publisher with `plinth key register`; keep the secret.
#[derive(Debug, clap::Args)]
pub struct KeygenCommand {
    /// Where to write the secret key; the public key goes to the same path plus `.pub`.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Replace existing key files instead of refusing.
    #[arg(long)]
    force: bool,
}

impl KeygenCommand {
    /// Generates the key pair and writes both files.
    pub fn execute(self) -> anyhow::Result<()> {
        let public_path = public_key_path(&self.out);
        if !self.force {
            for path in [&self.out, &public_path] {
                if path.exists() {
                    bail!(
                        "{} already exists; pass --force to replace it",
                        path.display()
                    );
                }
            }
        }
        let secret = SecretKey::generate().context("cannot generate a key")?;
        let public = secret.public_key();
        create_key_dir(&self.out)?;
        write_secret(&self.out, &secret.to_file_string(), self.force)?;
        std::fs::write(&public_path, format!("{public}\n"))
            .with_context(|| format!("cannot write {}", public_path.display()))?;
        println!("{public}");
        eprintln!(
            "wrote secret key {} and public key {} (key id {})",
            self.out.display(),
            public_path.display(),
            public.fingerprint()
        );
        Ok(())
    }
}

/// Creates the directory a key is written to (e.g. `~/.plinth` on a fresh machine) if it is
/// missing: readable by its owner only, since it holds secret keys.
fn create_key_dir(secret: &Path) -> anyhow::Result<()> {
    let Some(dir) = secret.parent().filter(|dir| !dir.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// The path of the public key that belongs to the secret key at `secret`.
fn public_key_path(secret: &Path) -> PathBuf {
    let mut name = secret.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Writes the secret key so that it is never readable by others, not even for a moment.
fn write_secret(path: &Path, contents: &str, replace: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        if replace && path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot restrict {}", path.display()))?;
        }
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{contents}").with_context(|| format!("cannot write {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads a secret key written by `plinth keygen`.
pub fn read_secret_key(path: &Path) -> anyhow::Result<SecretKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read secret key {}", path.display()))?;
    SecretKey::parse(text.trim())
        .with_context(|| format!("{} is not a Plinth secret key", path.display()))
}

/// Reads a public key (`ed25519:<base64>`, as in a `.pub` file written by `plinth keygen`).
pub fn read_public_key(path: &Path) -> anyhow::Result<PublicKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read public key {}", path.display()))?;
    PublicKey::parse(text.trim())
        .with_context(|| format!("{} is not a Plinth public key", path.display()))
}
