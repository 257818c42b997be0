//! The `plinth` binary run as its users run it, for tests.

#![allow(
    dead_code,
    reason = "shared by several test binaries; each uses part of it"
)]

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{Result, ensure};
use plinth_test_artifacts::PLUGINS_TARGET_DIR;

/// `plinth ARGS` run in `cwd`. Plugin builds it starts share the guest build of
/// `plinth-test-artifacts` (so a scaffolded plugin costs one crate, not its dependencies).
pub fn plinth(cwd: &Path, args: &[&str]) -> Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_plinth"))
        .current_dir(cwd)
        .env("CARGO_TARGET_DIR", PLUGINS_TARGET_DIR)
        .env_remove("RUSTFLAGS")
        .env_remove("PLINTH_DATABASE_URL")
        .args(args)
        .output()?)
}

/// As [`plinth`], failing unless it exits 0; its stdout.
pub fn plinth_ok(cwd: &Path, args: &[&str]) -> Result<String> {
    let output = plinth(cwd, args)?;
    ensure!(
        output.status.success(),
        "plinth {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// `--data-dir DIR [--database-url URL]`, as the commands that open the database take them.
pub fn database_args(data_dir: &Path, url: Option<&str>) -> Vec<String> {
    let mut args = vec!["--data-dir".to_owned(), data_dir.display().to_string()];
    if let Some(url) = url {
        args.extend(["--database-url".to_owned(), url.to_owned()]);
    }
    args
}

/// `plinth audit verify` and `plinth ledger verify` on the database; fails unless both say
/// it is sound.
pub fn verify_audit_and_ledger(data_dir: &Path, url: Option<&str>) -> Result<()> {
    let database = database_args(data_dir, url);
    for (command, sound) in [("audit", "audit log sound"), ("ledger", "ledger sound")] {
        let mut args = vec![command, "verify"];
        args.extend(database.iter().map(String::as_str));
        let stdout = plinth_ok(data_dir, &args)?;
        ensure!(stdout.contains(sound), "plinth {command} verify: {stdout}");
    }
    Ok(())
}
