//! # plinth-package
//!
//! Everything about a Plinth plugin package that needs no runtime: the `plinth.toml`
//! [`Manifest`], the [`Permissions`] it requests as atomic [`Grant`]s, the `.plinth`
//! archive ([`Package`]), its content [`PackageDigest`], ed25519 signatures
//! ([`SecretKey`], [`PublicKey`], [`SignatureFile`]), component inspection ([`wasm`]), the
//! rules of what readers are shown ([`display`]), look-alike names ([`lookalike`]) and
//! [`validate()`]. Used by the `plinth` CLI, the host and the marketplace alike.
//!
//! ```
//! use plinth_package::{Package, SecretKey, ValidationContext, validate};
//!
//! let manifest = r#"
//! [plugin]
//! id = "acme.hello"
//! version = "1.0.0"
//! name = "Hello"
//! description = "Says hello."
//! license = "MIT"
//! api = "^0.1"
//!
//! [permissions]
//! kv = { max-bytes = 1_048_576 }
//! "#;
//! // A real plugin.wasm comes from `cargo build --target wasm32-wasip2`; this is an empty component.
//! let wasm = b"\0asm\x0d\0\x01\0".to_vec();
//! let mut package = Package::new(manifest.to_owned(), wasm, Some("# Hello\n".into()), None)?;
//!
//! // What a tenant is asked to consent to.
//! assert_eq!(
//!     package.manifest.permissions.sentences(),
//!     ["Store up to 1.0 MiB in its own key-value store"]
//! );
//!
//! // Validation returns every finding; an empty component exports no handler.
//! let report = validate(&package, &ValidationContext::local());
//! assert!(report.errors().any(|f| f.code == "missing_handler"));
//! assert!(report.warnings().any(|f| f.code == "permission_unused"));
//!
//! // Sign, write, read back and verify.
//! let key = SecretKey::generate()?;
//! package.sign(&key);
//! let bytes = package.to_bytes()?;
//! let read = Package::from_bytes(&bytes)?;
//! read.verify_developer(&key.public_key())?;
//! assert_eq!(read.digest(), package.digest());
//! # Ok::<(), plinth_package::Error>(())
//! ```
#![deny(missing_docs)]

pub mod archive;
mod canonical;
pub mod digest;
pub mod display;
mod error;
mod id;
pub mod lookalike;
pub mod manifest;
pub mod permissions;
pub mod signing;
pub mod validate;
pub mod wasm;
pub mod wit;

pub use archive::{ArchiveLimits, Package};
pub use digest::PackageDigest;
pub use error::{
    ArchiveError, Error, InvalidValue, KeyError, ManifestError, SignatureError, WasmError,
};
pub use id::PluginId;
pub use manifest::{
    Build, ConfigField, ConfigType, ConfigValue, Currency, Limits, Manifest, PLUGIN_API_VERSION,
    PluginInfo, Pricing, PricingModel,
};
pub use permissions::{
    CronPattern, EventsPermission, Grant, GrantDescription, HostPattern, HttpPermission, Interval,
    KvPermission, PermissionDiff, PermissionDiffView, Permissions, PermissionsDigest, Risk,
    Schedule, Topic,
};
pub use signing::{
    Countersignature, DeveloperSignature, PublicKey, SecretKey, SignatureFile, SignatureValue,
};
pub use validate::{Finding, Report, Severity, ValidationContext, validate};
pub use wasm::{ComponentInfo, Producer};
pub use wit::PluginWit;
