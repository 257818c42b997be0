//! `docs/` is kept true by running it.
//!
//! - [`every_documented_command_runs`]: the ```` ```sh ```` blocks of the guides run, page after
//!   page in [`PAGES`] order, as one bash script (`set -euo pipefail`) with the real `plinth`
//!   on `PATH`, in a copy of the repository's tracked files (a fresh clone), with an empty
//!   `HOME`. After the quickstart the test checks what a newcomer must have by then: a running
//!   marketplace with `examples.hello` installed for tenant `acme`.
//! - [`the_operator_guide_names_every_setting`]: every flag and environment variable of
//!   `plinth serve --help` is in `docs/operator.md`'s reference, and every `PLINTH_*` variable
//!   the code reads is in some page.
//!
//! What the script is given instead of being run verbatim is listed in [`SUBSTITUTIONS`];
//! a block fenced ```` ```sh not-run: REASON ```` is not run, and must be one of
//! [`NOT_RUN`] (so a new unrunnable command needs a reason here too).

mod common {
    pub mod cli;
}

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use plinth_test_artifacts::PLUGINS_TARGET_DIR;

/// The guides whose commands run, in order: each continues from the state the previous ones
/// left (the quickstart's server, variables and files).
const PAGES: [&str; 5] = [
    "quickstart.md",
    "plugin-author.md",
    "reviewer.md",
    "tenant.md",
    "operator.md",
];

/// Pages with no commands (generated references).
const REFERENCES: [&str; 1] = ["api.md"];

/// Lines of the docs the test does not run as written, and why.
const SUBSTITUTIONS: [(&str, &str, &str); 1] = [(
    "cargo install --locked --path .",
    ": cargo install skipped",
    "the test puts the `plinth` it built on PATH: the same binary, without a second build",
)];

/// Blocks fenced `sh not-run: …`, by their first line: commands that need what a test
/// machine does not have.
const NOT_RUN: [&str; 6] = [
    "cargo build -p plinth-processor-double",
    "pg_dump --format=custom --file=plinth.dump \"$PLINTH_DATABASE_URL\"",
    "docker build -t plinth .",
    "docker run -d --name plinth -p 8080:8080 -v plinth-data:/data plinth",
    "docker run -d --name plinth -p 8080:8080 \\",
    "psql \"$PLINTH_DATABASE_URL\" -c \"SELECT tablename, policyname FROM pg_policies ORDER BY 1\"",
];

/// A fenced code block: its info string and text.
struct Block {
    info: String,
    code: String,
}

/// The fenced code blocks of `markdown`.
fn blocks(markdown: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut current: Option<Block> = None;
    for line in markdown.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) => {
                current = Some(Block {
                    info: info.trim().to_owned(),
                    code: String::new(),
                });
            }
            (Some(_), Some(rest)) if rest.trim().is_empty() => {
                found.extend(current.take());
            }
            (Some(block), _) => {
                block.code.push_str(line);
                block.code.push('\n');
            }
            (None, None) => {}
        }
    }
    found
}

/// The repository's root (the `plinth` package).
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Copies the tracked files of the repository (as they are in the working tree) to `to`.
fn fresh_clone(to: &Path) -> Result<()> {
    let listed = Command::new("git")
        .current_dir(repo())
        .args(["ls-files", "-z"])
        .output()
        .context("git ls-files")?;
    ensure!(listed.status.success(), "git ls-files failed");
    for name in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name)?;
        let from = repo().join(name);
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        let target = to.join(name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&from, &target)?;
    }
    Ok(())
}

/// A free loopback address for the guides' server. It is released at once (the server takes
/// it a moment later), so it is chosen below Linux's ephemeral range (32768–60999), where the
/// servers of other tests (bound to port 0) never land.
fn free_address() -> Result<String> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .subsec_nanos()
        ^ std::process::id();
    for attempt in 0..200u32 {
        let port = 20_000 + (seed.wrapping_add(attempt.wrapping_mul(7_919)) % 12_000);
        let address = format!("127.0.0.1:{port}");
        if std::net::TcpListener::bind(&address).is_ok() {
            return Ok(address);
        }
    }
    anyhow::bail!("no free port between 20000 and 32000")
}

/// The script of the pages: their `sh` blocks, with the [`SUBSTITUTIONS`], the address and a
/// check after the quickstart.
fn script(address: &str) -> Result<String> {
    let mut script = String::from(
        "set -euo pipefail\n\
         # The servers the guides start in the background stop with the script.\n\
         trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n",
    );
    let mut not_run = Vec::new();
    for page in PAGES {
        let markdown = std::fs::read_to_string(repo().join("docs").join(page))
            .with_context(|| format!("docs/{page}"))?;
        script.push_str(&format!("echo '::page {page}' >&2\n"));
        for block in blocks(&markdown) {
            if block.info.starts_with("sh not-run: ") {
                not_run.push(block.code.lines().next().unwrap_or("").to_owned());
                continue;
            }
            if block.info != "sh" {
                ensure!(
                    !block.info.starts_with("sh") && !block.info.starts_with("bash"),
                    "docs/{page}: a shell block fenced {:?}: use `sh` or `sh not-run: REASON`",
                    block.info
                );
                continue;
            }
            for line in block.code.lines() {
                let mut line = line.replace("127.0.0.1:8080", address);
                for (written, run, _why) in SUBSTITUTIONS {
                    if line.trim() == written {
                        line = run.to_owned();
                    }
                }
                // A release build of the whole platform is not something to start by accident.
                ensure!(
                    !line.trim_start().starts_with("cargo install"),
                    "docs/{page}: `{line}` would build a release plinth: list it in SUBSTITUTIONS"
                );
                script.push_str(&line);
                script.push('\n');
            }
        }
        if page == "quickstart.md" {
            script.push_str(
                "# The test's check: a newcomer now has hello installed for tenant acme.\n\
                 curl -sf \"$S/v1/tenants/acme/installs\" -H \"authorization: Bearer $ADMIN\" \
                 | jq -e '.items[] | select(.plugin == \"examples.hello\" and .status == \"active\")' >/dev/null\n\
                 echo '::checkpoint hello installed for acme' >&2\n",
            );
        }
    }
    script.push_str("echo '::done' >&2\n");
    ensure!(
        not_run == NOT_RUN,
        "the blocks not run are {not_run:?}; NOT_RUN lists {NOT_RUN:?}"
    );
    Ok(script)
}

#[test]
fn every_documented_command_runs() -> Result<()> {
    let mut pages: Vec<String> = std::fs::read_dir(repo().join("docs"))?
        .map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    pages.sort();
    let mut expected: Vec<String> = PAGES
        .iter()
        .chain(REFERENCES.iter())
        .map(|page| (*page).to_owned())
        .collect();
    expected.sort();
    ensure!(
        pages == expected,
        "docs/ holds {pages:?}; this test knows {expected:?}"
    );

    let work = tempfile::tempdir()?;
    let clone = work.path().join("plinth");
    let home = work.path().join("home");
    std::fs::create_dir_all(&home)?;
    fresh_clone(&clone)?;
    let address = free_address()?;
    let script = script(&address)?;
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_plinth"))
        .parent()
        .context("bin dir")?;
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The guides' plugin builds share a guest target dir of their own (the clone's paths
    // differ from `plugins/`'s, so sharing the test artifacts' would rebuild them under the
    // other tests' feet); it lives next to that one and stays warm between runs.
    let guest_target: PathBuf = Path::new(PLUGINS_TARGET_DIR).with_file_name("docs-plugins");
    // HOME is the newcomer's, empty; cargo and rustup stay where they are installed.
    let real_home = std::env::var("HOME").unwrap_or_default();
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{real_home}/.cargo"));
    let rustup_home =
        std::env::var("RUSTUP_HOME").unwrap_or_else(|_| format!("{real_home}/.rustup"));
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&clone)
        .env("PATH", path)
        .env("HOME", &home)
        .env("CARGO_HOME", cargo_home)
        .env("RUSTUP_HOME", rustup_home)
        .env("CARGO_TARGET_DIR", &guest_target)
        .env("PLINTH_LISTEN", &address)
        .env("PLINTH_LOG", "warn")
        .env_remove("PLINTH_DATABASE_URL")
        .env_remove("PLINTH_DATA_DIR")
        .env_remove("PLINTH_LOG_FORMAT")
        .env_remove("RUSTFLAGS")
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success() && stderr.contains("::checkpoint hello installed for acme"),
        "the docs' commands failed ({}); the script:\n{script}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    ensure!(stderr.contains("::done"), "{stderr}");
    Ok(())
}

/// The `--flags` and `[env: NAME` variables of `plinth serve --help`.
fn serve_settings() -> Result<(Vec<String>, Vec<String>)> {
    let help = common::cli::plinth_ok(repo(), &["serve", "--help"])?;
    let mut flags = Vec::new();
    let mut vars = Vec::new();
    for line in help.lines().map(str::trim) {
        if let Some(flag) = line.strip_prefix("--") {
            let name = flag.split([' ', '<']).next().unwrap_or("");
            if name != "help" && name != "version" {
                flags.push(format!("--{name}"));
            }
        }
        if let Some(env) = line.strip_prefix("[env: ") {
            vars.push(env.split(['=', ']']).next().unwrap_or("").to_owned());
        }
    }
    Ok((flags, vars))
}

/// Every `PLINTH_*` name in the Rust sources under `dir`.
fn env_names(dir: &Path, names: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            env_names(&path, names)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path)?;
            for (at, _) in text.match_indices("PLINTH_") {
                let name: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_' || c.is_ascii_digit())
                    .collect();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    Ok(())
}

#[test]
fn the_operator_guide_names_every_setting() -> Result<()> {
    let operator = std::fs::read_to_string(repo().join("docs/operator.md"))?;
    let (flags, vars) = serve_settings()?;
    ensure!(flags.len() >= 10, "{flags:?}");
    for setting in flags.iter().chain(vars.iter()) {
        ensure!(
            operator.contains(&format!("| `{setting}"))
                || operator.contains(&format!("`{setting}` |")),
            "docs/operator.md's reference table lacks `{setting}`"
        );
    }
    // Nothing documented as a `plinth serve` flag that it does not have.
    for line in operator.lines().filter(|l| l.starts_with("| `--")) {
        let flag = line
            .trim_start_matches("| `")
            .split(['`', ' '])
            .next()
            .unwrap_or("");
        ensure!(
            flags.iter().any(|f| f == flag),
            "docs/operator.md documents {flag}, which plinth serve does not have"
        );
    }
    let mut all_docs = String::new();
    for page in PAGES {
        all_docs.push_str(&std::fs::read_to_string(repo().join("docs").join(page))?);
    }
    let mut names = Vec::new();
    for dir in ["src", "marketplace/src", "host/src"] {
        env_names(&repo().join(dir), &mut names)?;
    }
    ensure!(names.len() >= 5, "{names:?}");
    for name in names {
        ensure!(
            all_docs.contains(&name),
            "{name} is read by the code but no page of docs/ names it"
        );
    }
    Ok(())
}
