//! An install's configuration: checked against the manifest's `[config.<key>]` declarations,
//! secrets sealed before storage and never shown again.
//!
//! Stored as a JSON object: a plain value is a string, a secret is `{"sealed": "v1:…"}`.
//!
//! Sealing is one way for an install: a key stored sealed stays sealed (and hidden) in every
//! configuration stored after it, whatever a later version's manifest says. A version that
//! would make a secret key plain needs the tenant's consent to be installed (see
//! [`Manifest::secrets_made_plain`]), and even then the value stays sealed.

use std::collections::{BTreeMap, BTreeSet};

use plinth_package::{ConfigType, Manifest};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::secrets::SecretsKey;

/// The configuration a plugin reads: key → text.
pub type Values = BTreeMap<String, String>;

/// Checks `input` (a JSON object from the API) against `manifest`, merged over `previous`
/// (keys not in `input` keep their previous value if their declared type accepts it; `null`
/// clears one), and fills defaults.
///
/// # Errors
///
/// [`Error::BadRequest`] (`invalid_config`) naming `config.<key>`: an undeclared key, a value
/// of the wrong type, or a required key without a value.
pub fn check(manifest: &Manifest, input: &Map<String, Value>, previous: &Values) -> Result<Values> {
    // A previous value the (new) manifest's type does not accept is dropped, so the default or
    // the required-key rule applies: a plugin never reads text of another type than declared.
    let mut values: Values = previous
        .iter()
        .filter(|(key, text)| {
            manifest
                .config
                .get(*key)
                .is_none_or(|field| field.r#type.accepts_text(text))
        })
        .map(|(key, text)| (key.clone(), text.clone()))
        .collect();
    for (key, value) in input {
        let Some(field) = manifest.config.get(key) else {
            let declared: Vec<&str> = manifest.config.keys().map(String::as_str).collect();
            return Err(invalid(format!(
                "`config.{key}` is not declared by the plugin; it declares {declared:?}"
            )));
        };
        let text = match (field.r#type, value) {
            (_, Value::Null) => {
                values.remove(key);
                continue;
            }
            (_, Value::String(s)) => s.clone(),
            (ConfigType::Boolean, Value::Bool(b)) => b.to_string(),
            (ConfigType::Integer, Value::Number(n)) if n.is_i64() => n.to_string(),
            (declared, other) => {
                return Err(invalid(format!(
                    "`config.{key}` must be a {declared}, not {other}"
                )));
            }
        };
        if !field.r#type.accepts_text(&text) {
            return Err(invalid(format!(
                "`config.{key}` must be a {}",
                field.r#type
            )));
        }
        values.insert(key.clone(), text);
    }
    for (key, field) in &manifest.config {
        if !values.contains_key(key) {
            if let Some(default) = &field.default {
                values.insert(key.clone(), default.to_string());
            } else if field.required {
                return Err(invalid(format!("`config.{key}` is required")));
            }
        }
    }
    Ok(values)
}

fn invalid(message: String) -> Error {
    Error::bad_request("invalid_config", message)
}

/// `values` as stored for install `install_id`: sealed are the keys `manifest` declares secret
/// and the keys in `kept_sealed` (those the install's configuration held sealed before, see
/// [`sealed_keys`]).
///
/// # Errors
///
/// [`Error::Internal`] if sealing fails.
pub fn seal(
    manifest: &Manifest,
    values: &Values,
    key: &SecretsKey,
    install_id: &str,
    kept_sealed: &BTreeSet<String>,
) -> Result<String> {
    let mut stored = Map::new();
    for (name, value) in values {
        let secret =
            kept_sealed.contains(name) || manifest.config.get(name).is_some_and(|f| f.secret);
        let entry = if secret {
            json!({ "sealed": key.seal(install_id, value)? })
        } else {
            Value::String(value.clone())
        };
        stored.insert(name.clone(), entry);
    }
    Ok(Value::Object(stored).to_string())
}

/// The keys a stored configuration holds sealed (none if it does not parse).
pub fn sealed_keys(stored: &str) -> BTreeSet<String> {
    let parsed: Map<String, Value> = serde_json::from_str(stored).unwrap_or_default();
    parsed
        .into_iter()
        .filter(|(_, entry)| !entry.is_string())
        .map(|(name, _)| name)
        .collect()
}

/// The values of a stored configuration, secrets opened.
///
/// # Errors
///
/// [`Error::Internal`] if it does not parse or a secret does not open.
pub fn open(stored: &str, key: &SecretsKey, install_id: &str) -> Result<Values> {
    let parsed: Map<String, Value> = serde_json::from_str(stored)
        .map_err(|e| Error::Internal(format!("stored config of {install_id}: {e}")))?;
    let mut values = Values::new();
    for (name, entry) in parsed {
        let value = match entry {
            Value::String(s) => s,
            Value::Object(o) => match o.get("sealed") {
                Some(Value::String(sealed)) => key.open(install_id, sealed)?,
                _ => {
                    return Err(Error::Internal(format!(
                        "stored config {name} is malformed"
                    )));
                }
            },
            _ => {
                return Err(Error::Internal(format!(
                    "stored config {name} is malformed"
                )));
            }
        };
        values.insert(name, value);
    }
    Ok(values)
}

/// What the API shows of a stored configuration: plain values, and the names of the secrets
/// that are set (never their values).
pub fn public_view(stored: &str) -> Value {
    let parsed: Map<String, Value> = serde_json::from_str(stored).unwrap_or_default();
    let mut values = Map::new();
    let mut secrets = Vec::new();
    for (name, entry) in parsed {
        match entry {
            Value::String(s) => {
                values.insert(name, Value::String(s));
            }
            _ => secrets.push(name),
        }
    }
    json!({ "values": values, "secrets_set": secrets })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "[plugin]\nid = \"acme.x\"\nversion = \"1.0.0\"\nname = \"X\"\n\
        description = \"X.\"\nlicense = \"MIT\"\napi = \"^0.1\"\n[permissions]\nconfig = true\n\
        [config.url]\ntype = \"string\"\nsecret = true\nrequired = true\n\
        [config.retries]\ntype = \"integer\"\ndefault = 3\n";

    fn manifest() -> Manifest {
        Manifest::parse(MANIFEST).unwrap()
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn checks_types_requirements_and_defaults() {
        let m = manifest();
        let values = check(&m, &object(json!({"url": "https://x"})), &Values::new()).unwrap();
        assert_eq!(values["retries"], "3");
        let err = check(&m, &object(json!({})), &Values::new()).unwrap_err();
        assert!(err.to_string().contains("config.url"), "{err}");
        let err = check(
            &m,
            &object(json!({"url": "u", "retries": "many"})),
            &Values::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("config.retries"), "{err}");
        let err = check(
            &m,
            &object(json!({"url": "u", "colour": "red"})),
            &Values::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("config.colour"), "{err}");
        let merged = check(&m, &object(json!({"retries": 5})), &values).unwrap();
        assert_eq!(
            (merged["url"].as_str(), merged["retries"].as_str()),
            ("https://x", "5")
        );
    }

    /// Found by `fuzz/run.sh` (target `install_config`): a value kept from before an update
    /// was not checked against the new version's type, so `retries` declared `integer` could
    /// hold `""` or `"many"`.
    #[test]
    fn previous_values_of_another_type_are_dropped() {
        let m = manifest();
        let previous = Values::from([
            ("url".to_owned(), "https://x".to_owned()),
            ("retries".to_owned(), "many".to_owned()),
        ]);
        let values = check(&m, &Map::new(), &previous).unwrap();
        assert_eq!(values["retries"], "3", "falls back to the default");
        assert_eq!(values["url"], "https://x");
    }

    #[test]
    fn secrets_are_sealed_and_never_shown() {
        let m = manifest();
        let (key, _) = SecretsKey::generate().unwrap();
        let values = check(
            &m,
            &object(json!({"url": "https://hooks/secret-token"})),
            &Values::new(),
        )
        .unwrap();
        let stored = seal(&m, &values, &key, "install-1", &BTreeSet::new()).unwrap();
        assert!(!stored.contains("secret-token"), "{stored}");
        assert_eq!(open(&stored, &key, "install-1").unwrap(), values);
        let view = public_view(&stored).to_string();
        assert!(
            !view.contains("secret-token") && view.contains("\"url\""),
            "{view}"
        );
    }

    #[test]
    fn what_was_sealed_stays_sealed_whatever_the_manifest_says() {
        let (key, _) = SecretsKey::generate().unwrap();
        let secret = manifest();
        let plain =
            Manifest::parse(&MANIFEST.replace("secret = true\nrequired = true", "required = true"))
                .unwrap();
        let values = check(
            &secret,
            &object(json!({"url": "https://t/0ken"})),
            &Values::new(),
        )
        .unwrap();
        let first = seal(&secret, &values, &key, "i", &BTreeSet::new()).unwrap();
        assert_eq!(sealed_keys(&first), BTreeSet::from(["url".to_owned()]));
        let later = seal(&plain, &values, &key, "i", &sealed_keys(&first)).unwrap();
        assert!(!later.contains("0ken"), "{later}");
        assert_eq!(sealed_keys(&later), sealed_keys(&first));
        let fresh = seal(&plain, &values, &key, "i", &BTreeSet::new()).unwrap();
        assert!(sealed_keys(&fresh).is_empty(), "{fresh}");
    }
}
