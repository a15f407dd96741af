//! What a plugin file is when it is not a component, said the way its
//! author can act on: wasmtime's own parse errors ("input bytes aren't
//! valid utf-8" for an rlib, "expected `(`" for junk, "failed to parse" for
//! a core module) name the symptom, not the build mistake behind it.

/// A WebAssembly binary's first four bytes.
const WASM_MAGIC: &[u8] = b"\0asm";
/// After the magic: a core module's version 1, and a component's layer.
const CORE_MODULE: [u8; 4] = [1, 0, 0, 0];
const COMPONENT: [u8; 4] = [0x0d, 0, 1, 0];

/// Why `bytes` cannot be a connector, and what to do; `None` when they may
/// be one (a component, binary or text) and compiling will tell.
pub fn not_a_component(bytes: &[u8]) -> Option<String> {
    const BUILD: &str = "build the connector with crate-type = [\"cdylib\"] \
                         and cargo build --release --target wasm32-wasip2";
    if bytes.starts_with(WASM_MAGIC) {
        return match bytes.get(4..8) {
            Some(v) if v == COMPONENT => None,
            Some(v) if v == CORE_MODULE => Some(format!(
                "not a component but a core WebAssembly module (what wasm32-unknown-unknown \
                 and wasm32-wasip1 build): {BUILD}"
            )),
            _ => Some("a WebAssembly file of an unknown version: not a component".to_owned()),
        };
    }
    if bytes.starts_with(b"!<arch>\n") {
        return Some(format!(
            "not a component but a Rust library archive (an rlib, or a staticlib): {BUILD} \
             (without cdylib, cargo writes no .wasm)"
        ));
    }
    if bytes.starts_with(b"\x7fELF") || bytes.starts_with(b"MZ") || bytes.starts_with(b"\xcf\xfa") {
        return Some(format!(
            "not a component but a native program or library: {BUILD}"
        ));
    }
    let neither = || {
        Some(format!(
            "not a WebAssembly component (neither binary nor text): {BUILD}"
        ))
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return neither();
    };
    let first = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with(";;"))
        .unwrap_or("");
    if first.starts_with("(component") {
        return None;
    }
    if first.starts_with("(module") {
        return Some(format!(
            "not a component but a core module in text form: wrap it in (component ...), or {BUILD}"
        ));
    }
    neither()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_wrong_file_says_what_to_build() {
        let core = [b"\0asm".as_slice(), &[1, 0, 0, 0]].concat();
        assert!(
            not_a_component(&core)
                .unwrap()
                .contains("core WebAssembly module")
        );
        let component = [b"\0asm".as_slice(), &[0x0d, 0, 1, 0]].concat();
        assert_eq!(not_a_component(&component), None);
        let rlib = b"!<arch>\n/               0           0     0     0       8";
        assert!(
            not_a_component(rlib)
                .unwrap()
                .contains("crate-type = [\"cdylib\"]")
        );
        assert!(
            not_a_component(b"\x7fELF\x02\x01")
                .unwrap()
                .contains("native")
        );
        assert!(
            not_a_component(b"hello")
                .unwrap()
                .contains("neither binary nor text")
        );
        assert!(
            not_a_component(&[0xff, 0xfe, 0x00])
                .unwrap()
                .contains("neither")
        );
        assert_eq!(not_a_component(b";; a fixture\n(component)"), None);
        assert!(
            not_a_component(b"(module)")
                .unwrap()
                .contains("core module in text")
        );
    }
}
