//! The look-alike check of plugin ids and namespaces: known confusable pairs (Unicode TR39
//! skeletons) are found wherever they sit in an id; ordinary distinct ids are not.

use plinth_package::lookalike::{look_alike, looks_like, skeleton};
use proptest::prelude::*;

/// Pieces that look alike in an id: TR39 confusables, and `0`/`o` met by lowercasing.
const PAIRS: &[(&str, &str)] = &[("m", "rn"), ("l", "1"), ("o", "0")];

proptest! {
    #[test]
    fn known_lookalikes_are_found_anywhere_in_an_id(
        prefix in "[a-z0-9-]{0,8}",
        suffix in "[a-z0-9-]{0,8}",
        pair in prop::sample::select(PAIRS),
    ) {
        let (one, other) = pair;
        let id = format!("acme.{prefix}{one}{suffix}");
        let lookalike = format!("acme.{prefix}{other}{suffix}");
        prop_assert!(looks_like(&lookalike, &id), "{lookalike} / {id}");
        prop_assert_eq!(
            look_alike(&lookalike, ["acme.other", id.as_str()]),
            Some(id.as_str())
        );
    }

    #[test]
    fn ordinary_distinct_ids_are_not_lookalikes(
        a in "[abefghkpqstuxyz2-9]{1,12}",
        b in "[abefghkpqstuxyz2-9]{1,12}",
    ) {
        prop_assume!(a != b);
        prop_assert!(!looks_like(&a, &b), "{a} / {b}: {} / {}", skeleton(&a), skeleton(&b));
        prop_assert_eq!(look_alike(&a, [a.as_str()]), None);
    }
}

#[test]
fn the_issues_lookalike_is_found() {
    assert!(looks_like("rt.rnulti", "rt.multi"));
    assert!(looks_like("paypa1", "paypal"));
    assert!(!looks_like("rt.multi", "rt.multiply"));
}
