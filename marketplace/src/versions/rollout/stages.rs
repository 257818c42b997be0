//! A rollout's schedule (percentages with soak times) and who is in each stage: a tenant's
//! place in the line is a stable hash of tenant and plugin, so a tenant in a stage is in every
//! later one, and each plugin's early tenants are different ones.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// Most stages of a rollout.
pub const MAX_STAGES: usize = 10;
/// Longest soak of one stage: 30 days, in minutes.
pub const MAX_SOAK_MINUTES: i64 = 30 * 24 * 60;

/// Basis points in 100%: a tenant's place is in `0..BASIS_POINTS`.
const BASIS_POINTS: u64 = 10_000;

/// One stage: the share of installs updated, and how long to watch them before the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Percent of the plugin's tenants (1 to 100), counting those of earlier stages.
    pub percent: u8,
    /// Minutes this stage soaks before the next begins (0 to 43200); the last stage's is not
    /// waited for.
    #[serde(default)]
    pub soak_minutes: i64,
}

impl Stage {
    /// The soak in milliseconds.
    pub fn soak_ms(self) -> i64 {
        self.soak_minutes.saturating_mul(60_000)
    }
}

fn invalid(message: String) -> Error {
    Error::bad_request("invalid_rollout", message)
}

/// Checks a schedule: 1 to [`MAX_STAGES`] stages, percentages rising strictly from at least 1
/// to exactly 100, soaks from 0 to [`MAX_SOAK_MINUTES`].
///
/// # Errors
///
/// 400 `invalid_rollout` naming the stage and the field.
pub fn check(stages: &[Stage]) -> Result<()> {
    if stages.is_empty() || stages.len() > MAX_STAGES {
        return Err(invalid(format!(
            "field `stages` must have 1 to {MAX_STAGES} stages, not {}",
            stages.len()
        )));
    }
    let mut before = 0;
    for (index, stage) in stages.iter().enumerate() {
        if stage.percent <= before || stage.percent > 100 {
            return Err(invalid(format!(
                "stages[{index}].percent must be more than the stage before ({before}) and at most 100, not {}",
                stage.percent
            )));
        }
        if !(0..=MAX_SOAK_MINUTES).contains(&stage.soak_minutes) {
            return Err(invalid(format!(
                "stages[{index}].soak_minutes must be from 0 to {MAX_SOAK_MINUTES}, not {}",
                stage.soak_minutes
            )));
        }
        before = stage.percent;
    }
    if before != 100 {
        return Err(invalid(format!(
            "the last stage must reach 100 percent, not {before}"
        )));
    }
    Ok(())
}

/// Tenant `tenant_id`'s place in the line of `plugin_id`'s rollouts, in basis points.
pub fn place(tenant_id: &str, plugin_id: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(plugin_id.as_bytes())
        .chain_update([0])
        .chain_update(tenant_id.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % BASIS_POINTS
}

/// Whether tenant `tenant_id` is among the first `percent` percent of `plugin_id`'s tenants.
pub fn includes(percent: u8, tenant_id: &str, plugin_id: &str) -> bool {
    place(tenant_id, plugin_id) < u64::from(percent) * (BASIS_POINTS / 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(percent: u8, soak_minutes: i64) -> Stage {
        Stage {
            percent,
            soak_minutes,
        }
    }

    #[test]
    fn schedules_rise_to_one_hundred() {
        assert!(check(&[stage(5, 60), stage(25, 1440), stage(100, 0)]).is_ok());
        assert!(check(&[stage(100, 0)]).is_ok());
        for bad in [
            vec![],
            vec![stage(50, 0)],
            vec![stage(0, 0), stage(100, 0)],
            vec![stage(50, 0), stage(50, 0), stage(100, 0)],
            vec![stage(50, -1), stage(100, 0)],
            vec![stage(50, MAX_SOAK_MINUTES + 1), stage(100, 0)],
            vec![stage(101, 0)],
            (1..=11).map(|n| stage(n * 9, 0)).collect(),
        ] {
            let refused = check(&bad);
            assert_eq!(
                refused.map_err(|e| e.code().to_owned()).err().as_deref(),
                Some("invalid_rollout"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_tenant_in_a_stage_stays_in_every_later_one() {
        let tenants: Vec<String> = (0..2000).map(|n| format!("tenant-{n}")).collect();
        let mut before = 0;
        for percent in [1, 5, 25, 50, 100] {
            let inside: Vec<&String> = tenants
                .iter()
                .filter(|t| includes(percent, t, "acme.x"))
                .collect();
            assert!(inside.len() >= before, "{percent}%");
            for tenant in tenants.iter().filter(|t| includes(percent, t, "acme.x")) {
                assert!(includes(
                    percent.saturating_add(10).min(100),
                    tenant,
                    "acme.x"
                ));
            }
            before = inside.len();
        }
        assert_eq!(before, tenants.len(), "100% is everyone");
        // About a quarter at 25% (the hash spreads tenants evenly).
        let quarter = tenants.iter().filter(|t| includes(25, t, "acme.x")).count();
        assert!((400..600).contains(&quarter), "{quarter} of 2000 at 25%");
        // Another plugin's line is another order.
        let other = tenants
            .iter()
            .filter(|t| includes(25, t, "acme.y") && !includes(25, t, "acme.x"))
            .count();
        assert!(other > 100, "{other}");
    }
}
