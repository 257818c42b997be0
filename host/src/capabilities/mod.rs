//! The capabilities a plugin may import, one module each, all of one shape, and the linker that
//! composes them.
//!
//! Every capability is a marker type implementing [`Capability`]: whether a grant turns it on,
//! a `link` that adds its imports to a [`Linker`](wasmtime::component::Linker), and a `prepare`
//! that builds its per-call state from the call's [`CallContext`] (grant, limits, identity,
//! the host's services). Its WIT `Host` impl is on [`View<'_, State>`](View), which its
//! bindings get through [`view`] from any store data implementing [`SandboxView`]; so no
//! capability knows the sandbox's type. A capability is linked only when granted, so a
//! component that imports one it was not granted cannot be instantiated at all. `wasi` is not
//! one: it is the base every plugin gets.
//!
//! Adding a capability takes its module and one line here:
//! 1. a module (declared below with `pub mod`) with a marker type implementing [`Capability`]
//!    and the WIT `Host` impl of its interface on `View<'_, State>` (the interface itself is
//!    declared in `wit/plugin.wit` and imported by the plugin world; [`crate::bindings`] then
//!    has it);
//! 2. one line `name: module::Marker,` (under its doc comment) in the `capabilities!` list
//!    below: the [`CapabilitySet`], the call's [`CallStates`] and the [`linker`] follow from
//!    it.
//!
//! Only if the capability needs something per call that [`CallContext`] does not carry yet,
//! or reports something after the call (as kv's bytes written), does the invocation change
//! too: it fills the context and reads the states.

pub mod config;
mod context;
pub mod events;
pub mod http;
pub mod kv;
pub mod log;
mod registry;
mod shape;
pub mod wasi;

pub use context::{CallContext, CallIdentity};
pub use registry::Holds;
pub use shape::{CallParts, Capability, HasView, SandboxView, View, view};

registry::capabilities! {
    /// `plinth:plugin/log` (always granted).
    log: log::Log,
    /// `plinth:plugin/kv`.
    kv: kv::Kv,
    /// `plinth:plugin/config`.
    config: config::Config,
    /// `plinth:plugin/events`.
    events: events::Events,
    /// `wasi:http/outgoing-handler` (its state, the call's outbound policy, is also what
    /// `wasi:http/types` and incoming requests use, so it is prepared for every call).
    http: http::Http,
}

#[cfg(test)]
mod tests {
    use plinth_package::Permissions;

    use super::CapabilitySet;

    #[test]
    fn an_empty_grant_links_only_what_is_always_granted() {
        let set = CapabilitySet::granted(&Permissions::default());
        let log_only = CapabilitySet {
            log: true,
            ..CapabilitySet::default()
        };
        assert_eq!(set, log_only);
    }
}
