//! What the one list of capabilities in [the module](super) generates: the set a grant turns
//! on ([`CapabilitySet`](super::CapabilitySet)), a call's states
//! ([`CallStates`](super::CallStates)) and the [`linker`](super::linker). Each is written out
//! per capability at compile time: no lookup, dynamic dispatch or allocation of its own per
//! call.

use super::Capability;

/// Gives capability `C`'s state out of a call's states; one impl per listed capability.
pub trait Holds<C: Capability> {
    /// `C`'s state for the call.
    fn state(&mut self) -> &mut C::State;
}

/// Generates, from `name: module::Marker` lines, the capability set, the call's states and the
/// linker. Invoked once, in the [module](super).
macro_rules! capabilities {
    ($($(#[$doc:meta])* $name:ident: $cap:ty),+ $(,)?) => {
        /// Which capabilities a linker provides; derived from a grant.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct CapabilitySet {
            $(
                $(#[$doc])*
                pub $name: bool,
            )+
        }

        impl CapabilitySet {
            /// The capabilities a set of granted permissions turns on.
            pub fn granted(permissions: &plinth_package::Permissions) -> Self {
                CapabilitySet {
                    $($name: <$cap as Capability>::granted(permissions),)+
                }
            }
        }

        /// Every capability's state for one call, prepared from the call's [`CallContext`].
        pub struct CallStates {
            $(
                $(#[$doc])*
                pub $name: <$cap as Capability>::State,
            )+
        }

        impl CallStates {
            /// Each capability's state for the call `call` describes.
            pub fn prepare(call: &CallContext<'_>) -> Self {
                CallStates {
                    $($name: <$cap as Capability>::prepare(call),)+
                }
            }
        }

        impl std::fmt::Debug for CallStates {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("CallStates").finish_non_exhaustive()
            }
        }

        $(
            impl Holds<$cap> for CallStates {
                fn state(&mut self) -> &mut <$cap as Capability>::State {
                    &mut self.$name
                }
            }
        )+

        /// A linker with the always-present imports (base WASI, the shared types) and the
        /// capabilities in `set`, for store data `T`.
        ///
        /// # Errors
        ///
        /// Only if wasmtime refuses a definition, which would be a bug.
        pub fn linker<T: SandboxView>(
            engine: &wasmtime::Engine,
            set: CapabilitySet,
        ) -> wasmtime::Result<wasmtime::component::Linker<T>> {
            let mut linker = wasmtime::component::Linker::new(engine);
            wasi::link(&mut linker)?;
            $(
                if set.$name {
                    <$cap as Capability>::link(&mut linker)?;
                }
            )+
            Ok(linker)
        }
    };
}

pub(super) use capabilities;
