//! Validation of a component against its manifest: any bytes as `plugin.wasm` (the seeds are
//! real components, so mutations keep many of them valid) with a manifest that asks for
//! nothing, one that asks for everything, or one from the input. Validation never fails to
//! answer, answers the same twice, and passes a package only if the wasm is a component that
//! exports the handler and imports no capability the manifest does not declare.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_package::{Package, ValidationContext, validate, wasm};

const NOTHING: &str = "[plugin]\nid = \"acme.fuzz\"\nversion = \"1.0.0\"\nname = \"Fuzz\"\n\
    description = \"Fuzz.\"\nlicense = \"MIT\"\napi = \"^0.1\"\n";

const EVERYTHING: &str = "[plugin]\nid = \"acme.fuzz\"\nversion = \"1.0.0\"\nname = \"Fuzz\"\n\
    description = \"Fuzz.\"\nlicense = \"MIT\"\napi = \"^0.1\"\n\
    [permissions]\nkv = { max-bytes = 1024 }\nhttp = { hosts = [\"example.com\"] }\n\
    events = { subscribe = [\"a.b\"], emit = [\"c.d\"] }\nconfig = true\n";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (manifest, wasm_bytes) = match selector % 3 {
        0 => (NOTHING.to_owned(), rest),
        1 => (EVERYTHING.to_owned(), rest),
        _ => {
            let Some((len, rest)) = rest.split_first_chunk::<2>() else {
                return;
            };
            let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
            let (text, wasm_bytes) = rest.split_at(len);
            let Ok(text) = std::str::from_utf8(text) else {
                return;
            };
            (text.to_owned(), wasm_bytes)
        }
    };
    let Ok(package) = Package::new(manifest, wasm_bytes.to_vec(), None, None) else {
        return;
    };
    let report = validate(&package, &ValidationContext::local());
    assert_eq!(report, validate(&package, &ValidationContext::local()));
    if report.has_errors() {
        return;
    }
    let info = match wasm::inspect(&package.wasm) {
        Ok(info) => info,
        Err(e) => panic!("validation passed wasm that does not inspect: {e}"),
    };
    let permissions = &package.manifest.permissions;
    assert!(
        info.exports
            .iter()
            .any(|e| e.starts_with("plinth:plugin/handler")),
        "passed without a handler: {info:?}"
    );
    for import in &info.imports {
        let interface = import.split('@').next().unwrap_or(import);
        let declared = match interface {
            "plinth:plugin/kv" => permissions.kv.is_some(),
            "plinth:plugin/config" => permissions.config,
            "plinth:plugin/events" => permissions
                .events
                .as_ref()
                .is_some_and(|e| !e.emit.is_empty()),
            "wasi:http/outgoing-handler" => permissions.http.is_some(),
            _ => true,
        };
        assert!(declared, "passed importing {import} without declaring it");
    }
});
