//! The WIT a plugin in any language targets, generated from its manifest.
//!
//! `wit/plugin.wit` declares every capability; a component built against its `plugin` world
//! imports all of them, and validation refuses a capability the manifest does not ask for.
//! Language toolchains (componentize-py, componentize-js) import everything in the world they
//! are given, so a plugin must be built against a world with exactly its granted capabilities.
//! [`PluginWit::for_permissions`] writes that world, so no author writes one by hand:
//!
//! ```text
//! wit/
//!   world.wit                package plinth:app: worlds plugin, lifecycle-plugin, http-plugin
//!   deps/plinth-plugin.wit   plinth:plugin@0.1.0 (wit/plugin.wit of this platform)
//!   deps/<wasi>.wit          the WASI 0.2 packages it uses
//! ```
//!
//! ```
//! use plinth_package::{Manifest, PluginWit};
//! let manifest = Manifest::parse(
//!     "[plugin]\nid = \"acme.count\"\nversion = \"0.1.0\"\nname = \"Count\"\n\
//!      description = \"Counts.\"\nlicense = \"MIT\"\napi = \"^0.1\"\n\
//!      [permissions]\nkv = { max-bytes = 1024 }\n",
//! )?;
//! let wit = PluginWit::for_permissions(&manifest.permissions);
//! let world = &wit.files()[0].1;
//! assert!(world.contains("import plinth:plugin/kv@0.1.0;"));
//! assert!(!world.contains("outgoing-handler"));
//! # Ok::<(), plinth_package::Error>(())
//! ```

use std::fmt::Write as _;

use crate::permissions::Permissions;

/// The worlds of the generated `world.wit`, from fewest exports to most.
pub const WORLDS: [&str; 3] = ["plugin", "lifecycle-plugin", "http-plugin"];

/// The world a language build targets when `[build].world` names none: the handler and the
/// lifecycle hooks (the SDKs give every hook a default).
pub const DEFAULT_WORLD: &str = "lifecycle-plugin";

/// `wit/plugin.wit` of this platform, placed under `deps/` of a generated tree.
const PLINTH_PLUGIN: &str = include_str!("../../wit/plugin.wit");

/// The WASI packages `plinth:plugin` and the language runtimes use, by file name.
const WASI_DEPS: [(&str, &str); 7] = [
    ("cli.wit", include_str!("../../wit/deps/cli.wit")),
    ("clocks.wit", include_str!("../../wit/deps/clocks.wit")),
    (
        "filesystem.wit",
        include_str!("../../wit/deps/filesystem.wit"),
    ),
    ("http.wit", include_str!("../../wit/deps/http.wit")),
    ("io.wit", include_str!("../../wit/deps/io.wit")),
    ("random.wit", include_str!("../../wit/deps/random.wit")),
    ("sockets.wit", include_str!("../../wit/deps/sockets.wit")),
];

/// One capability the generated world may import, with the interface it names.
struct Import {
    /// The name the build tools see (`PLINTH_CAPABILITIES`).
    capability: &'static str,
    /// The WIT interface imported.
    interface: &'static str,
}

/// Every capability, in the order the world lists them.
const IMPORTS: [Import; 5] = [
    Import {
        capability: "log",
        interface: "plinth:plugin/log@0.1.0",
    },
    Import {
        capability: "kv",
        interface: "plinth:plugin/kv@0.1.0",
    },
    Import {
        capability: "config",
        interface: "plinth:plugin/config@0.1.0",
    },
    Import {
        capability: "events",
        interface: "plinth:plugin/events@0.1.0",
    },
    Import {
        capability: "http",
        interface: "wasi:http/outgoing-handler@0.2.12",
    },
];

/// The WIT tree of one plugin: its world, importing exactly the capabilities its
/// permissions grant, and the packages that world depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginWit {
    capabilities: Vec<&'static str>,
}

impl PluginWit {
    /// The tree for a plugin with `permissions`.
    pub fn for_permissions(permissions: &Permissions) -> PluginWit {
        let emits = permissions
            .events
            .as_ref()
            .is_some_and(|e| !e.emit.is_empty());
        let capabilities = IMPORTS
            .iter()
            .filter(|import| match import.capability {
                "kv" => permissions.kv.is_some(),
                "config" => permissions.config,
                "events" => emits,
                "http" => permissions.http.is_some(),
                _ => true,
            })
            .map(|import| import.capability)
            .collect();
        PluginWit { capabilities }
    }

    /// The capabilities the world imports, e.g. `["log", "kv"]` (`log` always).
    pub fn capabilities(&self) -> &[&'static str] {
        &self.capabilities
    }

    /// The tree's files: `(path relative to the wit directory, contents)`, `world.wit` first.
    pub fn files(&self) -> Vec<(String, String)> {
        let mut files = vec![
            ("world.wit".to_owned(), self.world()),
            (
                "deps/plinth-plugin.wit".to_owned(),
                PLINTH_PLUGIN.to_owned(),
            ),
        ];
        files.extend(
            WASI_DEPS
                .iter()
                .map(|(name, text)| (format!("deps/{name}"), (*text).to_owned())),
        );
        files
    }

    /// `world.wit`: package `plinth:app` with the three worlds of [`WORLDS`].
    fn world(&self) -> String {
        let mut text = String::from(
            "// Generated by `plinth plugin wit` from plinth.toml's [permissions]: the world imports\n\
             // exactly the capabilities the manifest asks for. Do not edit; regenerate instead.\n\
             package plinth:app;\n\n\
             /// Handles events; imports only the granted capabilities.\n\
             world plugin {\n",
        );
        for import in IMPORTS
            .iter()
            .filter(|import| self.capabilities.contains(&import.capability))
        {
            // Writing to a String cannot fail.
            let _ = writeln!(text, "    import {};", import.interface);
        }
        text.push_str(
            "    export plinth:plugin/handler@0.1.0;\n}\n\n\
             /// `plugin` with the install, upgrade and uninstall hooks.\n\
             world lifecycle-plugin {\n    include plugin;\n    export plinth:plugin/lifecycle@0.1.0;\n}\n\n\
             /// `lifecycle-plugin` that also serves HTTP under /p/{tenant}/{plugin}/.\n\
             world http-plugin {\n    include lifecycle-plugin;\n    export wasi:http/incoming-handler@0.2.12;\n}\n",
        );
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::{EventsPermission, HttpPermission, KvPermission};

    #[test]
    fn the_world_imports_exactly_what_is_granted() {
        let bare = PluginWit::for_permissions(&Permissions::default());
        assert_eq!(bare.capabilities(), ["log"]);
        let world = &bare.files()[0].1;
        assert!(world.contains("import plinth:plugin/log@0.1.0;"));
        for absent in ["kv@", "config@", "events@", "outgoing-handler"] {
            assert!(!world.contains(absent), "{absent} in {world}");
        }

        let all = Permissions {
            kv: Some(KvPermission {
                max_bytes: 10,
                max_keys: None,
            }),
            http: Some(HttpPermission {
                hosts: vec!["api.example.com".parse().expect("host")],
            }),
            events: Some(EventsPermission {
                subscribe: vec![],
                emit: vec!["order.paid".parse().expect("topic")],
            }),
            config: true,
            schedules: vec![],
        };
        let wit = PluginWit::for_permissions(&all);
        assert_eq!(
            wit.capabilities(),
            ["log", "kv", "config", "events", "http"]
        );
        let world = &wit.files()[0].1;
        assert!(world.contains("import wasi:http/outgoing-handler@0.2.12;"));
        assert!(world.contains("import plinth:plugin/events@0.1.0;"));
    }

    #[test]
    fn subscribing_alone_does_not_import_events() {
        let permissions = Permissions {
            events: Some(EventsPermission {
                subscribe: vec!["count".parse().expect("topic")],
                emit: vec![],
            }),
            ..Permissions::default()
        };
        assert_eq!(
            PluginWit::for_permissions(&permissions).capabilities(),
            ["log"]
        );
    }

    #[test]
    fn the_tree_carries_every_dependency_and_all_worlds() {
        let files = PluginWit::for_permissions(&Permissions::default()).files();
        let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names[0], "world.wit");
        assert!(names.contains(&"deps/plinth-plugin.wit"));
        assert!(names.contains(&"deps/http.wit"));
        assert!(names.contains(&"deps/sockets.wit"));
        for world in WORLDS {
            assert!(files[0].1.contains(&format!("world {world} {{")), "{world}");
        }
    }

    #[test]
    fn every_world_resolves_with_its_dependencies() {
        let permissions: Permissions = toml::from_str(
            "kv = { max-bytes = 100 }\nconfig = true\nhttp = { hosts = [\"a.example\"] }\n\
             events = { emit = [\"x\"] }\n",
        )
        .expect("permissions");
        for wit in [
            PluginWit::for_permissions(&Permissions::default()),
            PluginWit::for_permissions(&permissions),
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            for (name, text) in wit.files() {
                let path = dir.path().join(name);
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(path, text).expect("write");
            }
            let mut resolve = wit_parser::Resolve::new();
            let (package, _) = resolve.push_dir(dir.path()).expect("the tree resolves");
            for world in WORLDS {
                let id = resolve
                    .select_world(&[package], Some(world))
                    .expect("the world exists");
                let imports = resolve.worlds[id]
                    .imports
                    .keys()
                    .filter_map(|key| match key {
                        wit_parser::WorldKey::Interface(id) => resolve.id_of(*id),
                        wit_parser::WorldKey::Name(name) => Some(name.clone()),
                    })
                    .filter(|name| !name.starts_with("plinth:plugin/types"))
                    .filter(|name| name.starts_with("plinth:") || name.contains("outgoing"))
                    .count();
                assert_eq!(imports, wit.capabilities().len(), "{world}");
            }
        }
    }
}
