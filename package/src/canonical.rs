//! A small, unambiguous binary encoding used as the input of every digest and signature.
//!
//! Every item is self-delimiting: strings and byte strings carry a big-endian `u64` length,
//! integers are fixed-width big-endian, options and booleans a tag byte. Each encoding starts
//! with a domain string so that a digest or signature of one kind can never be mistaken for
//! another.

use sha2::{Digest, Sha256};

/// Builder of a canonical encoding.
#[derive(Debug)]
pub(crate) struct Canonical {
    bytes: Vec<u8>,
}

impl Canonical {
    /// Starts an encoding in the given domain, e.g. `plinth-package-digest/v1`.
    pub(crate) fn new(domain: &str) -> Self {
        let mut c = Canonical { bytes: Vec::new() };
        c.str(domain);
        c
    }

    /// A length-prefixed byte string.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.u64(bytes.len() as u64);
        self.bytes.extend_from_slice(bytes);
        self
    }

    /// A length-prefixed UTF-8 string.
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// A fixed-width integer.
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A fixed-width signed integer.
    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A boolean as one byte.
    pub(crate) fn bool(&mut self, v: bool) -> &mut Self {
        self.bytes.push(u8::from(v));
        self
    }

    /// An optional string: a tag byte, then the string if present.
    pub(crate) fn opt_str(&mut self, v: Option<&str>) -> &mut Self {
        self.bool(v.is_some());
        if let Some(s) = v {
            self.str(s);
        }
        self
    }

    /// An optional integer: a tag byte, then the integer if present.
    pub(crate) fn opt_u64(&mut self, v: Option<u64>) -> &mut Self {
        self.bool(v.is_some());
        if let Some(n) = v {
            self.u64(n);
        }
        self
    }

    /// A list of strings: the count, then each string.
    pub(crate) fn strs<S: AsRef<str>>(&mut self, items: &[S]) -> &mut Self {
        self.u64(items.len() as u64);
        for item in items {
            self.str(item.as_ref());
        }
        self
    }

    /// The encoded bytes.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// SHA-256 of the encoded bytes.
    pub(crate) fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.bytes).into()
    }
}
