//! Rules about the component's imports and exports against the manifest.

use super::Report;
use crate::manifest::{Manifest, PLUGIN_API_VERSION};
use crate::wasm::ComponentInfo;

/// `namespace:package/interface@version`, as in `wasi:http/outgoing-handler@0.2.12`.
struct InterfaceName<'a> {
    namespace: &'a str,
    package: &'a str,
    interface: &'a str,
    version: Option<semver::Version>,
}

impl<'a> InterfaceName<'a> {
    fn parse(name: &'a str) -> Option<InterfaceName<'a>> {
        let (path, version) = match name.split_once('@') {
            Some((path, version)) => (path, Some(version.parse().ok()?)),
            None => (name, None),
        };
        let (namespace, rest) = path.split_once(':')?;
        let (package, interface) = rest.split_once('/')?;
        Some(InterfaceName {
            namespace,
            package,
            interface,
            version,
        })
    }

    fn is_wasi(&self) -> bool {
        self.namespace == "wasi"
    }

    fn is_plinth(&self) -> bool {
        self.namespace == "plinth" && self.package == "plugin"
    }
}

/// What the component uses, gathered while checking.
#[derive(Default)]
struct Uses {
    kv: bool,
    config: bool,
    events: bool,
    http: bool,
    handler: bool,
    incoming_http: bool,
}

/// Base WASI packages every plugin may import: linked with nothing behind them (no files,
/// environment or arguments), and `sockets` with every operation denied, because a language's
/// C library imports it whatever the plugin does (componentize-py: seven interfaces).
const BASE_WASI: [&str; 6] = ["io", "clocks", "random", "cli", "filesystem", "sockets"];

pub(super) fn check(manifest: &Manifest, info: &ComponentInfo, report: &mut Report) {
    let mut uses = Uses::default();
    for import in &info.imports {
        check_import(manifest, import, &mut uses, report);
    }
    for export in &info.exports {
        check_export(manifest, export, &mut uses, report);
    }
    let subscriptions = manifest.permissions.subscriptions();
    if !uses.handler {
        let message = if subscriptions.is_empty() {
            "the component does not export plinth:plugin/handler, which every plugin must".into()
        } else {
            let topics: Vec<&str> = subscriptions.iter().map(|t| t.as_str()).collect();
            format!(
                "plinth.toml subscribes to {}, but the component does not export plinth:plugin/handler to receive them",
                topics.join(", ")
            )
        };
        report.error("missing_handler", message);
    }
    if subscriptions.is_empty() && !uses.incoming_http {
        report.warning(
            "never_called",
            "the plugin subscribes to no topics and does not export wasi:http/incoming-handler, so nothing will ever call it",
        );
    }
    check_unused(manifest, &uses, report);
}

fn check_import(manifest: &Manifest, import: &str, uses: &mut Uses, report: &mut Report) {
    let Some(name) = InterfaceName::parse(import) else {
        report.error(
            "unknown_import",
            format!("import {import} is not an interface Plinth provides"),
        );
        return;
    };
    let perms = &manifest.permissions;
    if name.is_wasi() {
        if !check_wasi_version(import, &name, report) {
            return;
        }
        match (name.package, name.interface) {
            (package, _) if BASE_WASI.contains(&package) => {}
            ("http", "types") => {}
            ("http", "outgoing-handler") => {
                uses.http = true;
                if perms.http.is_none() {
                    not_permitted(import, "http", report);
                }
            }
            _ => unknown_import(import, report),
        }
    } else if name.is_plinth() {
        if !check_plinth_version(manifest, import, &name, report) {
            return;
        }
        match name.interface {
            "log" | "types" => {}
            "kv" => {
                uses.kv = true;
                if perms.kv.is_none() {
                    not_permitted(import, "kv", report);
                }
            }
            "config" => {
                uses.config = true;
                if !perms.config {
                    not_permitted(import, "config", report);
                }
            }
            "events" => {
                uses.events = true;
                if perms.events.as_ref().is_none_or(|e| e.emit.is_empty()) {
                    not_permitted(import, "events.emit", report);
                }
            }
            _ => unknown_import(import, report),
        }
    } else {
        unknown_import(import, report);
    }
}

fn check_export(manifest: &Manifest, export: &str, uses: &mut Uses, report: &mut Report) {
    let known = match InterfaceName::parse(export) {
        Some(name) if name.is_plinth() => {
            if !check_plinth_version(manifest, export, &name, report) {
                return;
            }
            match name.interface {
                "handler" => {
                    uses.handler = true;
                    true
                }
                "lifecycle" => true,
                _ => false,
            }
        }
        Some(name)
            if name.is_wasi() && name.package == "http" && name.interface == "incoming-handler" =>
        {
            if !check_wasi_version(export, &name, report) {
                return;
            }
            uses.incoming_http = true;
            true
        }
        _ => false,
    };
    if !known {
        report.warning(
            "unknown_export",
            format!("export {export} is not one Plinth calls; it will be ignored"),
        );
    }
}

fn not_permitted(import: &str, permission: &str, report: &mut Report) {
    report.error(
        "import_not_permitted",
        format!(
            "import {import} needs permission \"{permission}\", which plinth.toml does not declare"
        ),
    );
}

fn unknown_import(import: &str, report: &mut Report) {
    report.error(
        "unknown_import",
        format!("import {import} is not an interface Plinth provides"),
    );
}

/// WASI interfaces must be 0.2.x. Returns whether the version is acceptable.
fn check_wasi_version(item: &str, name: &InterfaceName<'_>, report: &mut Report) -> bool {
    match &name.version {
        Some(v) if v.major == 0 && v.minor == 2 => true,
        _ => {
            report.error(
                "unsupported_wasi_version",
                format!("{item} is not a WASI 0.2.x interface, which is what Plinth provides"),
            );
            false
        }
    }
}

/// `plinth:plugin` interfaces must be 0.1.x and satisfy the manifest's `api` range.
fn check_plinth_version(
    manifest: &Manifest,
    item: &str,
    name: &InterfaceName<'_>,
    report: &mut Report,
) -> bool {
    let api = &manifest.plugin.api;
    let problem = match &name.version {
        None => format!("{item} names no version of plinth:plugin"),
        Some(v)
            if !(v.major == PLUGIN_API_VERSION.major && v.minor == PLUGIN_API_VERSION.minor) =>
        {
            format!(
                "{item} uses plinth:plugin {v}, but this platform provides plinth:plugin {PLUGIN_API_VERSION}"
            )
        }
        Some(v) if !api.matches(v) => {
            format!(
                "{item} uses plinth:plugin {v}, which does not satisfy api = \"{api}\" in plinth.toml"
            )
        }
        Some(_) => return true,
    };
    report.error("incompatible_api_version", problem);
    false
}

fn check_unused(manifest: &Manifest, uses: &Uses, report: &mut Report) {
    let perms = &manifest.permissions;
    let declared_emit = perms.events.as_ref().is_some_and(|e| !e.emit.is_empty());
    let unused = [
        (perms.kv.is_some() && !uses.kv, "kv", "plinth:plugin/kv"),
        (
            perms.config && !uses.config,
            "config",
            "plinth:plugin/config",
        ),
        (
            perms.http.is_some() && !uses.http,
            "http",
            "wasi:http/outgoing-handler",
        ),
        (
            declared_emit && !uses.events,
            "events.emit",
            "plinth:plugin/events",
        ),
    ];
    for (is_unused, permission, interface) in unused {
        if is_unused {
            report.warning(
                "permission_unused",
                format!(
                    "permission \"{permission}\" is declared in plinth.toml, but the component never imports {interface}; remove it so tenants are not asked for it"
                ),
            );
        }
    }
}
