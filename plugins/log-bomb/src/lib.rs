//! Adversarial fixture: tries to flood and forge the server's log and to answer with a huge
//! error. The host must keep its log within the per-line and per-call caps, escape what could
//! forge a line or drive a terminal, and cut the error text.
//!
//! - `run`: logs [`LINES`] lines, each with a message carrying a newline, a carriage return
//!   and ANSI escapes (a forged log line after the newline), a [`FIELD_BYTES`] field and
//!   [`EXTRA_FIELDS`] more small fields; writes a forged line to stdout and stderr; then fails
//!   with an [`ERROR_BYTES`] `failed` message that also carries a forged line.
//! - `panic`: writes a [`PANIC_LINE_BYTES`] line to stderr that the host takes for the panic
//!   message (it holds `panicked`, a carriage return, an escape sequence and a forged line),
//!   then panics.

use plinth_sdk::log::{self, Level};
use plinth_sdk::{Event, Plugin, PluginError};

/// Lines logged.
const LINES: usize = 100;
/// Size of the big field of each line.
const FIELD_BYTES: usize = 1 << 20;
/// Small fields added to each line, past any sensible per-line field cap.
const EXTRA_FIELDS: usize = 40;
/// Size of the error message returned.
const ERROR_BYTES: usize = 8 << 20;
/// Size of the fake panic line written to stderr.
const PANIC_LINE_BYTES: usize = 8 << 10;
/// What the fixture tries to slip into the server log as a line of its own.
pub const FORGED: &str = "FORGED-LINE level=INFO operator logged in";

/// The plugin type.
struct LogBomb;

impl Plugin for LogBomb {
    #[allow(
        clippy::panic,
        reason = "the `panic` topic exists to panic with hostile text; the host must escape it"
    )]
    fn on_event(event: Event) -> Result<Option<Vec<u8>>, PluginError> {
        if event.topic == "panic" {
            let padding = "p".repeat(PANIC_LINE_BYTES);
            eprintln!("panicked\r\u{1b}[2J{FORGED}{padding}");
            panic!("log bomb\n{FORGED}\r\u{1b}[2J");
        }
        let big = "x".repeat(FIELD_BYTES);
        let keys: Vec<String> = (0..EXTRA_FIELDS).map(|i| format!("k{i}")).collect();
        for line in 0..LINES {
            let message = format!("bomb {line}\n{FORGED}\r\u{1b}[31mred\u{1b}[0m");
            let mut fields: Vec<(&str, &str)> = vec![("blob", big.as_str())];
            fields.extend(keys.iter().map(|key| (key.as_str(), "v")));
            log::write(Level::Info, &message, &fields);
        }
        println!("stdout says\r{FORGED}\u{1b}[0m");
        eprintln!("stderr says\u{1b}[1m{FORGED}");
        let mut error = String::with_capacity(ERROR_BYTES + FORGED.len() + 1);
        error.push_str("failed\n");
        error.push_str(FORGED);
        while error.len() < ERROR_BYTES {
            error.push('e');
        }
        Err(PluginError::failed(error))
    }
}

plinth_sdk::export!(LogBomb);
