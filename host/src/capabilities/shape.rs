//! The one shape of a capability ([`Capability`]) and how its host functions reach their
//! per-call state: through the store data's [`SandboxView`], never through the sandbox's type.

use std::marker::PhantomData;

use plinth_package::Permissions;
use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::WasiView;

use super::context::{CallContext, CallIdentity};
use super::{CallStates, Holds};

/// A capability a plugin may import: whether a grant turns it on, how its imports are linked,
/// and the state one call of it keeps.
///
/// Implemented by a marker type in the capability's module and listed once in
/// [`capabilities!`](super) (see the [module documentation](super)).
pub trait Capability: Sized + 'static {
    /// What one call of the capability keeps (caps, counters, what it collected).
    type State: Send + 'static;

    /// Whether `permissions` turn the capability on. One that is not granted is not linked, so
    /// a component importing it cannot be instantiated.
    fn granted(permissions: &Permissions) -> bool;

    /// Adds the capability's imports to `linker`; its host functions reach their state through
    /// [`view`] (so through [`SandboxView`]).
    ///
    /// # Errors
    ///
    /// Only if wasmtime refuses a definition, which would be a bug.
    fn link<T: SandboxView>(linker: &mut Linker<T>) -> wasmtime::Result<()>;

    /// The capability's state for one call, from the grant, limits and identity in `call`.
    /// Called for every call, granted or not (a capability not granted is never reached, so
    /// its state may be empty; an always-linked one, like `wasi:http/types`, may need it).
    fn prepare(call: &CallContext<'_>) -> Self::State;
}

/// What a store's data gives capabilities: the call's prepared states, who the call is for,
/// and its resource table, plus the base WASI context. The sandbox implements it.
pub trait SandboxView: WasiView + Send + 'static {
    /// The parts of the call capabilities reach.
    fn parts(&mut self) -> CallParts<'_>;
}

/// The parts of a call's store data capabilities reach, borrowed together.
#[derive(Debug)]
pub struct CallParts<'a> {
    /// Each capability's state for the call.
    pub states: &'a mut CallStates,
    /// Who the call is for.
    pub identity: &'a CallIdentity,
    /// The call's resource table.
    pub table: &'a mut ResourceTable,
}

/// What one capability's host functions see: its own state, who the call is for, and the
/// resource table. A capability implements its WIT `Host` trait on `View<'_, its State>`.
#[derive(Debug)]
pub struct View<'a, S> {
    /// The capability's state for the call.
    pub state: &'a mut S,
    /// Who the call is for.
    pub identity: &'a CallIdentity,
    /// The call's resource table.
    pub table: &'a mut ResourceTable,
}

/// The [`HasData`] of capability `C`'s bindings: they are handed a [`View`] of its state.
#[derive(Debug)]
pub struct HasView<C>(PhantomData<C>);

impl<C: Capability> HasData for HasView<C> {
    type Data<'a> = View<'a, C::State>;
}

/// Capability `C`'s view of a call's store data: the getter its bindings are linked with.
pub fn view<C: Capability, T: SandboxView>(data: &mut T) -> View<'_, C::State>
where
    CallStates: Holds<C>,
{
    let parts = data.parts();
    View {
        state: parts.states.state(),
        identity: parts.identity,
        table: parts.table,
    }
}
