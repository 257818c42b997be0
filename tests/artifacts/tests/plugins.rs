//! Every built guest is a component next to a manifest.

use std::path::Path;

use plinth_test_artifacts::{ALL, PLUGINS_TARGET_DIR};

/// `\0asm`, then version 0x0d and layer 1: the component-model preamble.
const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

#[test]
fn every_plugin_is_a_component_with_a_manifest() -> std::io::Result<()> {
    // Every plugin crate in plugins/ has a constant, and nothing else does.
    let plugins_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
    let mut on_disk: Vec<String> = std::fs::read_dir(&plugins_dir)?
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("plinth.toml").is_file())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    on_disk.sort();
    let mut built: Vec<String> = ALL.iter().map(|plugin| plugin.name.to_string()).collect();
    built.sort();
    assert_eq!(built, on_disk);
    for plugin in ALL {
        let wasm = std::fs::read(plugin.wasm)?;
        assert!(
            wasm.len() > COMPONENT_PREAMBLE.len(),
            "{} is empty",
            plugin.wasm
        );
        assert_eq!(
            wasm[..COMPONENT_PREAMBLE.len()],
            COMPONENT_PREAMBLE,
            "{} is not a component",
            plugin.wasm
        );
        assert!(
            Path::new(plugin.dir).join("plinth.toml").is_file(),
            "{} has no plinth.toml",
            plugin.dir
        );
        assert!(Path::new(plugin.dir).is_absolute());
    }
    assert!(Path::new(PLUGINS_TARGET_DIR).is_dir());
    Ok(())
}

#[test]
fn names_are_unique() {
    let mut names: Vec<&str> = ALL.iter().map(|plugin| plugin.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ALL.len());
}
