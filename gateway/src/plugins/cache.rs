//! Compiled components on disk, so a restart costs a file read, not a compile.
//!
//! Entries are keyed by the plugin's content hash and the engine's
//! compatibility hash: a new plugin build or a new wasmtime never loads a
//! stale artifact.

use sha2::{Digest, Sha256};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The compiled component for `wasm`, from the cache when possible.
pub fn compile(engine: &Engine, wasm: &[u8], cache_dir: &Path) -> anyhow::Result<Component> {
    let path = entry_path(engine, wasm, cache_dir);
    if path.exists() {
        // SAFETY: the file was written by `Component::serialize` of this
        // engine configuration (its compatibility hash is in the name), in a
        // directory the gateway owns; wasmtime still checks its header.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring unusable cached component: {e}")
            }
        }
    }
    let component = Component::new(engine, wasm).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Err(e) = store(&component, &path) {
        tracing::warn!(path = %path.display(), "cannot cache compiled component: {e:#}");
    }
    Ok(component)
}

fn entry_path(engine: &Engine, wasm: &[u8], cache_dir: &Path) -> PathBuf {
    let mut engine_hash = DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let content = Sha256::digest(wasm);
    let content: String = content
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    cache_dir.join(format!("{content}-{:016x}.cwasm", engine_hash.finish()))
}

/// Write atomically: a crash mid-write must not leave a truncated entry.
fn store(component: &Component, path: &Path) -> anyhow::Result<()> {
    let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
