//! Building a plugin written in another language than Rust: the `[build]` section's command,
//! run against the WIT its manifest implies.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};
use plinth_package::{Build, Manifest};

/// Where `plugin build` keeps what it generates inside the plugin's directory.
const WORK_DIR: &str = ".plinth";

/// Writes the plugin's WIT to `DIR/.plinth/wit`, runs `[build].command` in `dir` with the
/// `PLINTH_*` variables set, and returns the path of the component it wrote.
///
/// The command sees:
/// - `PLINTH_WIT_DIR`: the WIT tree ([`super::wit`]);
/// - `PLINTH_WORLD`: the world of `plinth:app` to target;
/// - `PLINTH_WASM_OUT`: where to write the component;
/// - `PLINTH_CAPABILITIES`: the capabilities the world imports, comma-separated.
pub(super) fn build(dir: &Path, manifest: &Manifest, build: &Build) -> anyhow::Result<PathBuf> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot find {}", dir.display()))?;
    let work = dir.join(WORK_DIR);
    let wit_dir = work.join("wit");
    let wit = super::wit::write(manifest, &wit_dir)?;
    let out = work.join("plugin.wasm");
    // A stale component from an earlier build must not pass for this one's output.
    match std::fs::remove_file(&out) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error).with_context(|| format!("cannot remove {}", out.display()));
        }
    }

    let (program, args) = build
        .command
        .split_first()
        .context("[build].command is empty")?;
    eprintln!(
        "building with `{}` (world {})",
        build.command.join(" "),
        build.world()
    );
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .current_dir(&dir)
        .env("PLINTH_WIT_DIR", &wit_dir)
        .env("PLINTH_WORLD", build.world())
        .env("PLINTH_WASM_OUT", &out)
        .env("PLINTH_CAPABILITIES", wit.capabilities().join(","))
        .stdin(Stdio::null())
        // The command's output is progress for the author; stdout is the package path.
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| {
            format!("cannot run {program:?} from [build].command (is it installed and on PATH?)")
        })?;
    if !status.success() {
        bail!(
            "[build].command `{}` failed ({status}); see its output above",
            build.command.join(" ")
        );
    }
    if !out.is_file() {
        bail!(
            "[build].command `{}` succeeded but wrote no component to $PLINTH_WASM_OUT ({})",
            build.command.join(" "),
            out.display()
        );
    }
    eprintln!(
        "built {} in {:.1} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(out)
}
