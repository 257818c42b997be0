//! Validation on real components built from `plugins/`, plus `wasm::inspect` edge cases.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use plinth_package::{
    Error, Package, Report, Severity, ValidationContext, WasmError, validate, wasm,
};
use plinth_test_artifacts::{
    COUNTER, HELLO, HTTP_ECHO, TestPlugin, UNDECLARED_HTTP, WEBHOOK_NOTIFY,
};

fn manifest_of(plugin: &TestPlugin) -> String {
    std::fs::read_to_string(std::path::Path::new(plugin.dir).join("plinth.toml")).unwrap()
}

fn package_of(plugin: &TestPlugin, manifest: String) -> Package {
    let wasm = std::fs::read(plugin.wasm).unwrap();
    Package::new(manifest, wasm, None, None).unwrap()
}

fn local(plugin: &TestPlugin) -> Report {
    validate(
        &package_of(plugin, manifest_of(plugin)),
        &ValidationContext::local(),
    )
}

fn codes(report: &Report, severity: Severity) -> Vec<&str> {
    report
        .findings
        .iter()
        .filter(|f| f.severity == severity)
        .map(|f| f.code.as_str())
        .collect()
}

fn error_with<'r>(report: &'r Report, code: &str) -> &'r str {
    report
        .errors()
        .find(|f| f.code == code)
        .map(|f| f.message.as_str())
        .unwrap_or_else(|| panic!("no {code} error in {report:#?}"))
}

#[test]
fn hello_validates_without_errors_or_warnings() {
    let report = local(&HELLO);
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn example_plugins_validate_without_errors() {
    for plugin in [COUNTER, HTTP_ECHO, WEBHOOK_NOTIFY] {
        let report = local(&plugin);
        assert!(!report.has_errors(), "{}: {report:#?}", plugin.name);
    }
}

#[test]
fn inspect_lists_the_real_imports_and_exports() {
    let info = wasm::inspect(&std::fs::read(COUNTER.wasm).unwrap()).unwrap();
    assert!(
        info.imports
            .iter()
            .any(|i| i.starts_with("plinth:plugin/kv@0.1.")),
        "{info:?}"
    );
    assert!(
        info.exports
            .iter()
            .any(|e| e.starts_with("plinth:plugin/handler@0.1.")),
        "{info:?}"
    );
    let echo = wasm::inspect(&std::fs::read(HTTP_ECHO.wasm).unwrap()).unwrap();
    assert!(
        echo.exports
            .iter()
            .any(|e| e.starts_with("wasi:http/incoming-handler@0.2.")),
        "{echo:?}"
    );
}

#[test]
fn undeclared_http_import_is_not_permitted() {
    let report = local(&UNDECLARED_HTTP);
    let message = error_with(&report, "import_not_permitted");
    assert!(message.contains("wasi:http/outgoing-handler"), "{message}");
    assert!(message.contains("\"http\""), "{message}");
    assert!(message.contains("does not declare"), "{message}");
}

#[test]
fn counter_without_kv_permission_errors() {
    let manifest = manifest_of(&COUNTER).replace("kv = { max-bytes = 65536, max-keys = 16 }\n", "");
    assert!(
        !manifest.contains("kv ="),
        "the fixture changed: {manifest}"
    );
    let report = validate(&package_of(&COUNTER, manifest), &ValidationContext::local());
    let message = error_with(&report, "import_not_permitted");
    assert!(
        message.contains("plinth:plugin/kv") && message.contains("\"kv\""),
        "{message}"
    );
}

#[test]
fn unused_kv_permission_warns() {
    let manifest = manifest_of(&HELLO).replace(
        "[permissions]\n",
        "[permissions]\nkv = { max-bytes = 1024 }\n",
    );
    let report = validate(&package_of(&HELLO, manifest), &ValidationContext::local());
    assert!(!report.has_errors(), "{report:#?}");
    assert_eq!(codes(&report, Severity::Warning), ["permission_unused"]);
    let warning = report.warnings().next().unwrap();
    assert!(warning.message.contains("\"kv\""), "{}", warning.message);
}

#[test]
fn unsupported_api_range_names_both_versions() {
    let manifest = manifest_of(&HELLO).replace("api = \"^0.1\"", "api = \"^0.2\"");
    let report = validate(&package_of(&HELLO, manifest), &ValidationContext::local());
    let message = error_with(&report, "api_unsupported");
    assert!(
        message.contains("^0.2") && message.contains("0.1.0"),
        "{message}"
    );
    // The component's plinth:plugin@0.1.x imports no longer satisfy the range either.
    assert!(report.has_code("incompatible_api_version"));
}

#[test]
fn marketplace_context_checks_publisher_version_and_key() {
    let mut package = package_of(&HELLO, manifest_of(&HELLO));
    let developer = common::key(1);
    package.sign(&developer);
    let context = ValidationContext {
        publisher: Some("acme".into()),
        published_versions: vec![semver::Version::new(0, 1, 0), semver::Version::new(0, 0, 9)],
        developer_keys: Some(vec![common::key(2).public_key()]),
        ..ValidationContext::default()
    };
    let report = validate(&package, &context);
    assert!(error_with(&report, "wrong_publisher").contains("examples.hello"));
    assert!(error_with(&report, "version_not_greater").contains("0.1.0"));
    assert!(
        error_with(&report, "signature_unknown_key")
            .contains(&developer.public_key().fingerprint())
    );
    assert_eq!(
        report.errors().count(),
        3,
        "every finding is reported: {report:#?}"
    );

    let good = ValidationContext {
        publisher: Some("examples".into()),
        published_versions: vec![semver::Version::new(0, 0, 9)],
        developer_keys: Some(vec![common::key(2).public_key(), developer.public_key()]),
        ..ValidationContext::default()
    };
    let report = validate(&package, &good);
    assert!(!report.has_errors(), "{report:#?}");
}

#[test]
fn a_signature_by_a_revoked_key_says_so() {
    let mut package = package_of(&HELLO, manifest_of(&HELLO));
    let developer = common::key(1);
    package.sign(&developer);
    let context = ValidationContext {
        developer_keys: Some(vec![common::key(2).public_key()]),
        revoked_keys: vec![developer.public_key()],
        ..ValidationContext::default()
    };
    let report = validate(&package, &context);
    assert!(
        error_with(&report, "signature_key_revoked")
            .contains(&developer.public_key().fingerprint())
    );
    assert!(!report.has_code("signature_unknown_key"));
}

#[test]
fn marketplace_requires_a_signature() {
    let package = package_of(&HELLO, manifest_of(&HELLO));
    let context = ValidationContext {
        developer_keys: Some(vec![common::key(1).public_key()]),
        ..ValidationContext::default()
    };
    assert!(validate(&package, &context).has_code("signature_missing"));
    assert!(!validate(&package, &ValidationContext::local()).has_errors());
}

#[test]
fn tampered_signed_package_fails_validation_even_locally() {
    let mut package = package_of(&HELLO, manifest_of(&HELLO));
    package.sign(&common::key(1));
    package.readme = Some("added after signing".into());
    let report = validate(&package, &ValidationContext::local());
    assert!(report.has_code("signature_digest_mismatch"), "{report:#?}");
}

#[test]
fn subscriptions_need_a_handler_and_unknown_exports_warn() {
    // An empty component exports nothing: no handler for the subscription.
    let manifest = manifest_of(&HELLO);
    let package = Package::new(manifest, common::EMPTY_COMPONENT.to_vec(), None, None).unwrap();
    let report = validate(&package, &ValidationContext::local());
    assert!(error_with(&report, "missing_handler").contains("greet"));
}

#[test]
fn core_module_is_not_a_component() {
    let core = b"\0asm\x01\0\0\0";
    assert!(matches!(
        wasm::inspect(core),
        Err(Error::Wasm(WasmError::CoreModule))
    ));
    let package = Package::new(manifest_of(&HELLO), core.to_vec(), None, None).unwrap();
    let report = validate(&package, &ValidationContext::local());
    assert!(error_with(&report, "not_a_component").contains("core WebAssembly module"));
}

#[test]
fn garbage_is_not_wasm() {
    for bytes in [&b""[..], b"hello world", b"\0asm\x0d\0\x01\0\xff\xff"] {
        assert!(
            matches!(
                wasm::inspect(bytes),
                Err(Error::Wasm(WasmError::Invalid(_)))
            ),
            "{bytes:?}"
        );
    }
}

#[test]
fn oversize_wasm_is_reported() {
    let package = package_of(&HELLO, manifest_of(&HELLO));
    let context = ValidationContext {
        limits: plinth_package::ArchiveLimits {
            wasm: 1000,
            ..Default::default()
        },
        ..ValidationContext::default()
    };
    assert!(error_with(&validate(&package, &context), "wasm_too_large").contains("1000"));
}

#[test]
fn report_serialises_as_the_api_shape() {
    let report = local(&UNDECLARED_HTTP);
    let json = serde_json::to_value(&report).unwrap();
    let first = &json["findings"][0];
    assert_eq!(first["severity"], "error");
    assert!(first["code"].is_string() && first["message"].is_string());
    let display = report.findings[0].to_string();
    assert!(
        display.starts_with("error[import_not_permitted]: "),
        "{display}"
    );
}

#[test]
fn what_readers_see_is_bounded_and_visible() {
    let manifest = manifest_of(&HELLO)
        .replace("name = \"Hello\"", "name = \"He\u{202E}llo\u{200B}\"")
        .replace(
            "categories = [\"examples\"]",
            &format!("categories = [\"{}\"]", "c".repeat(33)),
        );
    let package = package_of(&HELLO, manifest);
    let report = validate(&package, &ValidationContext::local());
    let problems: Vec<&str> = report
        .errors()
        .filter(|f| f.code == "display_text")
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(problems.len(), 2, "{report:#?}");
    assert!(problems[0].starts_with("plugin.name") && problems[0].contains("U+202E"));
    assert!(problems[1].starts_with("plugin.categories[0]") && problems[1].contains("33"));
}

#[test]
fn a_new_id_that_looks_like_one_in_use_is_a_warning() {
    let package = package_of(&HELLO, manifest_of(&HELLO));
    let taken = |ids: &[&str]| ValidationContext {
        taken_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        ..ValidationContext::default()
    };
    let report = validate(&package, &taken(&["examp1es.hello"]));
    let warning = report
        .warnings()
        .find(|f| f.code == "lookalike_id")
        .expect("a look-alike finding");
    assert!(warning.message.contains("examp1es.hello"), "{warning}");
    assert!(!report.has_errors(), "{report:#?}");
    // Its own id in use (a new version) and unrelated ids are not flagged.
    for ids in [
        &["examples.hello", "examp1es.hello"][..],
        &["examples.other"],
    ] {
        assert!(!validate(&package, &taken(ids)).has_code("lookalike_id"));
    }
}
