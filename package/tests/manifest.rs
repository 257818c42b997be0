//! `plinth.toml` parsing: every malformed manifest fails with the key path and the reason.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::manifest_with;
use plinth_package::{
    ConfigType, ConfigValue, Error, Manifest, ManifestError, PLUGIN_API_VERSION, PricingModel,
};

/// Parses and expects a manifest error; returns it.
fn bad(text: &str) -> ManifestError {
    match Manifest::parse(text) {
        Err(Error::Manifest(e)) => e,
        Err(other) => panic!("expected a manifest error, got {other:?}"),
        Ok(m) => panic!("expected a manifest error, parsed {m:?}"),
    }
}

fn assert_bad(text: &str, path: &str, message_part: &str) {
    let e = bad(text);
    assert_eq!(e.path, path, "wrong path in {e}");
    assert!(
        e.message.contains(message_part),
        "message {:?} should contain {message_part:?}",
        e.message
    );
    assert!(
        e.to_string().starts_with(path),
        "display {e} should start with the path"
    );
}

#[test]
fn the_design_example_parses_completely() {
    let m = Manifest::parse(&manifest_with(
        r#"homepage = "https://example.com"
[permissions]
kv = { max-bytes = 1_048_576 }
http = { hosts = ["hooks.slack.com", "*.example.com", "10.0.0.1:8080", "[::1]:9000"] }
events = { subscribe = ["order.created"], emit = ["notify.sent"] }
config = true

[config.webhook-url]
type = "string"
secret = true
required = true

[config.retries]
type = "integer"
default = 3

[pricing]
model = "monthly"
amount = 500
currency = "USD"

[limits]
memory-mb = 64
timeout-ms = 2000
fuel = 1000000
"#,
    ))
    .unwrap();
    assert_eq!(m.plugin.id.to_string(), "acme.hello");
    assert_eq!(m.plugin.version, semver::Version::new(1, 2, 0));
    assert!(m.plugin.api.matches(&PLUGIN_API_VERSION));
    assert_eq!(m.permissions.kv.unwrap().max_bytes, 1_048_576);
    assert_eq!(m.permissions.http.as_ref().unwrap().hosts.len(), 4);
    assert!(m.permissions.config);
    assert!(m.config["webhook-url"].secret);
    assert_eq!(m.config["retries"].r#type, ConfigType::Integer);
    assert_eq!(m.config["retries"].default, Some(ConfigValue::Integer(3)));
    assert_eq!(m.pricing.model, PricingModel::Monthly);
    assert_eq!(m.pricing.amount, Some(500));
    assert_eq!(m.limits.fuel, Some(1_000_000));
}

#[test]
fn defaults_are_free_no_permissions_no_categories() {
    let m = Manifest::parse(
        "[plugin]\nid = \"a.b\"\nversion = \"0.1.0\"\nname = \"B\"\ndescription = \"B.\"\nlicense = \"MIT\"\napi = \"^0.1\"\n",
    )
    .unwrap();
    assert!(m.plugin.categories.is_empty());
    assert!(!m.pricing.is_paid());
    assert!(m.permissions.grants().is_empty());
    assert!(m.config.is_empty());
}

#[test]
fn unknown_top_level_key_is_named() {
    assert_bad(
        &manifest_with("[extras]\nx = 1\n"),
        "extras",
        "unknown field `extras`",
    );
}

#[test]
fn unknown_nested_key_is_named_with_its_path() {
    assert_bad(
        &manifest_with("[permissions]\nhttp = { hosts = [\"a.com\"], methods = [\"GET\"] }\n"),
        "permissions.http.methods",
        "unknown field `methods`",
    );
    assert_bad(
        &manifest_with("[permissions]\nkv = { max-bytes = 10, max_keys = 3 }\n"),
        "permissions.kv.max_keys",
        "unknown field",
    );
}

#[test]
fn bad_plugin_id_is_rejected() {
    for id in [
        "Acme.hello",
        "acme",
        "acme.hello.x",
        "acme.-x",
        "acme.x_y",
        ".x",
        "acme.",
    ] {
        let text = manifest_with("").replace("acme.hello", id);
        assert_bad(&text, "plugin.id", "is not a valid plugin id");
    }
    let long = format!("acme.{}", "a".repeat(65));
    assert_bad(
        &manifest_with("").replace("acme.hello", &long),
        "plugin.id",
        "longer than 64",
    );
}

#[test]
fn bad_semver_version_and_range_are_rejected() {
    let e = bad(&manifest_with("").replace("1.2.0", "1.2"));
    assert_eq!(e.path, "plugin.version");
    let e = bad(&manifest_with("").replace("^0.1", "not a range"));
    assert_eq!(e.path, "plugin.api");
}

#[test]
fn bad_host_is_named_by_index() {
    for host in [
        "https://x.com",
        "x.com/path",
        "X.COM",
        "*.com",
        "x..com",
        "a.com:0",
        "a.com:99999",
        "::1",
        "user@x.com",
        "-a.com",
    ] {
        let text = manifest_with(&format!(
            "[permissions]\nhttp = {{ hosts = [\"ok.example.com\", \"{host}\"] }}\n"
        ));
        assert_bad(
            &text,
            "permissions.http.hosts[1]",
            &format!("\"{host}\" is not a valid host"),
        );
    }
}

#[test]
fn empty_host_list_and_duplicate_hosts_are_rejected() {
    assert_bad(
        &manifest_with("[permissions]\nhttp = { hosts = [] }\n"),
        "permissions.http.hosts",
        "at least one host",
    );
    assert_bad(
        &manifest_with("[permissions]\nhttp = { hosts = [\"a.com\", \"b.com\", \"a.com\"] }\n"),
        "permissions.http.hosts[2]",
        "listed twice",
    );
}

#[test]
fn bad_topic_is_named_by_index() {
    for topic in [
        "Order.created",
        "order..created",
        "order created",
        ".order",
        "order/x",
    ] {
        let text = manifest_with(&format!(
            "[permissions]\nevents = {{ subscribe = [\"a.b\"], emit = [\"x\", \"{topic}\"] }}\n"
        ));
        assert_bad(&text, "permissions.events.emit[1]", "is not a valid topic");
    }
}

#[test]
fn zero_kv_quota_is_rejected() {
    assert_bad(
        &manifest_with("[permissions]\nkv = { max-bytes = 0 }\n"),
        "permissions.kv.max-bytes",
        "greater than 0",
    );
    assert_bad(
        &manifest_with("[permissions]\nkv = { max-bytes = -5 }\n"),
        "permissions.kv.max-bytes",
        "",
    );
}

#[test]
fn paid_pricing_needs_amount_and_currency() {
    assert_bad(
        &manifest_with("[pricing]\nmodel = \"monthly\"\ncurrency = \"USD\"\n"),
        "pricing",
        "needs an amount",
    );
    assert_bad(
        &manifest_with("[pricing]\nmodel = \"monthly\"\namount = 0\ncurrency = \"USD\"\n"),
        "pricing.amount",
        "greater than 0",
    );
    assert_bad(
        &manifest_with("[pricing]\nmodel = \"per-1000-invocations\"\namount = 5\n"),
        "pricing",
        "needs a currency",
    );
    assert_bad(
        &manifest_with("[pricing]\nmodel = \"monthly\"\namount = 5\ncurrency = \"usd\"\n"),
        "pricing.currency",
        "is not a valid currency",
    );
    assert_bad(
        &manifest_with("[pricing]\nmodel = \"free\"\namount = 100\n"),
        "pricing.amount",
        "free plugin has no amount",
    );
    assert_bad(
        &manifest_with("[pricing]\nmodel = \"yearly\"\n"),
        "pricing.model",
        "unknown variant `yearly`",
    );
    assert!(Manifest::parse(&manifest_with("[pricing]\nmodel = \"free\"\namount = 0\n")).is_ok());
}

#[test]
fn secret_with_default_is_rejected() {
    assert_bad(
        &manifest_with(
            "[permissions]\nconfig = true\n[config.token]\ntype = \"string\"\nsecret = true\ndefault = \"abc\"\n",
        ),
        "config.token.default",
        "a secret has no default",
    );
}

#[test]
fn default_of_the_wrong_type_is_rejected() {
    assert_bad(
        &manifest_with(
            "[permissions]\nconfig = true\n[config.retries]\ntype = \"integer\"\ndefault = \"three\"\n",
        ),
        "config.retries.default",
        "expected a integer",
    );
}

#[test]
fn config_keys_without_config_permission_are_rejected() {
    assert_bad(
        &manifest_with("[config.url]\ntype = \"string\"\n"),
        "config",
        "permissions.config is not true",
    );
}

#[test]
fn bad_config_type_and_key_are_rejected() {
    assert_bad(
        &manifest_with("[permissions]\nconfig = true\n[config.url]\ntype = \"url\"\n"),
        "config.url.type",
        "unknown variant `url`",
    );
    assert_bad(
        &manifest_with("[permissions]\nconfig = true\n[config.Url]\ntype = \"string\"\n"),
        "config.Url",
        "not a valid config key",
    );
}

#[test]
fn zero_limits_are_rejected() {
    assert_bad(
        &manifest_with("[limits]\nfuel = 0\n"),
        "limits.fuel",
        "greater than 0",
    );
    assert_bad(
        &manifest_with("[limits]\nmemory-mb = 0\n"),
        "limits.memory-mb",
        "greater than 0",
    );
}

#[test]
fn missing_required_field_is_reported() {
    let text = manifest_with("").replace("license = \"MIT\"\n", "");
    let e = bad(&text);
    assert!(e.to_string().contains("missing field `license`"), "{e}");
}

#[test]
fn empty_name_is_rejected() {
    assert_bad(
        &manifest_with("").replace("name = \"Hello\"", "name = \" \""),
        "plugin.name",
        "must not be empty",
    );
}

#[test]
fn toml_syntax_error_reports_the_line() {
    let e = bad("[plugin]\nid = \"a.b\"\nversion = \n");
    assert!(e.path.is_empty());
    assert!(e.message.starts_with("line 3"), "{e}");
}

#[test]
fn wrong_value_type_is_named() {
    assert_bad(
        &manifest_with("[permissions]\nconfig = \"yes\"\n"),
        "permissions.config",
        "invalid type",
    );
}
