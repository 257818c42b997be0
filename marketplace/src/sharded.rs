//! A map split into shards, each behind its own lock and chosen by the key's hash.
//!
//! The read caches and the rate limiter are touched by every request on every core. Behind
//! one lock, requests for different tenants would queue for each other; split in
//! [`SHARDS`] parts they rarely meet. An operation sees and changes only its key's shard.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// How many parts a [`Sharded`] map has: a few times the cores of a large host.
pub const SHARDS: usize = 64;

/// `K → V` in [`SHARDS`] parts, each behind its own lock.
#[derive(Debug)]
pub struct Sharded<K, V> {
    shards: Box<[Mutex<HashMap<K, V>>]>,
    hasher: RandomState,
}

impl<K, V> Default for Sharded<K, V> {
    fn default() -> Self {
        Sharded {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl<K: Eq + Hash, V> Sharded<K, V> {
    /// The shard that holds (or would hold) `key`, locked; the other shards stay free. A
    /// panic in an earlier holder leaves the shard as it was (every change is a whole insert,
    /// remove or clear), so a poisoned lock is taken over.
    pub fn shard<Q>(&self, key: &Q) -> MutexGuard<'_, HashMap<K, V>>
    where
        K: Borrow<Q>,
        Q: Hash + ?Sized,
    {
        // `shards` has SHARDS entries, so the remainder is an index.
        let index = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_always_finds_its_own_shard() {
        let map: Sharded<String, usize> = Sharded::default();
        for i in 0..1000 {
            let key = format!("tenant-{i}");
            map.shard(key.as_str()).insert(key.clone(), i);
        }
        for i in 0..1000 {
            let key = format!("tenant-{i}");
            let found = map.shard(key.as_str()).get(key.as_str()).copied();
            assert_eq!(found, Some(i));
        }
        let held: usize = map
            .shards
            .iter()
            .map(|shard| shard.lock().map_or(0, |shard| shard.len()))
            .sum();
        assert_eq!(held, 1000, "every key is in exactly one shard");
        let used = map
            .shards
            .iter()
            .filter(|shard| shard.lock().is_ok_and(|shard| !shard.is_empty()))
            .count();
        assert!(used > SHARDS / 2, "keys spread over the shards: {used}");
    }
}
