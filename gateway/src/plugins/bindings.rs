//! The current contract, 0.4.0, as generated host bindings: what the
//! host implements and calls ([`contract`](super::contract)) and what older
//! contracts are adapted to ([`legacy`](super::legacy)).

wasmtime::component::bindgen!({
    path: "../plugin-sdk/wit/0.4.0",
    world: "crossgate:connector/connector",
    imports: {
        "crossgate:connector/host.cache-get": async,
        "crossgate:connector/outbound.send-request": async,
    },
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});

pub use self::crossgate::connector as current;
