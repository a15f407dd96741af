//! The sandbox's only door: outbound `wasi:http`, checked against the
//! connector's `allowed_hosts` and sent through one pooled client.

use super::sandbox::Scope;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Keeps provider connections open across calls and plugins: a fresh TCP and
/// TLS handshake per message would cost more than the sandbox itself.
#[derive(Clone)]
pub struct ProviderClient {
    client: Client<Connector, Full<Bytes>>,
}

impl Default for ProviderClient {
    fn default() -> Self {
        Self::new()
    }
}

impl ProviderClient {
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
        ProviderClient { client }
    }

    /// Send one request outside any sandbox and read the whole response:
    /// the baseline `make bench` compares plugin calls with.
    pub async fn send(&self, request: http::Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)> {
        let response = self.client.request(request).await?;
        let status = response.status().as_u16();
        Ok((status, response.into_body().collect().await?.to_bytes()))
    }
}

/// One call's view of the door: which origins it may reach, and which one it
/// was refused, so the attempt's reason can name it.
pub struct Egress {
    scope: Arc<Scope>,
    client: ProviderClient,
    max_response_bytes: u64,
    denied: Option<String>,
}

impl Egress {
    pub fn new(scope: Arc<Scope>, client: ProviderClient, max_response_bytes: u64) -> Self {
        Egress {
            scope,
            client,
            max_response_bytes,
            denied: None,
        }
    }

    /// The origin of a request refused during this call.
    pub fn denied(&self) -> Option<String> {
        self.denied.clone()
    }

    /// The request's origin when `allowed_hosts` permits it, from the parsed
    /// URI (never the Host header); otherwise the refused origin.
    fn check(&self, uri: &http::Uri) -> Result<(), String> {
        let scheme = uri.scheme_str().unwrap_or("https");
        let host = uri.host().unwrap_or("");
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        if self
            .scope
            .allowed_hosts
            .iter()
            .any(|allowed| allowed.permits(scheme, host, port))
        {
            Ok(())
        } else {
            Err(format!("{scheme}://{host}:{port}"))
        }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>
    {
        if let Err(origin) = self.check(request.uri()) {
            tracing::warn!(connector = %self.scope.name, %origin, "outbound request denied: not in allowed_hosts");
            self.denied = Some(origin);
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let client = self.client.client.clone();
        let max_response = usize::try_from(self.max_response_bytes).unwrap_or(usize::MAX);
        let first_byte = options.and_then(|o| o.first_byte_timeout);
        Box::new(async move {
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|_| HttpError::HttpRequestBodySize(None))?
                .to_bytes();
            let sending = client.request(http::Request::from_parts(parts, Full::new(body)));
            let response = match first_byte {
                Some(limit) => tokio::time::timeout(limit, sending)
                    .await
                    .map_err(|_| HttpError::ConnectionReadTimeout)?,
                None => sending.await,
            }
            .map_err(|e| classify(&e))?;
            let response = response.map(|body| {
                Limited::new(body, max_response)
                    .map_err(|e| {
                        if e.is::<http_body_util::LengthLimitError>() {
                            HttpError::HttpResponseBodySize(None)
                        } else {
                            HttpError::HttpResponseIncomplete
                        }
                    })
                    .boxed_unsync()
            });
            let io: IoFuture = Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

fn classify(error: &hyper_util::client::legacy::Error) -> HttpError {
    if error.is_connect() {
        HttpError::ConnectionRefused
    } else {
        HttpError::HttpProtocolError
    }
}
