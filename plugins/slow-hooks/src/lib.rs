//! Test fixture: its `on-upgrade` and `on-uninstall` hooks wait on a URL the test serves.
//!
//! Each hook sends `GET <hook-url>/upgrade?from=<version>` or `GET <hook-url>/uninstall` and
//! returns only when that request is answered: a test holds the answer to keep the hook
//! running as long as it likes (no sleeping on a clock), and answers with an error status to
//! make the hook fail. `on-install` sends nothing, so installing never waits. Events on `ping`
//! answer `"pong"`.

use plinth_sdk::{Event, Plugin, PluginError, config, http};

/// The plugin type.
struct SlowHooks;

/// Sends `GET <hook-url><path>`; fails unless the answer is a success.
fn wait_for(path: &str) -> Result<(), PluginError> {
    let url = config::get_required("hook-url")?;
    let response = http::get(&format!("{url}{path}"))?;
    if response.is_success() {
        Ok(())
    } else {
        Err(PluginError::failed(format!(
            "the hook URL answered {}",
            response.status
        )))
    }
}

impl Plugin for SlowHooks {
    fn on_event(_event: Event) -> Result<Option<Vec<u8>>, PluginError> {
        plinth_sdk::json(&"pong")
    }

    fn on_upgrade(from_version: &str) -> Result<(), PluginError> {
        wait_for(&format!("/upgrade?from={from_version}"))
    }

    fn on_uninstall() -> Result<(), PluginError> {
        wait_for("/uninstall")
    }
}

plinth_sdk::export!(SlowHooks);
