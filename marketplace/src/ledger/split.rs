//! The split of a charge between the platform and the publisher, processor fees, and the
//! proportional reversal of refunds — with one rounding rule.
//!
//! # The rule
//!
//! The platform's share is computed per tier of the publisher's **lifetime gross** in the
//! charge's currency (the sum of the gross of every charge before this one, refunds not
//! deducted): the part of the charge that falls inside a tier is multiplied by the tier's rate
//! in basis points and **rounded down to the minor unit**; the publisher gets the rest, so the
//! two parts always sum to the charge. A charge that crosses a tier boundary is split across the
//! tiers. Refunds and lost disputes reverse the parts in proportion: after a cumulative reversed
//! total `R` (everything refunded plus everything lost in disputes) of a charge of gross `G`,
//! the platform has given back `floor(platform × R / G)` and the publisher the rest of `R` —
//! the same rounding down, applied to the cumulative total so that partial reversals never give
//! back more than a part and a full one gives back each part exactly, whatever their order. Processor fees are `floor(gross × bps / 10000) + fixed` (at most the gross),
//! borne by the platform or the publisher (the publisher's share of a fee never exceeds its part
//! of the charge; the platform bears the rest). A refund does not return the fee.

use crate::error::{Error, Result};

/// Basis points in a whole (100%).
pub const BPS: i64 = 10_000;

/// One tier: the platform's rate on lifetime gross below `up_to` (and above the previous
/// tier's bound).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tier {
    /// The exclusive upper bound of lifetime gross (minor units) of this tier; `None` for the
    /// last tier, which has none.
    pub up_to: Option<i64>,
    /// The platform's share in basis points (1500 = 15%).
    pub platform_bps: i64,
}

/// A versioned split policy. Each charge records the version it was split by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitPolicy {
    /// The policy's version.
    pub version: i64,
    /// Tiers by ascending bound; the last has no bound.
    pub tiers: Vec<Tier>,
}

impl Default for SplitPolicy {
    /// Version 1: 0% on the first 1,000,000.00 of lifetime gross, 15% above.
    fn default() -> Self {
        SplitPolicy {
            version: 1,
            tiers: vec![
                Tier {
                    up_to: Some(100_000_000),
                    platform_bps: 0,
                },
                Tier {
                    up_to: None,
                    platform_bps: 1500,
                },
            ],
        }
    }
}

/// The parts of a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// The whole charge.
    pub gross: i64,
    /// The platform's part.
    pub platform: i64,
    /// The publisher's part: `gross - platform`.
    pub publisher: i64,
}

/// `floor(amount × numerator / denominator)` for non-negative inputs, exact (in i128).
pub fn share(amount: i64, numerator: i64, denominator: i64) -> i64 {
    if denominator <= 0 {
        return 0;
    }
    let product = i128::from(amount) * i128::from(numerator) / i128::from(denominator);
    i64::try_from(product).unwrap_or(i64::MAX)
}

impl SplitPolicy {
    /// Checks the tiers: at least one, rates within 0..=10000 bps, bounds ascending, the last
    /// unbounded and only the last.
    ///
    /// # Errors
    ///
    /// [`Error::BadRequest`] (`invalid_split_policy`) saying what is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| Err(Error::bad_request("invalid_split_policy", message));
        let Some(last) = self.tiers.last() else {
            return bad("a split policy needs at least one tier".to_owned());
        };
        if last.up_to.is_some() {
            return bad("the last tier of a split policy must have no upper bound".to_owned());
        }
        let mut previous = 0;
        for (index, tier) in self.tiers.iter().enumerate() {
            if !(0..=BPS).contains(&tier.platform_bps) {
                return bad(format!(
                    "tier {index}: platform_bps must be between 0 and {BPS}, not {}",
                    tier.platform_bps
                ));
            }
            match tier.up_to {
                Some(bound) if bound <= previous => {
                    return bad(format!(
                        "tier {index}: bounds must ascend; {bound} is not above {previous}"
                    ));
                }
                Some(bound) => previous = bound,
                None if index + 1 != self.tiers.len() => {
                    return bad(format!("tier {index}: only the last tier may be unbounded"));
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Splits a charge of `gross` for a publisher whose lifetime gross before it is
    /// `lifetime_before`, by the rule in the module docs.
    pub fn split(&self, lifetime_before: i64, gross: i64) -> Split {
        let gross = gross.max(0);
        let start = i128::from(lifetime_before.max(0));
        let end = start + i128::from(gross);
        let mut lower: i128 = 0;
        let mut platform: i64 = 0;
        for tier in &self.tiers {
            let upper = tier.up_to.map_or(i128::MAX, i128::from);
            let from = start.max(lower);
            let to = end.min(upper);
            if to > from {
                let segment = i64::try_from(to - from).unwrap_or(gross);
                platform += share(segment, tier.platform_bps.clamp(0, BPS), BPS);
            }
            lower = upper;
        }
        let platform = platform.min(gross);
        Split {
            gross,
            platform,
            publisher: gross - platform,
        }
    }
}

/// Who bears the processor's fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeBearer {
    /// The platform (its revenue is not reduced; the fee is its expense).
    Platform,
    /// The publisher (its part is reduced by the fee, at most to zero).
    Publisher,
}

/// The processor's fee per charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeePolicy {
    /// Proportional part in basis points.
    pub basis_points: i64,
    /// Fixed part in minor units.
    pub fixed: i64,
    /// Who bears it.
    pub bearer: FeeBearer,
}

impl Default for FeePolicy {
    /// No fee modelled; configure the processor's (e.g. 290 bps + 30) to account for it.
    fn default() -> Self {
        FeePolicy {
            basis_points: 0,
            fixed: 0,
            bearer: FeeBearer::Platform,
        }
    }
}

/// A charge's fee and the publisher's part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fee {
    /// The whole fee.
    pub fee: i64,
    /// What the publisher bears (the platform bears `fee - publisher`).
    pub publisher: i64,
}

impl FeePolicy {
    /// The fee on a charge split as `split`.
    pub fn fee(&self, split: &Split) -> Fee {
        let fee = (share(split.gross, self.basis_points.clamp(0, BPS), BPS) + self.fixed.max(0))
            .min(split.gross);
        let publisher = match self.bearer {
            FeeBearer::Platform => 0,
            FeeBearer::Publisher => fee.min(split.publisher),
        };
        Fee { fee, publisher }
    }
}

/// What one refund takes back from each party.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reversal {
    /// From the platform.
    pub platform: i64,
    /// From the publisher.
    pub publisher: i64,
}

/// The reversal that brings a charge of `gross` with platform part `platform` from
/// `reversed_before` to `reversed_after` reversed in total (the rule in the module docs). The
/// two parts sum to `reversed_after - reversed_before`.
pub fn reversal(gross: i64, platform: i64, reversed_before: i64, reversed_after: i64) -> Reversal {
    let platform_part =
        share(platform, reversed_after, gross) - share(platform, reversed_before, gross);
    Reversal {
        platform: platform_part,
        publisher: (reversed_after - reversed_before) - platform_part,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_free_below_a_million_and_fifteen_percent_above() {
        let policy = SplitPolicy::default();
        policy.validate().unwrap();
        let below = policy.split(0, 10_000);
        assert_eq!((below.platform, below.publisher), (0, 10_000));
        let above = policy.split(100_000_000, 10_000);
        assert_eq!((above.platform, above.publisher), (1_500, 8_500));
        // 4,000 below the boundary at 0%, 6,000 above at 15% = 900.
        let across = policy.split(99_996_000, 10_000);
        assert_eq!((across.platform, across.publisher), (900, 9_100));
    }

    #[test]
    fn platform_share_rounds_down() {
        let policy = SplitPolicy::default();
        let odd = policy.split(100_000_000, 333);
        // 15% of 333 = 49.95 → 49.
        assert_eq!((odd.platform, odd.publisher), (49, 284));
    }

    #[test]
    fn partial_refunds_never_reverse_more_than_a_part() {
        // 15 of 100 to the platform; two refunds of 50: 7 then 8, summing to 15.
        let first = reversal(100, 15, 0, 50);
        let second = reversal(100, 15, 50, 100);
        assert_eq!((first.platform, first.publisher), (7, 43));
        assert_eq!((second.platform, second.publisher), (8, 42));
    }

    #[test]
    fn bad_policies_are_refused() {
        let tiers = |tiers: Vec<(Option<i64>, i64)>| SplitPolicy {
            version: 2,
            tiers: tiers
                .into_iter()
                .map(|(up_to, platform_bps)| Tier {
                    up_to,
                    platform_bps,
                })
                .collect(),
        };
        assert!(tiers(vec![]).validate().is_err());
        assert!(tiers(vec![(Some(10), 0)]).validate().is_err());
        assert!(tiers(vec![(None, 10_001)]).validate().is_err());
        assert!(
            tiers(vec![(Some(10), 0), (Some(5), 0), (None, 1)])
                .validate()
                .is_err()
        );
        assert!(tiers(vec![(None, 0), (None, 1)]).validate().is_err());
        assert!(tiers(vec![(Some(10), 0), (None, 1)]).validate().is_ok());
    }

    #[test]
    fn fees_are_capped_and_borne_as_configured() {
        let split = SplitPolicy::default().split(0, 1_000);
        let platform = FeePolicy {
            basis_points: 290,
            fixed: 30,
            bearer: FeeBearer::Platform,
        };
        assert_eq!(
            platform.fee(&split),
            Fee {
                fee: 59,
                publisher: 0
            }
        );
        let publisher = FeePolicy {
            bearer: FeeBearer::Publisher,
            ..platform.clone()
        };
        assert_eq!(
            publisher.fee(&split),
            Fee {
                fee: 59,
                publisher: 59
            }
        );
        let tiny = SplitPolicy::default().split(0, 10);
        assert_eq!(
            publisher.fee(&tiny),
            Fee {
                fee: 10,
                publisher: 10
            }
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 2_000, ..Default::default() })]

        /// Parts sum to the whole at any lifetime, across tier boundaries, and successive
        /// partial refunds reverse exactly each part by the time the whole is refunded.
        #[test]
        fn parts_always_sum_to_the_whole(
            lifetime in 0..300_000_000i64,
            gross in 1..200_000_000i64,
            cuts in proptest::collection::vec(1..10_000i64, 0..6),
            bps in 0..=BPS,
            fixed in 0..500i64,
        ) {
            let policy = SplitPolicy::default();
            let split = policy.split(lifetime, gross);
            proptest::prop_assert_eq!(split.platform + split.publisher, gross);
            proptest::prop_assert!(split.platform >= 0 && split.publisher >= 0);
            proptest::prop_assert!(split.platform <= share(gross, 1500, BPS));
            let fee = FeePolicy { basis_points: bps, fixed, bearer: FeeBearer::Publisher }.fee(&split);
            proptest::prop_assert!(fee.fee <= gross && fee.publisher <= split.publisher);
            let mut refunded = 0;
            let (mut platform, mut publisher) = (0, 0);
            let mut totals: Vec<i64> = cuts.iter().map(|c| share(gross, *c, BPS)).collect();
            totals.sort_unstable();
            totals.push(gross);
            for total in totals {
                let part = reversal(gross, split.platform, refunded, total);
                proptest::prop_assert_eq!(part.platform + part.publisher, total - refunded);
                proptest::prop_assert!(part.platform >= 0 && part.publisher >= 0);
                platform += part.platform;
                publisher += part.publisher;
                refunded = total;
            }
            proptest::prop_assert_eq!((platform, publisher), (split.platform, split.publisher));
        }
    }
}
