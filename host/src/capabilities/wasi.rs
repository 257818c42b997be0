//! The base WASI set every plugin gets, with nothing behind it.
//!
//! A language's standard library imports `wasi:cli`, `wasi:io`, `wasi:clocks`, `wasi:random`
//! and `wasi:filesystem` interfaces whatever the plugin does. They are linked for every plugin
//! against an empty context: no environment, arguments or preopened directories, stdin empty,
//! stdout and stderr captured for the log. `wasi:sockets` is never linked, and
//! `wasi:http/types` is linked here because both outbound and incoming HTTP use it.

use wasmtime::component::Linker;
use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView as _};
use wasmtime_wasi::p2;
use wasmtime_wasi::p2::bindings::{cli, filesystem, random};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView as _};
use wasmtime_wasi_http::p2::bindings as http;
use wasmtime_wasi_http::{WasiHttp, WasiHttpView as _};

use crate::bindings::types;
use crate::sandbox::SandboxState;

/// Links the base WASI set, `wasi:http/types` and `plinth:plugin/types`.
pub(crate) fn link(linker: &mut Linker<SandboxState>) -> wasmtime::Result<()> {
    // io, clocks, random, stdin/stdout/stderr.
    p2::add_to_linker_proxy_interfaces_async(linker)?;
    let l = linker;
    random::insecure::add_to_linker::<_, WasiRandom>(l, SandboxState::random)?;
    random::insecure_seed::add_to_linker::<_, WasiRandom>(l, SandboxState::random)?;
    cli::exit::add_to_linker::<_, WasiCli>(l, SandboxState::cli)?;
    cli::environment::add_to_linker::<_, WasiCli>(l, SandboxState::cli)?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(l, SandboxState::cli)?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(l, SandboxState::cli)?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, SandboxState::cli)?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, SandboxState::cli)?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, SandboxState::cli)?;
    filesystem::preopens::add_to_linker::<_, WasiFilesystem>(l, SandboxState::filesystem)?;
    filesystem::types::add_to_linker::<_, WasiFilesystem>(l, SandboxState::filesystem)?;
    let options = http::LinkOptions::default();
    http::http::types::add_to_linker::<_, WasiHttp>(l, &options.into(), SandboxState::http)?;
    types::add_to_linker::<_, wasmtime::component::HasSelf<_>>(l, |s| s)?;
    Ok(())
}

impl types::Host for SandboxState {}
