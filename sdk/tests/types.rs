//! The SDK's own types behave without a host: decoding, errors and their conversions.

use plinth_sdk::config::ConfigError;
use plinth_sdk::events::EmitError;
use plinth_sdk::http::{HttpError, IncomingRequest, Response};
use plinth_sdk::kv::KvError;
use plinth_sdk::{Event, PluginError};

#[test]
fn a_payload_of_the_wrong_shape_is_an_invalid_payload_naming_serde() {
    let event = Event {
        topic: "greet".to_owned(),
        payload: b"42".to_vec(),
        ..Event::default()
    };
    let err = event.json::<String>().err();
    let Some(PluginError::InvalidPayload(message)) = err else {
        panic!("expected invalid-payload, got {err:?}");
    };
    assert!(message.contains("greet"), "{message}");
    assert!(message.contains("invalid type"), "{message}");
}

#[test]
fn json_output_round_trips() -> Result<(), PluginError> {
    let output = plinth_sdk::json(&serde_json::json!({ "count": 2 }))?;
    assert_eq!(output.as_deref(), Some(&br#"{"count":2}"#[..]));
    Ok(())
}

#[test]
fn capability_errors_convert_for_question_mark() {
    let kv: PluginError = KvError::ValueTooLarge(10).into();
    assert!(matches!(kv, PluginError::Capability(ref m) if m.contains("10 bytes")));
    let emit: PluginError = EmitError::UndeclaredTopic("x.y".to_owned()).into();
    assert!(matches!(emit, PluginError::Capability(ref m) if m.contains("x.y")));
    let http: PluginError = HttpError::Request("HttpRequestDenied".to_owned()).into();
    assert!(matches!(http, PluginError::Capability(ref m) if m.contains("HttpRequestDenied")));
    let undeclared: PluginError = ConfigError::Undeclared("k".to_owned()).into();
    assert!(matches!(undeclared, PluginError::Capability(_)));
    let missing: PluginError = ConfigError::Missing("webhook-url".to_owned()).into();
    assert!(matches!(missing, PluginError::InvalidConfig(ref m) if m.contains("webhook-url")));
}

#[test]
fn plugin_errors_display_kind_and_message() {
    let err = PluginError::failed("no luck");
    assert_eq!(err.to_string(), "failed: no luck");
    assert_eq!(err.message(), "no luck");
}

#[test]
fn incoming_requests_split_path_and_query() {
    let request = IncomingRequest {
        method: "GET".to_owned(),
        path_with_query: "/items?page=2".to_owned(),
        headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
        body: b"hi".to_vec(),
    };
    assert_eq!(request.path(), "/items");
    assert_eq!(request.query(), Some("page=2"));
    assert_eq!(request.header("content-type"), Some("text/plain"));
    assert_eq!(request.text().ok(), Some("hi"));
}

#[test]
fn responses_carry_json() -> Result<(), HttpError> {
    let response = Response::ok()
        .with_header("Content-Type", "text/plain")
        .with_json(&serde_json::json!({ "ok": true }));
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.headers.len(), 1);
    let value: serde_json::Value = response.json()?;
    assert_eq!(value["ok"], true);
    assert!(response.is_success());
    assert!(!Response::new(404).is_success());
    Ok(())
}
