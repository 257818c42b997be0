//! Look-alike names: a plugin id or publisher namespace a reader could take for another one
//! already in use (`rt.rnulti` for `rt.multi`, `paypa1` for `paypal`).
//!
//! Two names look alike when their confusable skeletons are equal: the skeleton of Unicode
//! Technical Standard #39 (as the `unicode-security` crate computes it, e.g. `m` → `rn`,
//! `1` → `l`, `0` → `O`), lowercased, since ids and namespaces are lowercase (so `0` and `o`
//! meet too).
//!
//! ```
//! use plinth_package::lookalike::{look_alike, looks_like};
//! assert!(looks_like("rt.rnulti", "rt.multi"));
//! assert!(!looks_like("rt.multi", "rt.multi-2"));
//! assert_eq!(look_alike("g00gle", ["google", "github"]), Some("google"));
//! assert_eq!(look_alike("google", ["google"]), None); // the same name is not a look-alike
//! ```

/// The lowercased TR39 skeleton of `name`: names with equal skeletons look alike.
pub fn skeleton(name: &str) -> String {
    unicode_security::skeleton(name)
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `a` and `b` are different names that look alike.
pub fn looks_like(a: &str, b: &str) -> bool {
    a != b && skeleton(a) == skeleton(b)
}

/// The first of `taken` that `candidate` looks like (itself excepted).
pub fn look_alike<'a>(
    candidate: &str,
    taken: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let wanted = skeleton(candidate);
    taken
        .into_iter()
        .find(|name| *name != candidate && skeleton(name) == wanted)
}
