//! A small blocking HTTP client over `wasi:http`.
//!
//! Inside the sandbox every request goes through the host, which checks it
//! against the connector's `allowed_hosts` and pools connections. Natively
//! (unit tests) requests are answered by [`crate::testing`]'s script.

pub(crate) mod message;

pub use message::{HttpError, Request, Response};

impl Request {
    /// Send the request and wait for the whole response.
    pub fn send(self) -> Result<Response, HttpError> {
        #[cfg(target_arch = "wasm32")]
        return crate::guest::send_http(self);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::send_http(self);
    }
}
