//! Posts every `order.created` event to a webhook the tenant configures.
//!
//! The tenant sets the secret `webhook-url` when installing; the manifest allows outbound HTTP
//! only to `hooks.example.com`, so the host refuses any other URL. The output is the webhook's
//! HTTP status: `{"status": 200}`.

use plinth_sdk::{Event, Plugin, PluginError, config, http, log};
use serde::Serialize;

/// The plugin type.
struct WebhookNotify;

/// The JSON body sent to the webhook.
#[derive(Serialize)]
struct Notification<'a> {
    /// A line a chat channel can show as is.
    text: String,
    /// The tenant the order belongs to.
    tenant: &'a str,
    /// The event's id, so the receiver can drop duplicates.
    event_id: &'a str,
    /// The order event as it arrived.
    order: serde_json::Value,
}

impl Plugin for WebhookNotify {
    fn on_event(event: Event) -> Result<Option<Vec<u8>>, PluginError> {
        // A missing required value is the tenant's configuration to fix: `invalid-config`.
        let url = config::get_required("webhook-url")?;
        let order: serde_json::Value = event.json()?;
        let notification = Notification {
            text: format!("New order on {}", event.tenant),
            tenant: &event.tenant,
            event_id: &event.id,
            order,
        };
        // Never log the URL: it is a secret.
        let response = http::Request::post(url)
            .header("user-agent", "plinth-webhook-notify/0.1")
            .json(&notification)
            .send()?;
        if !response.is_success() {
            log::warn(format!("the webhook answered {}", response.status));
        }
        plinth_sdk::json(&serde_json::json!({ "status": response.status }))
    }

    fn on_install() -> Result<(), PluginError> {
        // Fail the install early if the URL is obviously wrong.
        let url = config::get_required("webhook-url")?;
        if !url.starts_with("https://") && !url.starts_with("http://") {
            return Err(PluginError::invalid_config(
                "webhook-url must be an http:// or https:// URL",
            ));
        }
        Ok(())
    }
}

plinth_sdk::export!(WebhookNotify);
