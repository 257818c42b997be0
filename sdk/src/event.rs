//! [`Event`]: one event delivered to a plugin.

use serde::de::DeserializeOwned;

use crate::PluginError;

/// One event delivered to [`Plugin::on_event`](crate::Plugin::on_event).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// Unique id of this delivery (a UUIDv7 string). The same id is never delivered twice to
    /// the same install, so it can make side effects idempotent.
    pub id: String,
    /// The topic the event was published on, e.g. `order.created`; always one the manifest
    /// subscribes to.
    pub topic: String,
    /// The raw payload; by convention UTF-8 JSON (see [`Event::json`]).
    pub payload: Vec<u8>,
    /// The id of the tenant the plugin runs for (stable, unlike its slug).
    pub tenant: String,
    /// How many `events::emit` hops led to this event: `0` for an event from outside.
    pub depth: u32,
}

impl Event {
    /// Decodes the payload as JSON into `T`.
    ///
    /// # Errors
    ///
    /// [`PluginError::InvalidPayload`] naming the serde error when the payload is not JSON of
    /// the expected shape.
    ///
    /// # Examples
    ///
    /// ```
    /// # use plinth_sdk::Event;
    /// let event = Event { payload: br#""Ada""#.to_vec(), ..Event::default() };
    /// let name: String = event.json()?;
    /// assert_eq!(name, "Ada");
    /// # Ok::<(), plinth_sdk::PluginError>(())
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        serde_json::from_slice(&self.payload).map_err(|err| {
            PluginError::invalid_payload(format!(
                "the payload of `{}` is not the expected JSON: {err}",
                self.topic
            ))
        })
    }

    /// The payload as UTF-8 text.
    ///
    /// # Errors
    ///
    /// [`PluginError::InvalidPayload`] when the payload is not valid UTF-8.
    pub fn text(&self) -> Result<&str, PluginError> {
        std::str::from_utf8(&self.payload).map_err(|err| {
            PluginError::invalid_payload(format!(
                "the payload of `{}` is not UTF-8 text: {err}",
                self.topic
            ))
        })
    }
}
