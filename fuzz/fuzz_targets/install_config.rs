//! An install's configuration against the manifest's `[config.<key>]` schema: arbitrary
//! declarations (kept only when the manifest with them parses), an arbitrary JSON object from
//! the API, and arbitrary previous values of declared keys (as an update carries them over).
//! What `check` accepts holds only declared keys, each with text its declared type accepts,
//! every required key set, input values as given; sealing it and opening it again gives it back,
//! and the public view never shows a secret.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use plinth_marketplace::installs::config::{self, Values};
use plinth_marketplace::secrets::SecretsKey;
use plinth_package::{ConfigField, ConfigType, ConfigValue, Manifest};
use serde_json::{Map, Number, Value};

const BASE: &str = "[plugin]\nid = \"acme.fuzz\"\nversion = \"1.0.0\"\nname = \"Fuzz\"\n\
    description = \"Fuzz.\"\nlicense = \"MIT\"\napi = \"^0.1\"\n[permissions]\nconfig = true\n";

#[derive(Debug, Arbitrary)]
struct Field {
    key: String,
    r#type: u8,
    secret: bool,
    required: bool,
    default: Option<Scalar>,
}

#[derive(Debug, Clone, Arbitrary)]
enum Scalar {
    Boolean(bool),
    Integer(i64),
    String(String),
}

#[derive(Debug, Arbitrary)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<String>),
}

#[derive(Debug, Arbitrary)]
struct Input {
    fields: Vec<Field>,
    /// Values from the API: a declared key (by index) or any key, and a value.
    values: Vec<(Result<u8, String>, Json)>,
    /// Previous values, of declared keys (by index).
    previous: Vec<(u8, String)>,
}

fn config_type(byte: u8) -> ConfigType {
    match byte % 3 {
        0 => ConfigType::String,
        1 => ConfigType::Integer,
        _ => ConfigType::Boolean,
    }
}

fn manifest(fields: &[Field]) -> Option<Manifest> {
    let mut manifest = Manifest::parse(BASE).ok()?;
    manifest.config = fields
        .iter()
        .map(|f| {
            let field = ConfigField {
                r#type: config_type(f.r#type),
                description: None,
                secret: f.secret,
                required: f.required,
                default: f.default.clone().map(|d| match d {
                    Scalar::Boolean(b) => ConfigValue::Boolean(b),
                    Scalar::Integer(i) => ConfigValue::Integer(i),
                    Scalar::String(s) => ConfigValue::String(s),
                }),
            };
            (f.key.clone(), field)
        })
        .collect();
    // Only declarations the manifest's own rules accept.
    Manifest::parse(&toml::to_string(&manifest).ok()?).ok()
}

fn json(value: &Json) -> Value {
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Int(i) => Value::Number((*i).into()),
        Json::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Json::Text(s) => Value::String(s.clone()),
        Json::List(items) => Value::Array(items.iter().cloned().map(Value::String).collect()),
    }
}

fuzz_target!(|input: Input| {
    let Some(manifest) = manifest(&input.fields) else {
        return;
    };
    let keys: Vec<&String> = manifest.config.keys().collect();
    let declared = |index: u8| keys.get(usize::from(index) % keys.len().max(1)).copied();
    let mut object = Map::new();
    for (key, value) in &input.values {
        let key = match key {
            Ok(index) => match declared(*index) {
                Some(key) => key.clone(),
                None => continue,
            },
            Err(any) => any.clone(),
        };
        object.insert(key, json(value));
    }
    let previous: Values = input
        .previous
        .iter()
        .filter_map(|(index, value)| Some((declared(*index)?.clone(), value.clone())))
        .collect();

    let Ok(values) = config::check(&manifest, &object, &previous) else {
        return;
    };
    for (key, text) in &values {
        let Some(field) = manifest.config.get(key) else {
            panic!("accepted an undeclared key {key:?}");
        };
        assert!(
            field.r#type.accepts_text(text),
            "config.{key} holds {text:?}, which is not a {}",
            field.r#type
        );
    }
    for (key, field) in &manifest.config {
        if field.required {
            assert!(values.contains_key(key), "required config.{key} missing");
        }
    }
    for (key, value) in &object {
        match value {
            Value::Null => assert!(
                !values.contains_key(key) || manifest.config[key].default.is_some(),
                "config.{key} was cleared but is still set"
            ),
            Value::String(s) => assert_eq!(values.get(key), Some(s)),
            _ => assert!(values.contains_key(key)),
        }
    }

    let key = SecretsKey::from_bytes([7; 32]);
    let stored = match config::seal(&manifest, &values, &key, "install-1", &BTreeSet::new()) {
        Ok(stored) => stored,
        Err(e) => panic!("sealing failed: {e}"),
    };
    match config::open(&stored, &key, "install-1") {
        Ok(opened) => assert_eq!(opened, values),
        Err(e) => panic!("opening what was sealed failed: {e}"),
    }
    let view = config::public_view(&stored);
    let shown: BTreeMap<String, Value> = view["values"]
        .as_object()
        .map(|m| m.clone().into_iter().collect())
        .unwrap_or_default();
    for name in shown.keys() {
        assert!(!manifest.config[name].secret, "secret config.{name} shown");
    }
});
