//! `plinth:plugin/kv`: the guest-facing side of the kv capability.
//!
//! The namespace (tenant, plugin) is fixed by the host when the call starts; the guest only
//! ever names keys inside it. Storage, quotas and paging live in [`crate::kv`].

use plinth_package::Permissions;
use wasmtime::component::Linker;

use super::{CallContext, Capability, HasView, SandboxView, View, view};
use crate::bindings::kv::{self as wit, KeyPage, KvError as WitKvError};
use crate::kv::{KvError, KvQuota, KvStore, Namespace};

/// The kv capability's per-call state: the store, this install's namespace and its quota.
#[derive(Clone, Debug)]
pub struct KvState {
    store: KvStore,
    namespace: Namespace,
    quota: KvQuota,
    bytes_written: u64,
}

impl KvState {
    /// Access to `namespace` in `store` under `quota`.
    pub fn new(store: KvStore, namespace: Namespace, quota: KvQuota) -> Self {
        KvState {
            store,
            namespace,
            quota,
            bytes_written: 0,
        }
    }

    /// Bytes of keys and values the call wrote (for metering).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }
}

/// Maps a storage error to what the guest sees; database details stay in the host's log.
fn to_wit(error: KvError) -> WitKvError {
    match error {
        KvError::QuotaExceeded {
            quota,
            limit,
            would_use,
        } => WitKvError::QuotaExceeded(format!(
            "{quota} quota of {limit} would be passed ({would_use})"
        )),
        KvError::InvalidKey(why) => WitKvError::InvalidKey(why),
        KvError::ValueTooLarge { limit, .. } => WitKvError::ValueTooLarge(limit),
        other => {
            tracing::error!(error = %other, "kv store failed");
            WitKvError::Unavailable("the key-value store is unavailable".to_string())
        }
    }
}

/// The kv capability: granted by `kv`, its state the call's [`KvState`] when the host has a
/// store and the grant has kv.
#[derive(Debug)]
pub struct Kv;

impl Capability for Kv {
    type State = Option<KvState>;

    fn granted(permissions: &Permissions) -> bool {
        permissions.kv.is_some()
    }

    fn link<T: SandboxView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, HasView<Kv>>(linker, view::<Kv, T>)
    }

    fn prepare(call: &CallContext<'_>) -> Option<KvState> {
        let (store, grant) = (call.kv?, call.grants.kv.as_ref()?);
        Some(KvState::new(
            store.clone(),
            Namespace::new(&call.identity.tenant, &call.identity.plugin),
            KvQuota {
                max_bytes: grant.max_bytes,
                max_keys: grant.max_keys,
                tenant_max_bytes: call.limits.tenant_kv_bytes,
            },
        ))
    }
}

/// The kv state of a call, or the error a guest sees if kv is somehow not set up.
fn state<'a>(view: &'a mut View<'_, Option<KvState>>) -> Result<&'a mut KvState, WitKvError> {
    view.state
        .as_mut()
        .ok_or_else(|| WitKvError::Unavailable("kv is not granted".to_string()))
}

impl wit::Host for View<'_, Option<KvState>> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, WitKvError>> {
        let kv = match state(self) {
            Ok(kv) => kv,
            Err(error) => return Ok(Err(error)),
        };
        Ok(kv.store.get(&kv.namespace, &key).await.map_err(to_wit))
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), WitKvError>> {
        let kv = match state(self) {
            Ok(kv) => kv,
            Err(error) => return Ok(Err(error)),
        };
        let result = kv
            .store
            .set(&kv.namespace, &key, &value, &kv.quota)
            .await
            .map_err(to_wit);
        if result.is_ok() {
            kv.bytes_written = kv
                .bytes_written
                .saturating_add((key.len() + value.len()) as u64);
        }
        Ok(result)
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<bool, WitKvError>> {
        let kv = match state(self) {
            Ok(kv) => kv,
            Err(error) => return Ok(Err(error)),
        };
        Ok(kv.store.delete(&kv.namespace, &key).await.map_err(to_wit))
    }

    async fn list_keys(
        &mut self,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<KeyPage, WitKvError>> {
        let kv = match state(self) {
            Ok(kv) => kv,
            Err(error) => return Ok(Err(error)),
        };
        Ok(kv
            .store
            .list_keys(&kv.namespace, &prefix, cursor.as_deref(), limit)
            .await
            .map(|page| KeyPage {
                keys: page.keys,
                next_cursor: page.next_cursor,
            })
            .map_err(to_wit))
    }
}
