//! Adversarial fixture: declares `allowed.example.com` but calls `evil.example.com`. The host
//! must refuse the request; the plugin returns the refusal as its error.

use plinth_sdk::{Event, Plugin, PluginError, http};

/// The plugin type.
struct BadHost;

impl Plugin for BadHost {
    fn on_event(_event: Event) -> Result<Option<Vec<u8>>, PluginError> {
        // `?` turns the host's refusal into a `capability` error naming it.
        let response = http::get("http://evil.example.com/")?;
        plinth_sdk::json(&serde_json::json!({ "status": response.status }))
    }
}

plinth_sdk::export!(BadHost);
