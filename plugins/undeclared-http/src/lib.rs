//! Adversarial fixture: makes an outbound HTTP call without declaring the `http` permission.
//! Its component imports `wasi:http/outgoing-handler`, which validation must flag; a host that
//! links only granted capabilities cannot instantiate it.

use plinth_sdk::{Event, Plugin, PluginError, http};

/// The plugin type.
struct UndeclaredHttp;

impl Plugin for UndeclaredHttp {
    fn on_event(_event: Event) -> Result<Option<Vec<u8>>, PluginError> {
        let response = http::get("http://example.com/")?;
        plinth_sdk::json(&serde_json::json!({ "status": response.status }))
    }
}

plinth_sdk::export!(UndeclaredHttp);
