//! The [`export!`](crate::export) macro and the adapters it exports: they implement the
//! generated WIT `Guest` traits for any [`Plugin`] / [`HttpHandler`], so plugin crates never
//! see the bindings (and the orphan rule is satisfied: trait and adapter both live here).

use std::fmt;
use std::marker::PhantomData;

use crate::bindings::http::exports::wasi::http::incoming_handler;
use crate::bindings::plugin::exports::plinth::plugin::{handler, lifecycle};
use crate::bindings::plugin::plinth::plugin::types as wit;
use crate::http::HttpHandler;
use crate::{Event, Plugin, PluginError};

/// Exports a [`Plugin`] type as this component's `handler` and `lifecycle` interfaces, and with
/// `, http` also an [`HttpHandler`] as `wasi:http/incoming-handler`.
///
/// Write it once, at the root of the plugin crate:
///
/// ```no_run
/// # use plinth_sdk::{Event, Plugin, PluginError};
/// # use plinth_sdk::http::{HttpHandler, IncomingRequest, Response};
/// # struct MyPlugin;
/// # impl Plugin for MyPlugin {
/// #     fn on_event(_: Event) -> Result<Option<Vec<u8>>, PluginError> { Ok(None) }
/// # }
/// # impl HttpHandler for MyPlugin {
/// #     fn handle(_: IncomingRequest) -> Response { Response::ok() }
/// # }
/// // Either: handler + lifecycle
/// // plinth_sdk::export!(MyPlugin);
/// // or: handler + lifecycle + wasi:http/incoming-handler
/// plinth_sdk::export!(MyPlugin, http);
/// # fn main() {}
/// ```
///
/// A component exports `wasi:http/incoming-handler` only with `, http`: the host and the
/// marketplace's validation decide from its exports whether a plugin serves HTTP.
#[macro_export]
macro_rules! export {
    ($plugin:ty $(,)?) => {
        const _: () = {
            type __PlinthPluginAdapter = $crate::__private::PluginAdapter<$plugin>;
            $crate::__private::bindings::plugin::__export_plugin_world!(
                __PlinthPluginAdapter with_types_in $crate::__private::bindings::plugin
            );
        };
    };
    ($plugin:ty, http $(,)?) => {
        $crate::export!($plugin);
        const _: () = {
            type __PlinthHttpAdapter = $crate::__private::HttpAdapter<$plugin>;
            $crate::__private::bindings::http::__export_http_world!(
                __PlinthHttpAdapter with_types_in $crate::__private::bindings::http
            );
        };
    };
}

/// Implements the generated `handler` and `lifecycle` traits for a [`Plugin`].
#[doc(hidden)]
pub struct PluginAdapter<T>(PhantomData<T>);

impl<T> fmt::Debug for PluginAdapter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PluginAdapter")
    }
}

impl<T: Plugin> handler::Guest for PluginAdapter<T> {
    fn on_event(event: wit::Event) -> Result<Option<Vec<u8>>, wit::PluginError> {
        let event = Event {
            id: event.id,
            topic: event.topic,
            payload: event.payload,
            tenant: event.tenant,
            depth: event.depth,
        };
        T::on_event(event).map_err(into_wit)
    }
}

impl<T: Plugin> lifecycle::Guest for PluginAdapter<T> {
    fn on_install() -> Result<(), wit::PluginError> {
        T::on_install().map_err(into_wit)
    }

    fn on_upgrade(from_version: String) -> Result<(), wit::PluginError> {
        T::on_upgrade(&from_version).map_err(into_wit)
    }

    fn on_uninstall() -> Result<(), wit::PluginError> {
        T::on_uninstall().map_err(into_wit)
    }
}

/// Implements the generated `wasi:http/incoming-handler` trait for an [`HttpHandler`].
#[doc(hidden)]
pub struct HttpAdapter<T>(PhantomData<T>);

impl<T> fmt::Debug for HttpAdapter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HttpAdapter")
    }
}

impl<T: HttpHandler> incoming_handler::Guest for HttpAdapter<T> {
    fn handle(
        request: incoming_handler::IncomingRequest,
        response_out: incoming_handler::ResponseOutparam,
    ) {
        crate::http::serve::<T>(request, response_out);
    }
}

/// The WIT form of a [`PluginError`].
fn into_wit(err: PluginError) -> wit::PluginError {
    match err {
        PluginError::InvalidPayload(m) => wit::PluginError::InvalidPayload(m),
        PluginError::InvalidConfig(m) => wit::PluginError::InvalidConfig(m),
        PluginError::Capability(m) => wit::PluginError::Capability(m),
        PluginError::Failed(m) => wit::PluginError::Failed(m),
    }
}
