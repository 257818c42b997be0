//! The JavaScript/TypeScript and Python SDK toolchains, installed once per test run from their
//! lockfiles, and the example plugins of `plugins/js` and `plugins/python` built once with
//! `plinth plugin build`.
//!
//! - JavaScript: `npm ci` in `sdk/js` (its `node_modules` is the whole JS install; the
//!   examples resolve the SDK and componentize-js from there).
//! - Python: a virtual environment under the test target dir with
//!   `pip install --require-hashes -r sdk/python/requirements.lock` (componentize-py).
//!
//! Each is redone only when its lockfile changes (a marker file keeps the lockfile's hash).

#![allow(
    dead_code,
    reason = "shared by several test binaries; each uses part of it"
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result, ensure};
use plinth_package::{Package, SecretKey};
use sha2::{Digest, Sha256};

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the Python toolchain and built examples live: under the test target dir, shared by
/// every test binary of a run.
fn work_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plinth-sdks")
}

/// The installed toolchains.
#[derive(Debug)]
pub struct Toolchains {
    /// The Python virtual environment's `bin` directory (first on `PATH` for builds).
    pub python_bin: PathBuf,
}

impl Toolchains {
    /// `PATH` with the virtual environment's `bin` first, so `python3` in a `[build]` command
    /// is the one with componentize-py.
    pub fn path(&self) -> String {
        let rest = std::env::var("PATH").unwrap_or_default();
        format!("{}:{rest}", self.python_bin.display())
    }
}

/// Installs both toolchains once per process (and per lockfile change across runs).
pub fn toolchains() -> Result<&'static Toolchains> {
    static TOOLCHAINS: OnceLock<std::result::Result<Toolchains, String>> = OnceLock::new();
    TOOLCHAINS
        .get_or_init(|| install().map_err(|error| format!("{error:#}")))
        .as_ref()
        .map_err(|error| anyhow::anyhow!("installing the SDK toolchains: {error}"))
}

fn install() -> Result<Toolchains> {
    let work = work_dir();
    std::fs::create_dir_all(&work)?;
    let js = repo().join("sdk/js");
    let js_lock = js.join("package-lock.json");
    if !up_to_date(&js_lock, &js.join("node_modules/.plinth-lock"))? {
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&js))?;
        mark(&js_lock, &js.join("node_modules/.plinth-lock"))?;
    }
    let venv = work.join("python-venv");
    let py_lock = repo().join("sdk/python/requirements.lock");
    let marker = venv.join(".plinth-lock");
    if !up_to_date(&py_lock, &marker)? {
        if venv.exists() {
            std::fs::remove_dir_all(&venv)?;
        }
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--require-hashes", "-r"])
            .arg(&py_lock))?;
        mark(&py_lock, &marker)?;
    }
    Ok(Toolchains {
        python_bin: venv.join("bin"),
    })
}

/// Whether `marker` holds the hash of `lock`.
fn up_to_date(lock: &Path, marker: &Path) -> Result<bool> {
    let wanted = hash(lock)?;
    Ok(std::fs::read_to_string(marker).is_ok_and(|found| found == wanted))
}

fn mark(lock: &Path, marker: &Path) -> Result<()> {
    std::fs::write(marker, hash(lock)?)?;
    Ok(())
}

fn hash(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(bytes)))
}

/// Runs `command`, failing with its output unless it exits 0.
pub fn run(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    ensure!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The package of the example in `plugins/<dir>` (e.g. `python/hello`), built once per
/// process with `plinth plugin build` (its `[build]` command) and signed with the run's
/// developer key ([`developer_key`]); the compiled component is cached in
/// [`compiled_data_dir`], which `plinth plugin run` then reuses.
pub fn example(dir: &str) -> Result<PathBuf> {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(HashMap::new()));
    // One build at a time: each is seconds of CPU on its own.
    let mut built = built
        .lock()
        .map_err(|_| anyhow::anyhow!("an earlier example build panicked"))?;
    if let Some(path) = built.get(dir) {
        return Ok(path.clone());
    }
    let toolchains = toolchains()?;
    let source = repo().join("plugins").join(dir);
    let out = work_dir()
        .join("packages")
        .join(format!("{}.plinth", dir.replace('/', "-")));
    std::fs::create_dir_all(out.parent().context("packages dir")?)?;
    // An earlier run's package is reused when it is newer than everything it is made of.
    let language = dir.split('/').next().unwrap_or_default();
    let inputs = [
        source.clone(),
        repo().join("sdk").join(language),
        repo().join("wit"),
        PathBuf::from(env!("CARGO_BIN_EXE_plinth")),
    ];
    let built_at = std::fs::metadata(&out).and_then(|m| m.modified()).ok();
    if let Some(built_at) = built_at
        && inputs
            .iter()
            .all(|input| newest(input).is_some_and(|at| at < built_at))
    {
        built.insert(dir.to_owned(), out.clone());
        return Ok(out);
    }
    let key = developer_key()?;
    run(Command::new(env!("CARGO_BIN_EXE_plinth"))
        .current_dir(&source)
        .env("PATH", toolchains.path())
        .args(["plugin", "build", "."])
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(&out)
        .arg("--data-dir")
        .arg(compiled_data_dir()))?;
    built.insert(dir.to_owned(), out.clone());
    Ok(out)
}

/// The newest modification time of `path` or any file below it, skipping what builds write
/// (`node_modules`, `.plinth`, `__pycache__`, virtual environments).
fn newest(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    let skipped = [
        "node_modules",
        ".plinth",
        "__pycache__",
        ".venv",
        "plinth-data",
    ];
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter(|entry| !skipped.iter().any(|skip| entry.file_name() == *skip))
        .filter_map(|entry| newest(&entry.path()))
        .max()
}

/// `package` under `manifest` (its own when `None`), signed by `key`, written to `dir`: an
/// example as its publisher submits it.
pub fn signed_copy(
    package: &Package,
    manifest: Option<String>,
    key: &SecretKey,
    dir: &Path,
) -> Result<PathBuf> {
    let manifest = manifest.unwrap_or_else(|| package.manifest_toml.clone());
    let mut copy = Package::new(manifest, package.wasm.clone(), package.readme.clone(), None)?;
    copy.sign(key);
    let path = dir.join(copy.file_name());
    copy.write_to(&path)?;
    Ok(path)
}

/// The data dir whose compiled-component cache the example builds fill.
pub fn compiled_data_dir() -> PathBuf {
    work_dir().join("plinth-data")
}

/// The secret key the examples are signed with (made once per run directory).
pub fn developer_key() -> Result<PathBuf> {
    let key = work_dir().join("developer-key");
    if !key.exists() {
        run(Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(["keygen", "--out"])
            .arg(&key))?;
    }
    Ok(key)
}
