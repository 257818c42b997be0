//! The compiled component cache: hits, misses, and never trusting a bad entry.

use std::fs;

use plinth_host::cache::{CacheOutcome, CompiledCache};
use plinth_test_artifacts::{COUNTER, HELLO};
use wasmtime::Engine;
use wasmtime::component::Component;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const HANDLER: &str = "plinth:plugin/handler@0.1.0";

fn engine() -> Result<Engine, wasmtime::Error> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    Engine::new(&config)
}

fn hello() -> std::io::Result<Vec<u8>> {
    fs::read(HELLO.wasm)
}

/// The names of a component's imports and exports, to compare two components.
fn signature(engine: &Engine, component: &Component) -> (Vec<String>, Vec<String>) {
    let ty = component.component_type();
    let imports = ty
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let exports = ty
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    (imports, exports)
}

/// Asserts `component` is the hello plugin: the same imports and exports as compiling it fresh.
fn assert_is_hello(engine: &Engine, component: &Component) -> TestResult {
    let fresh = Component::new(engine, hello()?)?;
    let (imports, exports) = signature(engine, component);
    assert!(exports.iter().any(|e| e == HANDLER), "exports: {exports:?}");
    assert_eq!((imports, exports), signature(engine, &fresh));
    Ok(())
}

fn cache() -> Result<(tempfile::TempDir, CompiledCache), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let cache = CompiledCache::new(dir.path().join("compiled"))?;
    Ok((dir, cache))
}

#[test]
fn first_load_compiles_second_hits() -> TestResult {
    let (_dir, cache) = cache()?;
    assert!(cache.dir().is_dir(), "new creates the directory");
    let engine = engine()?;
    let wasm = hello()?;

    let (component, outcome) = cache.load_or_compile(&engine, &wasm)?;
    assert_eq!(outcome, CacheOutcome::Compiled);
    assert_is_hello(&engine, &component)?;
    assert!(cache.entry_path(&engine, &wasm).is_file());

    let (component, outcome) = cache.load_or_compile(&engine, &wasm)?;
    assert_eq!(outcome, CacheOutcome::Hit);
    assert_is_hello(&engine, &component)?;

    // Only the entry is left in the directory: no temporary files.
    let files: Vec<_> = fs::read_dir(cache.dir())?.collect::<Result<_, _>>()?;
    assert_eq!(files.len(), 1, "{files:?}");
    Ok(())
}

#[test]
fn a_new_cache_on_the_same_directory_hits() -> TestResult {
    let (dir, cache) = cache()?;
    let engine = engine()?;
    let wasm = hello()?;
    cache.load_or_compile(&engine, &wasm)?;

    // Another process: a new engine with the same configuration and a new cache value.
    let again = CompiledCache::new(dir.path().join("compiled"))?;
    let (component, outcome) = again.load_or_compile(&self::engine()?, &wasm)?;
    assert_eq!(outcome, CacheOutcome::Hit);
    assert_is_hello(&engine, &component)?;
    Ok(())
}

#[test]
fn a_flipped_byte_is_recompiled_and_the_entry_replaced() -> TestResult {
    let (_dir, cache) = cache()?;
    let engine = engine()?;
    let wasm = hello()?;
    cache.load_or_compile(&engine, &wasm)?;
    let path = cache.entry_path(&engine, &wasm);
    let original = fs::read(&path)?;

    // Flip a byte in the header, in the middle of the payload and the last byte.
    for at in [20, original.len() / 2, original.len() - 1] {
        let mut corrupt = original.clone();
        corrupt[at] ^= 0x40;
        fs::write(&path, &corrupt)?;

        let (component, outcome) = cache.load_or_compile(&engine, &wasm)?;
        assert_eq!(outcome, CacheOutcome::Recompiled, "byte {at} flipped");
        assert_is_hello(&engine, &component)?;
        assert_eq!(fs::read(&path)?, original, "the entry is rewritten");

        let (_, outcome) = cache.load_or_compile(&engine, &wasm)?;
        assert_eq!(outcome, CacheOutcome::Hit);
    }
    Ok(())
}

#[test]
fn a_truncated_entry_is_recompiled() -> TestResult {
    let (_dir, cache) = cache()?;
    let engine = engine()?;
    let wasm = hello()?;
    cache.load_or_compile(&engine, &wasm)?;
    let path = cache.entry_path(&engine, &wasm);
    let original = fs::read(&path)?;

    for len in [0, 5, 100, original.len() - 1] {
        fs::write(&path, &original[..len])?;
        let (component, outcome) = cache.load_or_compile(&engine, &wasm)?;
        assert_eq!(
            outcome,
            CacheOutcome::Recompiled,
            "truncated to {len} bytes"
        );
        assert_is_hello(&engine, &component)?;
        assert_eq!(fs::read(&path)?, original);
    }
    Ok(())
}

#[test]
fn a_different_engine_configuration_uses_another_entry() -> TestResult {
    let (_dir, cache) = cache()?;
    let plain = engine()?;
    let fuel = {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true).consume_fuel(true);
        Engine::new(&config)?
    };
    let wasm = hello()?;
    assert_ne!(
        cache.entry_path(&plain, &wasm),
        cache.entry_path(&fuel, &wasm)
    );

    assert_eq!(
        cache.load_or_compile(&plain, &wasm)?.1,
        CacheOutcome::Compiled
    );
    let (component, outcome) = cache.load_or_compile(&fuel, &wasm)?;
    assert_eq!(outcome, CacheOutcome::Compiled);
    assert_is_hello(&fuel, &component)?;
    assert_eq!(cache.load_or_compile(&plain, &wasm)?.1, CacheOutcome::Hit);
    assert_eq!(cache.load_or_compile(&fuel, &wasm)?.1, CacheOutcome::Hit);
    assert_eq!(fs::read_dir(cache.dir())?.count(), 2);
    Ok(())
}

#[test]
fn different_components_use_different_entries() -> TestResult {
    let (_dir, cache) = cache()?;
    let engine = engine()?;
    let hello = hello()?;
    let counter = fs::read(COUNTER.wasm)?;
    assert_ne!(
        cache.entry_path(&engine, &hello),
        cache.entry_path(&engine, &counter)
    );
    assert_eq!(
        cache.load_or_compile(&engine, &hello)?.1,
        CacheOutcome::Compiled
    );
    assert_eq!(
        cache.load_or_compile(&engine, &counter)?.1,
        CacheOutcome::Compiled
    );
    assert_eq!(cache.load_or_compile(&engine, &hello)?.1, CacheOutcome::Hit);
    Ok(())
}

#[test]
fn a_foreign_precompiled_component_is_not_deserialised() -> TestResult {
    // A perfectly valid wasmtime artifact, but not one of our entries: another component,
    // precompiled by this very engine, without our header. Deserialising it would run the
    // counter's code where the hello plugin was asked for.
    let (_dir, cache) = cache()?;
    let engine = engine()?;
    let wasm = hello()?;
    let path = cache.entry_path(&engine, &wasm);
    let counter = engine.precompile_component(&fs::read(COUNTER.wasm)?)?;
    fs::write(&path, &counter)?;

    let (component, outcome) = cache.load_or_compile(&engine, &wasm)?;
    assert_eq!(outcome, CacheOutcome::Recompiled);
    assert_is_hello(&engine, &component)?;
    assert_eq!(cache.load_or_compile(&engine, &wasm)?.1, CacheOutcome::Hit);
    Ok(())
}

#[test]
fn another_components_entry_copied_to_the_path_is_not_deserialised() -> TestResult {
    // A valid entry with a valid checksum, for the counter plugin, renamed to hello's entry.
    let (_dir, cache) = cache()?;
    let engine = engine()?;
    let wasm = hello()?;
    let counter = fs::read(COUNTER.wasm)?;
    cache.load_or_compile(&engine, &counter)?;
    fs::copy(
        cache.entry_path(&engine, &counter),
        cache.entry_path(&engine, &wasm),
    )?;

    let (component, outcome) = cache.load_or_compile(&engine, &wasm)?;
    assert_eq!(outcome, CacheOutcome::Recompiled);
    assert_is_hello(&engine, &component)?;
    Ok(())
}

#[test]
fn garbage_at_the_entry_path_is_not_deserialised() -> TestResult {
    let (_dir, cache) = cache()?;
    let engine = engine()?;
    let wasm = hello()?;
    let path = cache.entry_path(&engine, &wasm);
    fs::write(
        &path,
        b"#!/bin/sh\necho not a compiled component\n".repeat(20),
    )?;

    let (component, outcome) = cache.load_or_compile(&engine, &wasm)?;
    assert_eq!(outcome, CacheOutcome::Recompiled);
    assert_is_hello(&engine, &component)?;
    Ok(())
}

#[test]
fn invalid_wasm_is_a_compile_error_and_writes_nothing() -> TestResult {
    let (_dir, cache) = cache()?;
    let engine = engine()?;
    let result = cache.load_or_compile(&engine, b"not wasm at all");
    assert!(
        matches!(result, Err(plinth_host::cache::CacheError::Compile(_))),
        "{result:?}"
    );
    assert_eq!(fs::read_dir(cache.dir())?.count(), 0);
    Ok(())
}

#[test]
fn concurrent_loads_of_one_component_are_safe() -> TestResult {
    let (_dir, cache) = cache()?;
    let engine = engine()?;
    let wasm = hello()?;
    let outcomes = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| cache.load_or_compile(&engine, &wasm).map(|(_, o)| o)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "a loading thread panicked"))
            .collect::<Result<Vec<_>, _>>()
    })?;
    for outcome in outcomes {
        assert!(matches!(
            outcome?,
            CacheOutcome::Compiled | CacheOutcome::Hit
        ));
    }
    // One valid entry and no leftover temporary files.
    assert_eq!(fs::read_dir(cache.dir())?.count(), 1);
    assert_eq!(cache.load_or_compile(&engine, &wasm)?.1, CacheOutcome::Hit);
    Ok(())
}
