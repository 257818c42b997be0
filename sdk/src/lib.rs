//! Write Plinth plugins in Rust.
//!
//! A Plinth plugin is a WebAssembly component that handles events for many tenants, each in its
//! own sandbox with only the capabilities the tenant granted. This crate hides the WIT contract
//! (`plinth:plugin@0.1.0`) behind one trait, one macro and a few typed modules:
//!
//! 1. implement [`Plugin`] (only [`Plugin::on_event`] is required; the lifecycle hooks default
//!    to doing nothing);
//! 2. write `plinth_sdk::export!(MyPlugin);` once;
//! 3. declare what the plugin uses in its `plinth.toml` and build it with
//!    `cargo build --release --target wasm32-wasip2` (the output is a component).
//!
//! | module | does | needs in `plinth.toml` |
//! |---|---|---|
//! | [`log`] | leveled, structured log lines | nothing (always granted) |
//! | [`kv`] | a private key-value store of bytes | `permissions.kv` |
//! | [`config`] | the tenant's configuration values | `permissions.config` and `[config.<key>]` |
//! | [`events`] | emit platform events | `permissions.events.emit` |
//! | [`http`] | outbound HTTP requests; serving HTTP | `permissions.http.hosts` |
//!
//! Every capability error converts into [`PluginError`], so `?` works in `on_event`.
//!
//! # Example
//!
//! A plugin that greets whoever the `greet` event names and counts the greetings:
//!
//! ```no_run
//! use plinth_sdk::{Event, Plugin, PluginError, kv, log};
//!
//! struct Greeter;
//!
//! impl Plugin for Greeter {
//!     fn on_event(event: Event) -> Result<Option<Vec<u8>>, PluginError> {
//!         // The payload is JSON, e.g. `"Ada"`.
//!         let name: String = event.json()?;
//!         let count = match kv::get("greetings")? {
//!             Some(bytes) => String::from_utf8_lossy(&bytes).parse::<u64>().unwrap_or(0),
//!             None => 0,
//!         } + 1;
//!         kv::set("greetings", count.to_string())?;
//!         log::write(log::Level::Info, "greeted", &[("name", &name)]);
//!         plinth_sdk::json(&format!("Hello, {name}! (greeting #{count})"))
//!     }
//!
//!     fn on_install() -> Result<(), PluginError> {
//!         kv::set("greetings", "0")?;
//!         Ok(())
//!     }
//! }
//!
//! plinth_sdk::export!(Greeter);
//! # fn main() {}
//! ```
//!
//! with its `plinth.toml`:
//!
//! ```toml
//! [plugin]
//! id = "examples.greeter"
//! version = "0.1.0"
//! name = "Greeter"
//! description = "Greets people and counts the greetings."
//! license = "Apache-2.0"
//! api = "^0.1"
//!
//! [permissions]
//! kv = { max-bytes = 1024 }
//! events = { subscribe = ["greet"] }
//! ```
//!
//! # Serving HTTP
//!
//! A plugin that also implements [`http::HttpHandler`] and is exported with
//! `plinth_sdk::export!(MyPlugin, http);` serves HTTP under `/p/{tenant}/{plugin}/…`:
//!
//! ```no_run
//! use plinth_sdk::http::{HttpHandler, IncomingRequest, Response};
//! use plinth_sdk::{Event, Plugin, PluginError};
//!
//! struct Echo;
//!
//! impl Plugin for Echo {
//!     fn on_event(_event: Event) -> Result<Option<Vec<u8>>, PluginError> {
//!         Ok(None)
//!     }
//! }
//!
//! impl HttpHandler for Echo {
//!     fn handle(request: IncomingRequest) -> Response {
//!         Response::ok().with_body(request.body)
//!     }
//! }
//!
//! plinth_sdk::export!(Echo, http);
//! # fn main() {}
//! ```
//!
//! A component exports only what it asks for: `wasi:http/incoming-handler` only with `, http`,
//! and it imports a capability only if the code calls it.

#![deny(missing_docs)]

#[doc(hidden)]
pub mod bindings;
pub mod config;
mod error;
mod event;
pub mod events;
mod export;
pub mod http;
pub mod kv;
pub mod log;
mod plugin;

pub use error::PluginError;
pub use event::Event;
pub use plugin::{Plugin, json};

/// Used by [`export!`]; not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::export::{HttpAdapter, PluginAdapter};
}
