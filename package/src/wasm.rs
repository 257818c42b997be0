//! Inspecting `plugin.wasm`: is it a valid component, and what does it import and export?

use serde::{Deserialize, Serialize};
use wasmparser::{Encoding, Parser, Payload, Validator, WasmFeatures};

use crate::error::{Error, WasmError};

/// The top-level imports and exports of a component, by name (e.g.
/// `wasi:http/outgoing-handler@0.2.12`, `plinth:plugin/handler@0.1.0`), in binary order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentInfo {
    /// Names of the component's top-level imports.
    pub imports: Vec<String>,
    /// Names of the component's top-level exports.
    pub exports: Vec<String>,
}

/// Validates `wasm` as a WebAssembly component (component model features on) and lists its
/// top-level imports and exports.
///
/// ```
/// use plinth_package::{Error, WasmError, wasm};
/// let core_module = b"\0asm\x01\0\0\0";
/// assert!(matches!(wasm::inspect(core_module), Err(Error::Wasm(WasmError::CoreModule))));
/// let empty_component = b"\0asm\x0d\0\x01\0";
/// assert_eq!(wasm::inspect(empty_component)?.imports.len(), 0);
/// # Ok::<(), plinth_package::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Wasm`]: [`WasmError::CoreModule`] for a core module, [`WasmError::Invalid`] for
/// anything that is not a valid component.
pub fn inspect(wasm: &[u8]) -> Result<ComponentInfo, Error> {
    Ok(inspect_inner(wasm)?)
}

fn inspect_inner(wasm: &[u8]) -> Result<ComponentInfo, WasmError> {
    if Parser::is_core_wasm(wasm) {
        return Err(WasmError::CoreModule);
    }
    if !Parser::is_component(wasm) {
        return Err(WasmError::Invalid(
            "the file does not start with the WebAssembly component header".into(),
        ));
    }
    Validator::new_with_features(WasmFeatures::default())
        .validate_all(wasm)
        .map_err(|e| WasmError::Invalid(e.to_string()))?;

    let mut info = ComponentInfo::default();
    // Nested modules and components each start with a `Version` and end with an `End`;
    // only the outermost component's imports and exports are the component's own.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| WasmError::Invalid(e.to_string()))? {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != Encoding::Component {
                    return Err(WasmError::CoreModule);
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|e| WasmError::Invalid(e.to_string()))?;
                    info.imports.push(import.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(|e| WasmError::Invalid(e.to_string()))?;
                    info.exports.push(export.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(info)
}
