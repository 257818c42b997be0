//! Builds every guest plugin in `plugins/` with one cargo invocation and writes a constant per
//! plugin to `$OUT_DIR/plugins.rs`.
//!
//! The guests go to `<outer target dir>/wasm32-plugins` rather than `OUT_DIR`, so every profile
//! (and `plinth plugin build` in end-to-end tests) reuses one guest build.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The plugins and the names of their constants, in the order of `ALL`.
const PLUGINS: &[(&str, &str)] = &[
    ("hello", "HELLO"),
    ("counter", "COUNTER"),
    ("webhook-notify", "WEBHOOK_NOTIFY"),
    ("http-echo", "HTTP_ECHO"),
    ("spin-forever", "SPIN_FOREVER"),
    ("memory-hog", "MEMORY_HOG"),
    ("deep-recursion", "DEEP_RECURSION"),
    ("trap", "TRAP"),
    ("huge-output", "HUGE_OUTPUT"),
    ("bad-host", "BAD_HOST"),
    ("undeclared-http", "UNDECLARED_HTTP"),
    ("ping-pong", "PING_PONG"),
    ("noisy", "NOISY"),
    ("log-bomb", "LOG_BOMB"),
    ("slow-hooks", "SLOW_HOOKS"),
    ("queue-probe", "QUEUE_PROBE"),
];

/// Environment variables of the outer cargo that must not reach the guest build: flags and
/// wrappers for the host target, the outer target dir and jobserver, and cargo's per-package
/// build-script variables.
const LEAKY_VARS: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
    "OUT_DIR",
    "RUSTC_LINKER",
    "RUSTDOC",
];

/// Prefixes of other per-package variables cargo sets for build scripts.
const LEAKY_PREFIXES: &[&str] = &["CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_", "DEP_"];

fn main() {
    if let Err(message) = run() {
        // A build script reports failure through a non-zero exit; cargo shows stderr.
        eprintln!("{message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(var("CARGO_MANIFEST_DIR")?);
    let repo = manifest_dir
        .ancestors()
        .nth(2)
        .ok_or("tests/artifacts is not two levels below the repository")?
        .to_path_buf();
    let plugins = repo.join("plugins");
    let out_dir = PathBuf::from(var("OUT_DIR")?);
    let target_dir = outer_target_dir(&out_dir)?.join("wasm32-plugins");

    rerun_if_changed(&plugins, &repo);

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--release")
        .arg("--target")
        .arg("wasm32-wasip2")
        .arg("--workspace")
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(&plugins);
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if LEAKY_VARS.contains(&key) || LEAKY_PREFIXES.iter().any(|p| key.starts_with(p)) {
            command.env_remove(key);
        }
    }
    let output = command
        .output()
        .map_err(|err| format!("cannot run cargo to build the guest plugins: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the guest plugins in {} failed ({}):\n{}",
            plugins.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }

    let wasm_dir = target_dir.join("wasm32-wasip2").join("release");
    let mut code = String::new();
    for (name, constant) in PLUGINS {
        let dir = plugins.join(name);
        let wasm = wasm_dir.join(format!("{}.wasm", name.replace('-', "_")));
        if !wasm.is_file() {
            return Err(format!(
                "the guest build did not produce {}",
                wasm.display()
            ));
        }
        writeln!(
            code,
            "/// The `{name}` plugin (`plugins/{name}`).\n\
             pub const {constant}: TestPlugin = TestPlugin {{ name: {name:?}, dir: {dir:?}, wasm: {wasm:?} }};",
            dir = text(&dir)?,
            wasm = text(&wasm)?,
        )
        .map_err(|err| err.to_string())?;
    }
    let all: Vec<&str> = PLUGINS.iter().map(|(_, constant)| *constant).collect();
    writeln!(
        code,
        "/// Every guest plugin.\npub const ALL: &[TestPlugin] = &[{}];",
        all.join(", ")
    )
    .map_err(|err| err.to_string())?;
    writeln!(
        code,
        "/// The cargo target dir of the guest build; end-to-end tests point `CARGO_TARGET_DIR` \
         at it to reuse compiled guest dependencies.\npub const PLUGINS_TARGET_DIR: &str = {:?};",
        text(&target_dir)?
    )
    .map_err(|err| err.to_string())?;
    fs::write(out_dir.join("plugins.rs"), code)
        .map_err(|err| format!("cannot write {}: {err}", out_dir.display()))
}

/// `<target>/<profile>/build/<pkg-hash>/out` → `<target>`, also with a `<triple>` level.
fn outer_target_dir(out_dir: &Path) -> Result<PathBuf, String> {
    // out → <pkg-hash> → build → <profile> (→ <triple>) → <target>
    let profile_dir = out_dir
        .ancestors()
        .nth(3)
        .ok_or_else(|| format!("unexpected OUT_DIR layout: {}", out_dir.display()))?;
    let parent = profile_dir
        .parent()
        .ok_or_else(|| format!("unexpected OUT_DIR layout: {}", out_dir.display()))?;
    // When cross-compiling, the profile dir sits under `<target>/<triple>`.
    let target = env::var("TARGET").unwrap_or_default();
    if !target.is_empty()
        && parent
            .file_name()
            .is_some_and(|name| name == target.as_str())
        && let Some(outer) = parent.parent()
    {
        return Ok(outer.to_path_buf());
    }
    Ok(parent.to_path_buf())
}

/// Asks cargo to rerun this script when a guest's source or manifest, the SDK or the WIT
/// changes (never on the guests' own target dir).
fn rerun_if_changed(plugins: &Path, repo: &Path) {
    for file in ["Cargo.toml", "Cargo.lock", ".cargo/config.toml"] {
        println!("cargo:rerun-if-changed={}", plugins.join(file).display());
    }
    for (name, _) in PLUGINS {
        println!("cargo:rerun-if-changed={}", plugins.join(name).display());
    }
    println!("cargo:rerun-if-changed={}", repo.join("sdk").display());
    println!("cargo:rerun-if-changed={}", repo.join("wit").display());
}

fn var(key: &str) -> Result<String, String> {
    env::var(key).map_err(|err| format!("{key}: {err}"))
}

fn text(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("path is not UTF-8: {}", path.display()))
}
