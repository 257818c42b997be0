//! End-to-end tests of `plinth keygen` and `plinth plugin …`: they drive the real binary the
//! way a plugin developer would, on the example and fixture plugins in `plugins/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use plinth_test_artifacts::{
    COUNTER, HELLO, PLUGINS_TARGET_DIR, SPIN_FOREVER, TestPlugin, UNDECLARED_HTTP,
};

/// Runs `plinth ARGS` in `cwd`. Cargo builds started by the CLI share the guest build of
/// `plinth-test-artifacts`, so they only relink what changed.
fn plinth(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plinth"))
        .current_dir(cwd)
        .env("CARGO_TARGET_DIR", PLUGINS_TARGET_DIR)
        .env_remove("RUSTFLAGS")
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run plinth: {error}"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the command succeeded, showing its stderr if not.
fn assert_ok(output: &Output) {
    assert!(output.status.success(), "plinth failed: {}", stderr(output));
}

/// Asserts the command failed with one `error: …` line that contains every `needle`, and
/// returns that line.
fn assert_fails_with(output: &Output, needles: &[&str]) -> String {
    assert!(!output.status.success(), "plinth unexpectedly succeeded");
    let stderr = stderr(output);
    let line = stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_else(|| panic!("no `error:` line in stderr: {stderr}"))
        .to_string();
    for needle in needles {
        assert!(
            line.contains(needle),
            "error line {line:?} does not mention {needle:?}"
        );
    }
    line
}

fn keygen(dir: &Path, name: &str) -> PathBuf {
    let output = plinth(dir, &["keygen", "--out", name]);
    assert_ok(&output);
    dir.join(name)
}

/// Builds `plugin` into `dir`, signed with `key` if given, and returns the package path.
fn build(dir: &Path, plugin: &TestPlugin, key: Option<&Path>) -> PathBuf {
    let out = dir.join(format!("{}.plinth", plugin.name));
    let mut args = vec![
        "plugin",
        "build",
        plugin.dir,
        "--out",
        out.to_str().unwrap_or_default(),
    ];
    if let Some(key) = key {
        args.extend(["--key", key.to_str().unwrap_or_default()]);
    }
    let output = plinth(dir, &args);
    assert_ok(&output);
    assert_eq!(stdout(&output).trim(), out.display().to_string());
    out
}

fn verify(dir: &Path, package: &Path, public_key: &Path) -> Output {
    plinth(
        dir,
        &[
            "plugin",
            "verify",
            package.to_str().unwrap_or_default(),
            "--public-key",
            public_key.to_str().unwrap_or_default(),
        ],
    )
}

fn inspect_json(dir: &Path, package: &Path) -> serde_json::Value {
    let output = plinth(
        dir,
        &[
            "plugin",
            "inspect",
            package.to_str().unwrap_or_default(),
            "--json",
        ],
    );
    assert_ok(&output);
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("inspect --json printed invalid JSON: {error}"))
}

/// `plinth plugin run PACKAGE ARGS…` in `dir`.
fn plugin_run(dir: &Path, package: &Path, args: &[&str]) -> Output {
    let mut all = vec!["plugin", "run", package.to_str().unwrap_or_default()];
    all.extend_from_slice(args);
    plinth(dir, &all)
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn keygen_writes_a_private_secret_and_a_public_key_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let output = plinth(dir.path(), &["keygen", "--out", "key"]);
    assert_ok(&output);

    let public = std::fs::read_to_string(dir.path().join("key.pub")).unwrap_or_default();
    assert!(
        public.starts_with("ed25519:"),
        "public key file: {public:?}"
    );
    assert_eq!(stdout(&output).trim(), public.trim());
    let secret = std::fs::read_to_string(dir.path().join("key")).unwrap_or_default();
    assert!(
        !secret.contains(public.trim()),
        "the secret file holds the secret"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("key"))
            .map(|meta| meta.permissions().mode() & 0o777)
            .unwrap_or_default();
        assert_eq!(mode, 0o600, "secret key must be readable only by its owner");
    }

    let again = plinth(dir.path(), &["keygen", "--out", "key"]);
    assert_fails_with(&again, &["already exists", "--force"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("key")).unwrap_or_default(),
        secret,
        "a refused keygen must leave the old key alone"
    );
}

#[test]
fn a_signed_package_verifies_and_any_flipped_byte_is_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let key = keygen(dir.path(), "key");
    let package = build(dir.path(), &HELLO, Some(&key));
    let public = dir.path().join("key.pub");

    let ok = verify(dir.path(), &package, &public);
    assert_ok(&ok);
    assert!(
        stdout(&ok).starts_with("OK examples.hello 0.1.0"),
        "{}",
        stdout(&ok)
    );

    let bytes = std::fs::read(&package).unwrap_or_default();
    let len = bytes.len();
    assert!(len > 100, "package is {len} bytes");
    // The gzip header, the start of the deflate data, the middle, and the CRC/size trailer.
    let positions = [
        0,
        1,
        2,
        3,
        4,
        8,
        9,
        10,
        11,
        len / 3,
        len / 2,
        len - 8,
        len - 4,
        len - 1,
    ];
    for position in positions {
        let mut tampered = bytes.clone();
        tampered[position] ^= 0x01;
        let path = dir.path().join(format!("tampered-{position}.plinth"));
        std::fs::write(&path, &tampered).unwrap_or_else(|e| panic!("{e}"));
        let output = verify(dir.path(), &path, &public);
        assert!(
            !output.status.success(),
            "flipping byte {position} of {len} went unnoticed"
        );
        let line = assert_fails_with(&output, &[]);
        assert!(
            line.len() > "error: ".len() + 10,
            "reason too short: {line}"
        );
    }
}

#[test]
fn verify_refuses_a_package_signed_by_another_key() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let key = keygen(dir.path(), "key");
    keygen(dir.path(), "other");
    let package = build(dir.path(), &HELLO, Some(&key));
    let output = verify(dir.path(), &package, &dir.path().join("other.pub"));
    assert_fails_with(&output, &["developer signature"]);
}

#[test]
fn an_unsigned_package_fails_verify_until_it_is_signed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let key = keygen(dir.path(), "key");
    let package = build(dir.path(), &HELLO, None);
    let public = dir.path().join("key.pub");
    assert_fails_with(&verify(dir.path(), &package, &public), &["signature"]);

    let signed = plinth(
        dir.path(),
        &[
            "plugin",
            "sign",
            package.to_str().unwrap_or_default(),
            "--key",
            key.to_str().unwrap_or_default(),
        ],
    );
    assert_ok(&signed);
    assert_ok(&verify(dir.path(), &package, &public));
}

#[test]
fn inspect_json_shows_id_version_permissions_imports_exports_and_digest() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let package = build(dir.path(), &COUNTER, None);
    let report = inspect_json(dir.path(), &package);

    assert_eq!(report["id"], "examples.counter");
    assert_eq!(report["version"], "0.1.0");
    let digest = report["digest"].as_str().unwrap_or_default();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 7 + 64,
        "digest {digest:?}"
    );
    let capabilities: Vec<&str> = report["permissions"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|p| p["capability"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        capabilities.contains(&"kv"),
        "permissions: {}",
        report["permissions"]
    );
    assert!(
        report["permissions"][0]["sentence"]
            .as_str()
            .is_some_and(|sentence| !sentence.is_empty()),
        "every permission has a sentence"
    );
    let imports = strings(&report["imports"]);
    assert!(
        imports
            .iter()
            .any(|import| import.starts_with("plinth:plugin/kv@0.1")),
        "imports: {imports:?}"
    );
    assert!(
        !imports
            .iter()
            .any(|import| import.starts_with("wasi:http/outgoing-handler")),
        "counter makes no HTTP calls: {imports:?}"
    );
    let exports = strings(&report["exports"]);
    assert!(
        exports
            .iter()
            .any(|export| export.starts_with("plinth:plugin/handler@0.1")),
        "exports: {exports:?}"
    );

    // The text form says the same in sentences.
    let text = plinth(
        dir.path(),
        &["plugin", "inspect", package.to_str().unwrap_or_default()],
    );
    assert_ok(&text);
    assert!(stdout(&text).contains(digest));
}

#[test]
fn building_a_plugin_with_an_undeclared_import_reports_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("undeclared.plinth");
    let output = plinth(
        dir.path(),
        &[
            "plugin",
            "build",
            UNDECLARED_HTTP.dir,
            "--out",
            out.to_str().unwrap_or_default(),
        ],
    );
    assert_fails_with(&output, &["validation failed", "no package written"]);
    let finding = stderr(&output)
        .lines()
        .find(|line| line.contains("import_not_permitted"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no import_not_permitted finding: {}", stderr(&output)));
    assert!(finding.contains("wasi:http/outgoing-handler"), "{finding}");
    assert!(finding.contains("\"http\""), "{finding}");
    assert!(!out.exists(), "a failed build must not write a package");
}

#[test]
fn a_new_plugin_builds_unchanged_and_is_what_inspect_shows() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let output = plinth(dir.path(), &["plugin", "new", "acme.demo", "x"]);
    assert_ok(&output);
    for file in ["Cargo.toml", "plinth.toml", "src/lib.rs", "README.md"] {
        assert!(
            dir.path().join("x").join(file).is_file(),
            "scaffold lacks {file}"
        );
    }

    let build = plinth(dir.path(), &["plugin", "build", "x"]);
    assert_ok(&build);
    let package = dir.path().join("acme.demo-0.1.0.plinth");
    assert_eq!(stdout(&build).trim(), "acme.demo-0.1.0.plinth");
    let report = inspect_json(dir.path(), &package);
    assert_eq!(report["id"], "acme.demo");
    assert!(
        strings(&report["exports"])
            .iter()
            .any(|export| export.starts_with("plinth:plugin/handler@")),
        "{report}"
    );

    // A second scaffold into the same, now non-empty, directory is refused.
    let again = plinth(dir.path(), &["plugin", "new", "acme.demo", "x"]);
    assert_fails_with(&again, &["not empty"]);
}

#[test]
fn plugin_new_refuses_an_invalid_id() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let output = plinth(dir.path(), &["plugin", "new", "Acme_Demo", "x"]);
    assert_fails_with(&output, &["invalid plugin id", "Acme_Demo"]);
    assert!(
        !dir.path().join("x").exists(),
        "nothing is created for a bad id"
    );
}

#[test]
fn a_bad_manifest_is_reported_with_its_key_path_before_compiling() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    assert_ok(&plinth(dir.path(), &["plugin", "new", "acme.broken", "x"]));
    let manifest = dir.path().join("x/plinth.toml");
    let text = std::fs::read_to_string(&manifest).unwrap_or_default();
    std::fs::write(
        &manifest,
        text.replace(
            "[permissions]",
            "[permissions]\nhttp = { hosts = [\"ok.example.com\", \"http://bad\"] }",
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Source that cannot compile: had cargo run, its failure would be the error.
    std::fs::write(dir.path().join("x/src/lib.rs"), "this is not rust")
        .unwrap_or_else(|e| panic!("{e}"));
    let output = plinth(dir.path(), &["plugin", "build", "x"]);
    assert_fails_with(&output, &["plinth.toml", "permissions.http.hosts[1]"]);
    assert!(
        !stderr(&output).contains("cargo build failed"),
        "the manifest is checked before cargo runs: {}",
        stderr(&output)
    );
}

#[test]
fn missing_and_corrupt_inputs_fail_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    assert_fails_with(
        &plinth(dir.path(), &["plugin", "build", "nowhere"]),
        &["nowhere", "plinth.toml"],
    );
    std::fs::write(dir.path().join("junk.plinth"), b"not a package")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_fails_with(
        &plinth(dir.path(), &["plugin", "inspect", "junk.plinth"]),
        &["junk.plinth", "not a valid Plinth package"],
    );
    assert_fails_with(
        &plinth(
            dir.path(),
            &[
                "plugin",
                "verify",
                "junk.plinth",
                "--public-key",
                "missing.pub",
            ],
        ),
        &["missing.pub"],
    );
}

#[test]
fn plugin_run_prints_the_greeting() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let package = build(dir.path(), &HELLO, None);
    let output = plugin_run(
        dir.path(),
        &package,
        &["--event", "greet", "--payload", "\"Ada\""],
    );
    assert_ok(&output);
    assert_eq!(stdout(&output).trim(), "\"Hello, Ada!\"");
    assert!(
        stderr(&output).contains("[info] greeting"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn plugin_run_keeps_kv_state_between_runs_in_its_data_dir() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let package = build(dir.path(), &COUNTER, None);
    let run = || {
        let output = plugin_run(dir.path(), &package, &["--event", "count", "--json"]);
        assert_ok(&output);
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("run --json printed invalid JSON: {e}"));
        report["output"]["count"].clone()
    };
    assert_eq!(run(), 1);
    assert_eq!(run(), 2);
}

#[test]
fn plugin_run_ends_an_infinite_loop_with_a_typed_timeout() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let package = build(dir.path(), &SPIN_FOREVER, None);
    let output = plugin_run(
        dir.path(),
        &package,
        &["--event", "x", "--timeout-ms", "200"],
    );
    assert_fails_with(&output, &["200 ms deadline", "[timeout]"]);

    let fuel = plugin_run(
        dir.path(),
        &package,
        &["--event", "run", "--fuel", "1000000"],
    );
    assert_fails_with(&fuel, &["out of fuel", "[out_of_fuel]"]);
}

#[test]
fn plugin_run_refuses_a_payload_that_is_not_json() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let package = build(dir.path(), &HELLO, None);
    let output = plugin_run(
        dir.path(),
        &package,
        &["--event", "greet", "--payload", "Ada"],
    );
    assert_fails_with(&output, &["--payload is not valid JSON"]);
}

/// A plugin directory with `counter`'s manifest plus `build_section`, for the language-neutral
/// build path.
fn counter_dir_with(dir: &Path, build_section: &str) -> PathBuf {
    let plugin = dir.join("prebuilt");
    std::fs::create_dir_all(&plugin).unwrap_or_else(|e| panic!("{e}"));
    let manifest = std::fs::read_to_string(Path::new(COUNTER.dir).join("plinth.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        plugin.join("plinth.toml"),
        format!("{manifest}\n{build_section}"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    plugin
}

#[test]
fn plugin_wit_writes_the_world_the_permissions_imply() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let plugin = counter_dir_with(dir.path(), "");
    let output = plinth(dir.path(), &["plugin", "wit", "prebuilt"]);
    assert_ok(&output);
    let world = std::fs::read_to_string(plugin.join("wit/world.wit")).unwrap_or_default();
    assert!(world.contains("import plinth:plugin/kv@0.1.0;"), "{world}");
    assert!(!world.contains("outgoing-handler"), "{world}");
    assert!(!world.contains("plinth:plugin/config"), "{world}");
    for dep in ["plinth-plugin.wit", "http.wit", "sockets.wit"] {
        assert!(plugin.join("wit/deps").join(dep).is_file(), "{dep} missing");
    }
    assert!(
        stderr(&output).contains("imports: log, kv"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_build_section_runs_its_command_with_the_wit_and_packages_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // The command records what it was given, then "builds" by copying the Rust counter.
    let script = format!(
        "printf '%s|%s|%s' \"$PLINTH_WORLD\" \"$PLINTH_CAPABILITIES\" \"$PLINTH_WIT_DIR\" > given \
         && test -f \"$PLINTH_WIT_DIR/world.wit\" && cp {} \"$PLINTH_WASM_OUT\"",
        COUNTER.wasm
    );
    let section = format!("[build]\ncommand = [\"sh\", \"-c\", {script:?}]\nworld = \"plugin\"\n",);
    let plugin = counter_dir_with(dir.path(), &section);
    let out = dir.path().join("counter.plinth");
    let output = plinth(
        dir.path(),
        &[
            "plugin",
            "build",
            "prebuilt",
            "--out",
            out.to_str().unwrap_or_default(),
        ],
    );
    assert_ok(&output);
    let given = std::fs::read_to_string(plugin.join("given")).unwrap_or_default();
    let wit_dir = plugin
        .canonicalize()
        .unwrap_or_else(|e| panic!("{e}"))
        .join(".plinth/wit");
    assert_eq!(given, format!("plugin|log,kv|{}", wit_dir.display()));
    assert!(
        stderr(&output).contains("the host compiles it"),
        "no compile check: {}",
        stderr(&output)
    );
    // The package runs: the command's output is the component.
    let ran = plugin_run(dir.path(), &out, &["--event", "count"]);
    assert_ok(&ran);
    assert!(stdout(&ran).contains("\"count\": 1"), "{}", stdout(&ran));
}

#[test]
fn a_build_command_that_fails_or_writes_nothing_is_reported_and_no_package_is_written() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    counter_dir_with(dir.path(), "[build]\ncommand = [\"true\"]\n");
    let output = plinth(dir.path(), &["plugin", "build", "prebuilt"]);
    assert_fails_with(&output, &["wrote no component", "PLINTH_WASM_OUT"]);
    std::fs::remove_dir_all(dir.path().join("prebuilt")).unwrap_or_else(|e| panic!("{e}"));
    counter_dir_with(dir.path(), "[build]\ncommand = [\"false\"]\n");
    let output = plinth(dir.path(), &["plugin", "build", "prebuilt"]);
    assert_fails_with(&output, &["[build].command", "failed"]);
    std::fs::remove_dir_all(dir.path().join("prebuilt")).unwrap_or_else(|e| panic!("{e}"));
    counter_dir_with(
        dir.path(),
        "[build]\ncommand = [\"true\"]\nworld = \"everything\"\n",
    );
    let output = plinth(dir.path(), &["plugin", "build", "prebuilt"]);
    assert_fails_with(&output, &["build.world", "everything"]);
    let packages = std::fs::read_dir(dir.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "plinth"))
        .count();
    assert_eq!(packages, 0, "a package was written");
}

#[test]
fn a_prebuilt_component_is_packaged_and_timed_per_call() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    counter_dir_with(dir.path(), "");
    let out = dir.path().join("prebuilt.plinth");
    let output = plinth(
        dir.path(),
        &[
            "plugin",
            "build",
            "prebuilt",
            "--wasm",
            COUNTER.wasm,
            "--out",
            out.to_str().unwrap_or_default(),
        ],
    );
    assert_ok(&output);
    let inspection = inspect_json(dir.path(), &out);
    assert!(
        inspection["core_instances"].as_u64().unwrap_or(0) >= 1
            && inspection["initial_memory_bytes"].as_u64().unwrap_or(0) > 0,
        "{inspection}"
    );
    assert!(
        strings(&inspection["toolchain"])
            .iter()
            .any(|tool| tool.starts_with("processed-by: wit-bindgen-rust")),
        "{inspection}"
    );
    let ran = plugin_run(dir.path(), &out, &["--event", "count", "--repeat", "5"]);
    assert_ok(&ran);
    assert!(
        stderr(&ran).contains("5 calls: first "),
        "no timing: {}",
        stderr(&ran)
    );
    // Every call ran, in fresh instances sharing the kv store: the last one counts five.
    assert!(stdout(&ran).contains("\"count\": 5"), "{}", stdout(&ran));
}
