//! The sandbox's only door: outbound `wasi:http`, checked against the
//! connector's `allowed_hosts` and sent through the gateway's pooled client.

use super::scope::Scope;
use crate::origin::Origin;
use crate::outbound::OutboundClient;
use http_body_util::{BodyExt, Full, Limited};
use std::sync::Arc;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// One call's view of the door: which origins it may reach, and which one it
/// was refused, so the attempt's reason can name it.
pub struct Egress {
    scope: Arc<Scope>,
    client: OutboundClient,
    max_response_bytes: u64,
    denied: Option<String>,
}

impl Egress {
    pub fn new(scope: Arc<Scope>, client: OutboundClient, max_response_bytes: u64) -> Self {
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

    /// Whether `allowed_hosts` lists the request's origin, read from the
    /// parsed URI (never the Host header); otherwise what was refused.
    fn check(&self, uri: &http::Uri) -> Result<(), String> {
        let origin = Origin::of(uri).map_err(|e| format!("{uri} ({e})"))?;
        if self.scope.allowed_hosts.contains(&origin) {
            Ok(())
        } else {
            Err(origin.to_string())
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
        let client = self.client.clone();
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
