//! The one outbound HTTP client: connectors' provider requests (through the
//! sandbox's egress gate) and status callbacks to platforms share it, and
//! with it one connection pool.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Keeps provider connections open across calls and plugins: a fresh TCP and
/// TLS handshake per message would cost more than the sandbox itself.
#[derive(Clone)]
pub struct OutboundClient {
    client: Client<Connector, Full<Bytes>>,
}

impl Default for OutboundClient {
    fn default() -> Self {
        Self::new()
    }
}

impl OutboundClient {
    pub fn new() -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(https);
        OutboundClient { client }
    }

    /// Start one request; the caller reads (and bounds) the body.
    pub fn request(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> hyper_util::client::legacy::ResponseFuture {
        self.client.request(request)
    }

    /// Send one request outside any sandbox and read the whole response:
    /// the baseline `make bench` compares plugin calls with.
    pub async fn send(&self, request: http::Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
        let response = self.client.request(request).await?;
        let status = response.status().as_u16();
        Ok((status, response.into_body().collect().await?.to_bytes()))
    }
}
