//! Inspecting `plugin.wasm`: is it a valid component, and what does it import and export?

use serde::{Deserialize, Serialize};
use wasmparser::{Encoding, Instance, KnownCustom, Parser, Payload, Validator, WasmFeatures};

use crate::error::{Error, WasmError};

/// The top-level imports and exports of a component, by name (e.g.
/// `wasi:http/outgoing-handler@0.2.12`, `plinth:plugin/handler@0.1.0`), in binary order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentInfo {
    /// Names of the component's top-level imports.
    pub imports: Vec<String>,
    /// Names of the component's top-level exports.
    pub exports: Vec<String>,
    /// The toolchains that produced it, from every `producers` section (component and
    /// modules), e.g. `language: Python`, `processed-by: componentize-py 0.25.1`; each once.
    #[serde(default)]
    pub producers: Vec<Producer>,
    /// Core module instantiations in the binary: the pool slots one instance of it takes.
    #[serde(default)]
    pub core_instances: u32,
    /// Bytes of linear memory its modules define at instantiation (initial pages).
    #[serde(default)]
    pub initial_memory_bytes: u64,
}

/// One entry of a `producers` custom section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Producer {
    /// `language`, `processed-by` or `sdk`.
    pub field: String,
    /// The tool or language, e.g. `componentize-py`.
    pub name: String,
    /// Its version, possibly empty.
    pub version: String,
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
            Payload::InstanceSection(reader) => {
                let instantiations = reader
                    .into_iter()
                    .filter(|instance| matches!(instance, Ok(Instance::Instantiate { .. })))
                    .count();
                info.core_instances = info
                    .core_instances
                    .saturating_add(u32::try_from(instantiations).unwrap_or(u32::MAX));
            }
            Payload::MemorySection(reader) => {
                for memory in reader.into_iter().flatten() {
                    let page = 1u64 << memory.page_size_log2.unwrap_or(16);
                    info.initial_memory_bytes = info
                        .initial_memory_bytes
                        .saturating_add(memory.initial.saturating_mul(page));
                }
            }
            Payload::CustomSection(reader) => {
                if let KnownCustom::Producers(producers) = reader.as_known() {
                    add_producers(&mut info.producers, producers);
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

/// Adds the entries of one `producers` section that `list` does not have yet; an entry that
/// does not parse is skipped (the section is informational).
fn add_producers(list: &mut Vec<Producer>, section: wasmparser::ProducersSectionReader<'_>) {
    for field in section.into_iter().flatten() {
        for value in field.values.into_iter().flatten() {
            let producer = Producer {
                field: field.name.to_owned(),
                name: value.name.to_owned(),
                version: value.version.to_owned(),
            };
            if !list.contains(&producer) {
                list.push(producer);
            }
        }
    }
}
