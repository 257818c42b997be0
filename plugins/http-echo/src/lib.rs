//! Serves HTTP: echoes every request back as JSON.
//!
//! `POST /p/{tenant}/examples.http-echo/hello?x=1` with body `hi` answers
//! `{"method":"POST","path":"/hello?x=1","body":"hi"}`. A request for `/fail` traps (a panic
//! in the component), for tests of what the host does with a failing handler.

use plinth_sdk::http::{HttpHandler, IncomingRequest, Response};
use plinth_sdk::{Event, Plugin, PluginError};
use serde::Serialize;

/// The plugin type.
struct HttpEcho;

/// What the echo answers.
#[derive(Serialize)]
struct Echo<'a> {
    /// The request method, e.g. `GET`.
    method: &'a str,
    /// The path and query below the plugin's prefix.
    path: &'a str,
    /// The request body as text (lossily decoded).
    body: String,
}

impl Plugin for HttpEcho {
    // Every plugin handles events; this one only serves HTTP and subscribes to none.
    fn on_event(_event: Event) -> Result<Option<Vec<u8>>, PluginError> {
        Ok(None)
    }
}

impl HttpHandler for HttpEcho {
    fn handle(request: IncomingRequest) -> Response {
        if request.path_with_query == "/fail" {
            panic!("asked to fail");
        }
        let echo = Echo {
            method: &request.method,
            path: &request.path_with_query,
            body: String::from_utf8_lossy(&request.body).into_owned(),
        };
        Response::ok().with_json(&echo)
    }
}

// `http` also exports `wasi:http/incoming-handler`.
plinth_sdk::export!(HttpEcho, http);
