//! A private key-value store of bytes. Requires the `kv` permission.
//!
//! Keys are non-empty UTF-8 text of at most 512 bytes. The store is private to the plugin and
//! the tenant it runs for; its total size is bounded by the manifest's `max-bytes` and the
//! tenant's plan.
//!
//! ```no_run
//! use plinth_sdk::kv;
//!
//! kv::set("greeting", "hello")?;
//! assert_eq!(kv::get("greeting")?.as_deref(), Some(&b"hello"[..]));
//! for key in kv::keys("user/") {
//!     let key = key?;
//!     kv::delete(&key)?;
//! }
//! # Ok::<(), kv::KvError>(())
//! ```

use std::fmt;

use crate::PluginError;
use crate::bindings::plugin::plinth::plugin::kv as wit;

/// How many keys [`keys`] asks for per page.
const PAGE_SIZE: u32 = 256;

/// Why a kv call failed. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The write would pass the install's byte or key quota; the text names it.
    QuotaExceeded(String),
    /// The key is empty, longer than 512 bytes, or not valid UTF-8.
    InvalidKey(String),
    /// The value is larger than the largest single value the host accepts (the limit in bytes).
    ValueTooLarge(u64),
    /// The store is unavailable right now; the call had no effect and may be retried.
    Unavailable(String),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::QuotaExceeded(why) => write!(f, "kv quota exceeded: {why}"),
            Self::InvalidKey(why) => write!(f, "invalid kv key: {why}"),
            Self::ValueTooLarge(limit) => {
                write!(f, "kv value too large: the limit is {limit} bytes")
            }
            Self::Unavailable(why) => write!(f, "kv store unavailable: {why}"),
        }
    }
}

impl std::error::Error for KvError {}

impl From<wit::KvError> for KvError {
    fn from(err: wit::KvError) -> Self {
        match err {
            wit::KvError::QuotaExceeded(why) => Self::QuotaExceeded(why),
            wit::KvError::InvalidKey(why) => Self::InvalidKey(why),
            wit::KvError::ValueTooLarge(limit) => Self::ValueTooLarge(limit),
            wit::KvError::Unavailable(why) => Self::Unavailable(why),
        }
    }
}

impl From<KvError> for PluginError {
    fn from(err: KvError) -> Self {
        PluginError::Capability(err.to_string())
    }
}

/// One page of keys returned by [`list_keys`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// Keys in ascending byte order.
    pub keys: Vec<String>,
    /// When more keys match, the cursor to pass to the next [`list_keys`] call.
    pub next_cursor: Option<String>,
}

/// Returns the value stored under `key`, or `None` if there is none.
///
/// # Errors
///
/// [`KvError`] when the key is invalid or the store is unavailable.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    Ok(wit::get(key)?)
}

/// Stores `value` under `key`, replacing any previous value.
///
/// # Errors
///
/// [`KvError`] when the key is invalid, the value too large, a quota would be passed, or the
/// store is unavailable.
pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), KvError> {
    Ok(wit::set(key, value.as_ref())?)
}

/// Deletes `key`. Returns whether a value was there.
///
/// # Errors
///
/// [`KvError`] when the key is invalid or the store is unavailable.
pub fn delete(key: &str) -> Result<bool, KvError> {
    Ok(wit::delete(key)?)
}

/// Lists one page of at most `limit` keys starting with `prefix` (the host caps `limit` at
/// 1000). Pass the previous page's [`KeyPage::next_cursor`] as `cursor` to continue; [`keys`]
/// does that for you.
///
/// # Errors
///
/// [`KvError`] when the store is unavailable.
pub fn list_keys(prefix: &str, cursor: Option<&str>, limit: u32) -> Result<KeyPage, KvError> {
    let page = wit::list_keys(prefix, cursor, limit)?;
    Ok(KeyPage {
        keys: page.keys,
        next_cursor: page.next_cursor,
    })
}

/// Iterates over every key starting with `prefix`, in ascending order, fetching pages lazily.
///
/// Each item is a key or the error that ended the listing (after which the iterator stops).
pub fn keys(prefix: impl Into<String>) -> Keys {
    Keys {
        prefix: prefix.into(),
        page: Vec::new().into_iter(),
        cursor: None,
        done: false,
    }
}

/// Collects every key starting with `prefix`.
///
/// # Errors
///
/// [`KvError`] when the store is unavailable.
pub fn keys_with_prefix(prefix: &str) -> Result<Vec<String>, KvError> {
    keys(prefix).collect()
}

/// The iterator returned by [`keys`].
#[derive(Debug)]
pub struct Keys {
    prefix: String,
    page: std::vec::IntoIter<String>,
    cursor: Option<String>,
    done: bool,
}

impl Iterator for Keys {
    type Item = Result<String, KvError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(key) = self.page.next() {
                return Some(Ok(key));
            }
            if self.done {
                return None;
            }
            match list_keys(&self.prefix, self.cursor.as_deref(), PAGE_SIZE) {
                Ok(page) => {
                    self.done = page.next_cursor.is_none();
                    self.cursor = page.next_cursor;
                    self.page = page.keys.into_iter();
                }
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            }
        }
    }
}
