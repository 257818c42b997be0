//! The crate's one error type, [`Error`], and the sub-enums its variants carry.

use std::fmt;

/// Everything that can go wrong in `plinth-package`.
///
/// Each variant groups one concern; match on the carried sub-enum for detail. Every message is a
/// sentence a developer can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `plinth.toml` is not valid; the error names the offending key's path.
    #[error("plinth.toml: {0}")]
    Manifest(#[from] ManifestError),
    /// A string is not a valid value of some Plinth type (plugin id, host, topic, digest, …).
    #[error(transparent)]
    InvalidValue(#[from] InvalidValue),
    /// The `.plinth` archive is malformed, unsafe or too large.
    #[error("package archive: {0}")]
    Archive(#[from] ArchiveError),
    /// A signature is missing, made by another key, or does not verify.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// A key file or key string is malformed.
    #[error("key: {0}")]
    Key(#[from] KeyError),
    /// The wasm is not a valid WebAssembly component.
    #[error("plugin.wasm: {0}")]
    Wasm(#[from] WasmError),
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. `writing /tmp/x.plinth`.
        context: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `signature.json` could not be encoded.
    #[error("could not encode signature.json: {0}")]
    Json(#[from] serde_json::Error),
    /// The operating system's random number generator failed.
    #[error("could not get random bytes from the operating system: {0}")]
    Random(getrandom::Error),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// `plinth.toml` could not be parsed or breaks a rule.
///
/// `path` is the dotted key path of the offending value (`permissions.http.hosts[1]`), empty
/// when the problem is the document as a whole (a TOML syntax error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// Dotted key path, e.g. `permissions.http.hosts[1]`; empty for syntax errors.
    pub path: String,
    /// What is wrong, e.g. `"https://x" is not a valid host (remove the scheme)`.
    pub message: String,
}

impl ManifestError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ManifestError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ManifestError {}

/// A string is not a valid value of a Plinth type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{value}\" is not a valid {what} ({reason})")]
pub struct InvalidValue {
    /// The kind of value, e.g. `host`, `plugin id`, `topic`.
    pub what: &'static str,
    /// The rejected input.
    pub value: String,
    /// Why it was rejected.
    pub reason: String,
}

impl InvalidValue {
    pub(crate) fn new(what: &'static str, value: &str, reason: impl Into<String>) -> Self {
        InvalidValue {
            what,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Why a `.plinth` archive was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The compressed package is larger than allowed.
    #[error("the package is {size} bytes, more than the limit of {limit} bytes")]
    CompressedTooLarge {
        /// Size of the package in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// One entry is larger than allowed for its name (checked from its header before reading).
    #[error("{name} is {size} bytes, more than the limit of {limit} bytes")]
    FileTooLarge {
        /// Entry name.
        name: String,
        /// Size claimed by the entry's header.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The files together, or the decompressed stream, are larger than allowed.
    #[error("the package decompresses to more than the limit of {limit} bytes")]
    TotalTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The package ends early.
    #[error("the package is truncated")]
    Truncated,
    /// The gzip header is not the fixed `.plinth` header (no flags, mtime 0, XFL 0, OS 255).
    #[error("the gzip header is not the canonical .plinth header")]
    NonCanonicalGzipHeader,
    /// The gzip CRC32 of the decompressed data does not match the trailer.
    #[error(
        "the gzip checksum does not match (stored {stored:08x}, computed {computed:08x}): the package is corrupt"
    )]
    ChecksumMismatch {
        /// CRC32 stored in the trailer.
        stored: u32,
        /// CRC32 of the decompressed data.
        computed: u32,
    },
    /// The gzip ISIZE field does not match the decompressed length.
    #[error(
        "the gzip length field does not match (stored {stored}, actual {actual}): the package is corrupt"
    )]
    LengthMismatch {
        /// ISIZE stored in the trailer.
        stored: u32,
        /// Decompressed length modulo 2^32.
        actual: u32,
    },
    /// The final byte of the compressed data has a non-zero padding bit: the bits after the
    /// end of the deflate stream, which decoders ignore and the writer leaves zero, were set.
    #[error(
        "the padding bits after the end of the compressed data (in byte {offset}) are not zero: the package was altered after it was written"
    )]
    NonCanonicalDeflatePadding {
        /// Offset in the package of the byte holding the padding bits.
        offset: usize,
    },
    /// Bytes follow the gzip member.
    #[error("{count} unexpected bytes follow the end of the package")]
    TrailingBytes {
        /// How many bytes follow.
        count: usize,
    },
    /// The compressed data or the tar structure is corrupt.
    #[error("the package is corrupt: {0}")]
    Corrupt(String),
    /// An entry has an absolute path.
    #[error("entry \"{0}\" has an absolute path")]
    AbsolutePath(String),
    /// An entry's path contains `..`.
    #[error("entry \"{0}\" escapes the package with `..`")]
    PathTraversal(String),
    /// An entry is a symbolic or hard link.
    #[error("entry \"{name}\" is a {kind}; packages hold only regular files")]
    Link {
        /// Entry name.
        name: String,
        /// `symbolic link` or `hard link`.
        kind: &'static str,
    },
    /// An entry is a directory, device, FIFO or tar extension header.
    #[error("entry \"{name}\" is not a regular file ({kind}); packages hold only regular files")]
    NotRegularFile {
        /// Entry name.
        name: String,
        /// The kind of entry found.
        kind: String,
    },
    /// An entry appears twice.
    #[error("entry \"{0}\" appears more than once")]
    DuplicateEntry(String),
    /// An entry has a name that a package may not contain.
    #[error(
        "unexpected entry \"{0}\" (a package holds plinth.toml, plugin.wasm, README.md, CHANGELOG.md and signature.json)"
    )]
    UnknownEntry(String),
    /// A required entry is missing.
    #[error("the package has no {0}")]
    MissingEntry(&'static str),
    /// A text entry is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    NotUtf8(String),
    /// `signature.json` is not a valid signature file.
    #[error("signature.json is not valid: {0}")]
    InvalidSignatureFile(String),
}

/// Why a signature check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The package carries no developer signature.
    #[error("the package is not signed by its developer")]
    MissingDeveloperSignature,
    /// The package carries no marketplace countersignature.
    #[error("the package has no marketplace countersignature")]
    MissingCountersignature,
    /// The signature was made by a key other than the expected one.
    #[error("the package was signed by key {found}, not by the expected key {expected}")]
    WrongKey {
        /// Fingerprint of the expected key.
        expected: String,
        /// Fingerprint of the key in the signature.
        found: String,
    },
    /// The signature does not verify: the signature or the signed data was altered.
    #[error("the {which} signature does not match: the signature was tampered with")]
    BadSignature {
        /// `developer` or `marketplace`.
        which: &'static str,
    },
    /// The signature is valid, but for other content: the package changed after signing.
    #[error("the package content changed after it was signed (signed {signed}, now {actual})")]
    DigestMismatch {
        /// The digest that was signed.
        signed: String,
        /// The digest of the package as it is.
        actual: String,
    },
    /// The countersignature is valid but names another plugin, version or permission set.
    #[error(
        "the marketplace countersignature is for {field} {signed}, but the package has {actual}"
    )]
    CountersignatureMismatch {
        /// `plugin`, `version` or `permissions`.
        field: &'static str,
        /// What was countersigned.
        signed: String,
        /// What the package has.
        actual: String,
    },
    /// `signature.json` has a format version this crate does not know.
    #[error("signature.json format {0} is not supported (expected 1)")]
    UnsupportedFormat(u32),
}

/// Why a key could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text does not start with the expected prefix.
    #[error("expected one line starting with \"{0}\"")]
    MissingPrefix(&'static str),
    /// The base64 part is not valid base64.
    #[error("the key is not valid base64")]
    Base64,
    /// The decoded key is not 32 bytes.
    #[error("the key is {0} bytes, expected 32")]
    Length(usize),
    /// The bytes are not a valid ed25519 public key.
    #[error("the bytes are not a valid ed25519 public key")]
    NotOnCurve,
}

/// Why a wasm binary was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WasmError {
    /// The binary is a core WebAssembly module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component; build for wasm32-wasip2 or run `wasm-tools component new`"
    )]
    CoreModule,
    /// The binary is not valid WebAssembly.
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
}
