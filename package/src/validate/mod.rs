//! Validation of a whole package, shared by the CLI (locally) and the marketplace (on
//! submission). Returns every finding, not just the first.
//!
//! Rules: the manifest's `api` range is satisfied by [`PLUGIN_API_VERSION`]; the id is in the
//! submitter's namespace and the version greater than every published one (marketplace);
//! sizes are within [`ArchiveLimits`]; the wasm is a valid component; every import is covered
//! by a declared permission (base WASI always is, `wasi:sockets` too: it is linked with every
//! operation denied); `plinth:plugin/handler` is exported; every declared permission is used
//! (warning); the developer signature is valid (required, by a registered key, in the
//! marketplace); what readers are shown keeps the rules of [`crate::display`] (`display_text`);
//! and a new plugin id does not look like one in use (warning `lookalike_id`, for a reviewer to
//! judge; see [`crate::lookalike`]).

mod component;
mod report;

use crate::archive::{ArchiveLimits, Package};
use crate::error::{Error, SignatureError};
use crate::manifest::PLUGIN_API_VERSION;
use crate::signing::PublicKey;
use crate::wasm;

pub use report::{Finding, Report, Severity};

/// What validation knows about the submitter. [`ValidationContext::local`] knows nothing and
/// checks the package on its own.
#[derive(Debug, Clone, Default)]
pub struct ValidationContext {
    /// The publisher namespace the submitter owns: the plugin id must be in it.
    pub publisher: Option<String>,
    /// Versions of this plugin already published or in review: the version must be greater
    /// than all.
    pub published_versions: Vec<semver::Version>,
    /// `Some`: a developer signature by one of these keys is required and must verify.
    /// `None`: an unsigned package is fine, but a signature present must still verify.
    pub developer_keys: Option<Vec<PublicKey>>,
    /// Keys the publisher revoked: a signature by one is `signature_key_revoked` rather than
    /// `signature_unknown_key`.
    pub revoked_keys: Vec<PublicKey>,
    /// Size limits to hold the package to.
    pub limits: ArchiveLimits,
    /// Plugin ids in use (published, or in review): a plugin id not among them that looks like
    /// one of them gets a `lookalike_id` warning.
    pub taken_ids: Vec<String>,
}

impl ValidationContext {
    /// Validation of a package on its own, as `plinth plugin build` does.
    pub fn local() -> ValidationContext {
        ValidationContext::default()
    }
}

/// Validates `package` in `context` and returns every finding.
///
/// ```
/// use plinth_package::{Package, ValidationContext, validate};
/// # let manifest = "[plugin]\nid = \"acme.hello\"\nversion = \"1.0.0\"\nname = \"Hello\"\n\
/// #     description = \"Hi.\"\nlicense = \"MIT\"\napi = \"^0.2\"\n";
/// let package = Package::new(manifest.to_owned(), b"\0asm\x0d\0\x01\0".to_vec(), None, None)?;
/// let report = validate(&package, &ValidationContext::local());
/// assert!(report.has_errors());
/// let codes: Vec<&str> = report.errors().map(|f| f.code.as_str()).collect();
/// assert!(codes.contains(&"api_unsupported"));
/// assert!(codes.contains(&"missing_handler"));
/// # Ok::<(), plinth_package::Error>(())
/// ```
pub fn validate(package: &Package, context: &ValidationContext) -> Report {
    let mut report = Report::default();
    check_api(package, &mut report);
    check_identity(package, context, &mut report);
    check_sizes(package, &context.limits, &mut report);
    for problem in crate::display::problems(package) {
        report.error("display_text", problem.to_string());
    }
    match wasm::inspect(&package.wasm) {
        Ok(info) => component::check(&package.manifest, &info, &mut report),
        Err(e) => report.error(
            "not_a_component",
            format!("plugin.wasm is not a valid WebAssembly component: {e}"),
        ),
    }
    check_signature(package, context, &mut report);
    report
}

fn check_api(package: &Package, report: &mut Report) {
    let api = &package.manifest.plugin.api;
    if !api.matches(&PLUGIN_API_VERSION) {
        report.error(
            "api_unsupported",
            format!(
                "plinth.toml asks for plinth:plugin {api}, but this platform provides plinth:plugin {PLUGIN_API_VERSION}"
            ),
        );
    }
}

fn check_identity(package: &Package, context: &ValidationContext, report: &mut Report) {
    let plugin = &package.manifest.plugin;
    if let Some(publisher) = &context.publisher
        && plugin.id.publisher() != publisher
    {
        report.error(
            "wrong_publisher",
            format!(
                "plugin id {} is not in your publisher namespace \"{publisher}\"; use an id starting with \"{publisher}.\"",
                plugin.id
            ),
        );
    }
    let id = plugin.id.as_str();
    if !context.taken_ids.iter().any(|taken| taken == id)
        && let Some(other) =
            crate::lookalike::look_alike(id, context.taken_ids.iter().map(String::as_str))
    {
        report.warning(
            "lookalike_id",
            format!(
                "plugin id {id} looks like {other}, which is in use; a reviewer checks that it \
                 does not pass for it"
            ),
        );
    }
    if let Some(latest) = context.published_versions.iter().max()
        && plugin.version <= *latest
    {
        report.error(
            "version_not_greater",
            format!(
                "version {} is not greater than {latest}, the latest version published or in review",
                plugin.version
            ),
        );
    }
}

fn check_sizes(package: &Package, limits: &ArchiveLimits, report: &mut Report) {
    let sizes = [
        (
            "plugin.wasm",
            "wasm_too_large",
            Some(package.wasm.len()),
            limits.wasm,
        ),
        (
            "plinth.toml",
            "manifest_too_large",
            Some(package.manifest_toml.len()),
            limits.manifest,
        ),
        (
            "README.md",
            "readme_too_large",
            package.readme.as_ref().map(String::len),
            limits.readme,
        ),
        (
            "CHANGELOG.md",
            "changelog_too_large",
            package.changelog.as_ref().map(String::len),
            limits.changelog,
        ),
    ];
    let mut total = 0u64;
    for (name, code, size, limit) in sizes {
        let Some(size) = size else { continue };
        let size = size as u64;
        total += size;
        if size > limit {
            report.error(
                code,
                format!("{name} is {size} bytes, more than the limit of {limit} bytes"),
            );
        }
    }
    if total > limits.total {
        report.error(
            "package_too_large",
            format!(
                "the package's files are {total} bytes together, more than the limit of {} bytes",
                limits.total
            ),
        );
    }
}

fn check_signature(package: &Package, context: &ValidationContext, report: &mut Report) {
    let developer = package.signature.developer.as_ref();
    let result = match (&context.developer_keys, developer) {
        (None, None) => return,
        (Some(_), None) => {
            report.error(
                "signature_missing",
                "the package is not signed; sign it with a key registered to your publisher (plinth plugin sign)",
            );
            return;
        }
        (Some(keys), Some(signature)) => {
            if context.revoked_keys.contains(&signature.key) {
                report.error(
                    "signature_key_revoked",
                    format!(
                        "the package is signed by key {}, which was revoked; sign it with an active key",
                        signature.key.fingerprint()
                    ),
                );
                return;
            }
            if !keys.contains(&signature.key) {
                report.error(
                    "signature_unknown_key",
                    format!(
                        "the package is signed by key {}, which is not a registered key of this publisher",
                        signature.key.fingerprint()
                    ),
                );
                return;
            }
            package.verify_developer(&signature.key)
        }
        (None, Some(_)) => package.verify_developer_self_consistent(),
    };
    if let Err(e) = result {
        let code = match &e {
            Error::Signature(SignatureError::DigestMismatch { .. }) => "signature_digest_mismatch",
            _ => "signature_invalid",
        };
        report.error(code, e.to_string());
    }
}
