//! [`CompiledCache`]: compiled components kept on disk so a host compiles each plugin version
//! once per engine configuration, not once per start.
//!
//! An entry is keyed by the SHA-256 of the component's wasm and a SHA-256 of the engine's
//! [`precompile_compatibility_hash`](Engine::precompile_compatibility_hash) (wasmtime version,
//! target, compiler flags, tunables, features), so a different wasm or an incompatible engine
//! never finds another's entry. Its file name is `<wasm sha256 hex>-<engine hash hex>.cwasm`.
//!
//! # File format
//!
//! | bytes | content                                                     |
//! |-------|-------------------------------------------------------------|
//! | 16    | magic `plinth-cwasm` and the format version (u32 LE), now 1 |
//! | 32    | SHA-256 of the wasm (must equal the key)                    |
//! | 32    | engine compatibility hash (must equal the key)              |
//! | 32    | SHA-256 of the payload                                      |
//! | rest  | payload: [`Engine::precompile_component`]'s output          |
//!
//! Loading reads the whole file, checks the magic, version, both key fields and the payload's
//! checksum, and only then hands the very bytes it checked to wasmtime's `deserialize`. Anything
//! else (a corrupt, truncated or foreign file, or one wasmtime refuses) is logged, never
//! trusted, and replaced by a fresh compilation.
//!
//! Entries are written to a uniquely named temporary file in the cache directory and renamed
//! over the entry, so readers see either the old entry or the new one, never a half-written
//! file, and processes that compile the same component at once are safe (the last rename wins;
//! both wrote the same content).
//!
//! The cache is an optimisation: failing to read or write an entry is logged and the freshly
//! compiled component is still returned.
//!
//! ```no_run
//! use plinth_host::cache::{CacheOutcome, CompiledCache};
//!
//! let mut config = wasmtime::Config::new();
//! config.wasm_component_model(true);
//! let engine = wasmtime::Engine::new(&config)?;
//! let cache = CompiledCache::new("/var/cache/plinth/compiled")?;
//! let wasm = std::fs::read("plugin.wasm")?;
//! let (component, outcome) = cache.load_or_compile(&engine, &wasm)?;
//! if outcome == CacheOutcome::Hit {
//!     println!("loaded without compiling");
//! }
//! # let _ = component;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs;
use std::hash::{Hash as _, Hasher};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Magic bytes opening every cache entry.
const MAGIC: &[u8; 12] = b"plinth-cwasm";
/// Version of the entry format; bump it when the layout changes.
const FORMAT_VERSION: u32 = 1;
/// Length of the header before the payload: magic, version, wasm hash, engine hash, checksum.
const HEADER_LEN: usize = MAGIC.len() + 4 + 32 + 32 + 32;
/// Extension of entry files.
const ENTRY_EXTENSION: &str = "cwasm";

/// Why a component could not be loaded or compiled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The cache directory could not be created or used.
    #[error("compiled component cache {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The wasm is not a valid component, or the engine could not compile it.
    #[error("could not compile the component: {0}")]
    Compile(String),
}

/// How [`CompiledCache::load_or_compile`] obtained the component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheOutcome {
    /// A valid entry was found and deserialised; nothing was compiled.
    Hit,
    /// There was no entry: the component was compiled and the entry written.
    Compiled,
    /// An entry existed but was corrupt, truncated, foreign or refused by wasmtime: it was
    /// not trusted, the component was compiled again and the entry replaced.
    Recompiled,
}

/// A directory of compiled components, keyed by (wasm SHA-256, engine compatibility hash).
///
/// Cheap to share: it holds only the directory path and may be used from many threads and
/// processes at once.
#[derive(Debug, Clone)]
pub struct CompiledCache {
    dir: PathBuf,
}

/// The key of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntryKey {
    /// SHA-256 of the wasm.
    wasm: [u8; 32],
    /// SHA-256 of the engine's compatibility hash.
    engine: [u8; 32],
}

impl EntryKey {
    fn new(engine: &Engine, wasm: &[u8]) -> EntryKey {
        EntryKey {
            wasm: Sha256::digest(wasm).into(),
            engine: engine_hash(engine),
        }
    }

    fn file_name(&self) -> String {
        format!(
            "{}-{}.{ENTRY_EXTENSION}",
            hex::encode(self.wasm),
            hex::encode(self.engine)
        )
    }
}

/// Why an existing entry was not used.
#[derive(Debug)]
enum Rejected {
    /// Too short to hold the header.
    Truncated(usize),
    /// Wrong magic: not one of our entries.
    Foreign,
    /// Our magic with another format version.
    Version(u32),
    /// The entry names another wasm or engine than its file name says.
    WrongKey,
    /// The payload does not match its checksum.
    Checksum,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::Truncated(len) => {
                write!(f, "truncated ({len} bytes, shorter than the header)")
            }
            Rejected::Foreign => f.write_str("not a Plinth cache entry (wrong magic)"),
            Rejected::Version(v) => write!(f, "format version {v}, expected {FORMAT_VERSION}"),
            Rejected::WrongKey => f.write_str("written for another component or engine"),
            Rejected::Checksum => f.write_str("payload does not match its checksum (corrupt)"),
        }
    }
}

impl CompiledCache {
    /// A cache in `dir`, created (with its parents) if missing.
    ///
    /// # Errors
    ///
    /// [`CacheError::Io`] if the directory cannot be created.
    pub fn new(dir: impl Into<PathBuf>) -> Result<CompiledCache, CacheError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| CacheError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(CompiledCache { dir })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the entry for `wasm` compiled by `engine` (which may not exist yet).
    pub fn entry_path(&self, engine: &Engine, wasm: &[u8]) -> PathBuf {
        self.dir.join(EntryKey::new(engine, wasm).file_name())
    }

    /// The component for `wasm`, deserialised from a verified cache entry or compiled (and
    /// then cached).
    ///
    /// # Errors
    ///
    /// [`CacheError::Compile`] if `wasm` is not a valid component or cannot be compiled by
    /// `engine`. Cache I/O failures are logged, not returned.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
    ) -> Result<(Component, CacheOutcome), CacheError> {
        let key = EntryKey::new(engine, wasm);
        let path = self.dir.join(key.file_name());

        let outcome = match fs::read(&path) {
            Ok(bytes) => match verified_payload(&bytes, &key) {
                Ok(payload) => match deserialize_verified(engine, payload) {
                    Ok(component) => {
                        tracing::debug!(path = %path.display(), "compiled component cache hit");
                        return Ok((component, CacheOutcome::Hit));
                    }
                    Err(error) => {
                        tracing::warn!(
                            path = %path.display(),
                            error = format!("{error:#}"),
                            "wasmtime refused a compiled component cache entry; recompiling"
                        );
                        CacheOutcome::Recompiled
                    }
                },
                Err(rejected) => {
                    tracing::warn!(
                        path = %path.display(),
                        reason = %rejected,
                        "ignoring an invalid compiled component cache entry; recompiling"
                    );
                    CacheOutcome::Recompiled
                }
            },
            Err(error) if error.kind() == io::ErrorKind::NotFound => CacheOutcome::Compiled,
            Err(error) => {
                tracing::warn!(
                    path = %path.display(),
                    %error,
                    "could not read a compiled component cache entry; compiling"
                );
                CacheOutcome::Compiled
            }
        };

        let payload = engine
            .precompile_component(wasm)
            .map_err(|e| CacheError::Compile(format!("{e:#}")))?;
        if let Err(error) = self.write_entry(&path, &key, &payload) {
            tracing::warn!(
                path = %path.display(),
                %error,
                "could not write a compiled component cache entry"
            );
        }
        let component = deserialize_verified(engine, &payload)
            .map_err(|e| CacheError::Compile(format!("{e:#}")))?;
        Ok((component, outcome))
    }

    /// Writes the entry atomically: a unique temporary file in the cache directory, flushed to
    /// disk, then renamed over `path`.
    fn write_entry(&self, path: &Path, key: &EntryKey, payload: &[u8]) -> io::Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let temp = self.dir.join(format!(
            ".{}.{}-{}.tmp",
            key.file_name(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            file.write_all(&header(key, payload))?;
            file.write_all(payload)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&temp, path)
        })();
        if result.is_err() {
            // Best effort: the temporary file is useless now; an error removing it changes
            // nothing for the caller.
            let _ = fs::remove_file(&temp);
        }
        result
    }
}

/// The header of an entry for `key` holding `payload`.
fn header(key: &EntryKey, payload: &[u8]) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&key.wasm);
    header.extend_from_slice(&key.engine);
    header.extend_from_slice(&Sha256::digest(payload));
    header
}

/// The payload of an entry, once its magic, version, key and checksum are all verified.
fn verified_payload<'a>(bytes: &'a [u8], key: &EntryKey) -> Result<&'a [u8], Rejected> {
    if bytes.len() < HEADER_LEN {
        // A file shorter than the magic may still be a truncated entry; say which it is.
        return Err(if bytes.starts_with(MAGIC) || MAGIC.starts_with(bytes) {
            Rejected::Truncated(bytes.len())
        } else {
            Rejected::Foreign
        });
    }
    let (magic, rest) = bytes.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err(Rejected::Foreign);
    }
    let (version, rest) = rest.split_at(4);
    let mut version_bytes = [0u8; 4];
    version_bytes.copy_from_slice(version);
    let version = u32::from_le_bytes(version_bytes);
    if version != FORMAT_VERSION {
        return Err(Rejected::Version(version));
    }
    let (wasm_hash, rest) = rest.split_at(32);
    let (engine_hash, rest) = rest.split_at(32);
    if wasm_hash != key.wasm || engine_hash != key.engine {
        return Err(Rejected::WrongKey);
    }
    let (checksum, payload) = rest.split_at(32);
    if Sha256::digest(payload).as_slice() != checksum {
        return Err(Rejected::Checksum);
    }
    Ok(payload)
}

/// Deserialises a payload that this host produced with [`Engine::precompile_component`]:
/// either just now, in memory, or read back from an entry [`verified_payload`] accepted.
#[allow(
    unsafe_code,
    reason = "loading precompiled code is the point of the cache; see the SAFETY comment"
)]
fn deserialize_verified(engine: &Engine, payload: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` trusts its input to be wasmtime's own output: crafted
    // bytes could run arbitrary native code. The only callers pass either the bytes
    // `Engine::precompile_component` returned in this process, or the payload of an entry whose
    // magic, format version, wasm hash and engine hash match this key and whose SHA-256 matches
    // the checksum this host wrote beside it — so a corrupt, truncated or foreign file is never
    // deserialised. The bytes checked are the very bytes passed here (read into memory once, not
    // re-read from disk), and `deserialize` copies them, so the file changing afterwards does not
    // matter. wasmtime still checks its own version and engine compatibility.
    // The cache directory must be writable only by the host (as any directory holding code it
    // runs); the checksum guards against corruption, not against someone who can write there.
    unsafe { Component::deserialize(engine, payload) }
}

/// SHA-256 of the engine's compatibility hash, stable across processes and runs on one machine.
fn engine_hash(engine: &Engine) -> [u8; 32] {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().into()
}

/// A [`Hasher`] that feeds everything into SHA-256, so [`std::hash::Hash`] values get a
/// collision-resistant digest.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }
}
