//! The base WASI set every plugin gets, with nothing behind it.
//!
//! A language's standard library imports `wasi:cli`, `wasi:io`, `wasi:clocks`, `wasi:random`
//! and `wasi:filesystem` interfaces whatever the plugin does. They are linked for every plugin
//! against an empty context: no environment, arguments or preopened directories, stdin empty,
//! stdout and stderr captured for the log. `wasi:sockets` is linked with every operation
//! denied (the context allows no TCP, UDP or name lookup and no address): a language's C
//! library imports it whatever the plugin does, and outbound traffic goes through
//! `wasi:http/outgoing-handler` only. `wasi:http/types` is linked here because both outbound
//! and incoming HTTP use it (against the [`http`](super::http) capability's state, which every
//! call has).

use wasmtime::component::{HasData, Linker};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p2;
use wasmtime_wasi::p2::bindings::{cli, filesystem, random, sockets};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView};
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};
use wasmtime_wasi_http::WasiHttp;
use wasmtime_wasi_http::p2::bindings as http;

use super::SandboxView;
use super::http::ctx_view;
use crate::bindings::types;

/// Links the base WASI set, `wasi:http/types` and `plinth:plugin/types`.
pub(crate) fn link<T: SandboxView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    // io, clocks, random, stdin/stdout/stderr.
    p2::add_to_linker_proxy_interfaces_async(linker)?;
    let l = linker;
    random::insecure::add_to_linker::<_, WasiRandom>(l, T::random)?;
    random::insecure_seed::add_to_linker::<_, WasiRandom>(l, T::random)?;
    cli::exit::add_to_linker::<_, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<_, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, T::cli)?;
    filesystem::preopens::add_to_linker::<_, WasiFilesystem>(l, T::filesystem)?;
    filesystem::types::add_to_linker::<_, WasiFilesystem>(l, T::filesystem)?;
    // Denied by the sandbox's context: creating a socket or looking up a name fails with
    // `access-denied`, so nothing here reaches the network.
    let network = sockets::network::LinkOptions::default();
    sockets::network::add_to_linker::<_, WasiSockets>(l, &network, T::sockets)?;
    sockets::instance_network::add_to_linker::<_, WasiSockets>(l, T::sockets)?;
    sockets::tcp_create_socket::add_to_linker::<_, WasiSockets>(l, T::sockets)?;
    sockets::tcp::add_to_linker::<_, WasiSockets>(l, T::sockets)?;
    sockets::udp_create_socket::add_to_linker::<_, WasiSockets>(l, T::sockets)?;
    sockets::udp::add_to_linker::<_, WasiSockets>(l, T::sockets)?;
    sockets::ip_name_lookup::add_to_linker::<_, WasiSockets>(l, T::sockets)?;
    let options = http::LinkOptions::default();
    http::http::types::add_to_linker::<_, WasiHttp>(l, &options.into(), ctx_view::<T>)?;
    types::add_to_linker::<_, SharedTypes>(l, |_| SharedTypes)?;
    Ok(())
}

/// `plinth:plugin/types` has types only: its host side holds nothing.
#[derive(Debug)]
struct SharedTypes;

impl HasData for SharedTypes {
    type Data<'a> = SharedTypes;
}

impl types::Host for SharedTypes {}
