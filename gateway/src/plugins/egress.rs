//! The sandbox's only door: outbound `wasi:http`, checked against the
//! connector's `allowed_hosts` and sent through the gateway's pooled client.
//! One call may make a bounded number of requests, a few at a time: a plugin
//! that loops on requests costs one failed attempt, not the gateway's sockets.

use super::limits::CallLimits;
use super::scope::Scope;
use crate::origin::Origin;
use crate::outbound::OutboundClient;
use http_body_util::{BodyExt, Full, Limited};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// One call's view of the door: which origins it may reach, how many
/// requests it has left, and why one was refused, so the attempt's reason
/// can say.
pub struct Egress {
    scope: Arc<Scope>,
    client: OutboundClient,
    max_response_bytes: u64,
    requests_left: u32,
    max_in_flight: u32,
    in_flight: Arc<AtomicU32>,
    refused: Option<String>,
}

/// Counts a request as open until its response headers arrive (or it fails).
struct Open(Arc<AtomicU32>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Egress {
    pub fn new(scope: Arc<Scope>, client: OutboundClient, limits: &CallLimits) -> Self {
        Egress {
            scope,
            client,
            max_response_bytes: limits.max_response_bytes,
            requests_left: limits.max_requests,
            max_in_flight: limits.max_requests_in_flight,
            in_flight: Arc::default(),
            refused: None,
        }
    }

    /// Why a request was refused during this call, if one was.
    pub fn refused(&self) -> Option<String> {
        self.refused.clone()
    }

    fn refuse(&mut self, why: String) -> Sending {
        tracing::warn!(connector = %self.scope.name, "outbound request refused: {why}");
        self.refused = Some(why);
        Box::new(async { Err(HttpError::HttpRequestDenied) })
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
/// What `send_request` hands back: the response to come.
type Sending =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Sending {
        if let Err(origin) = self.check(request.uri()) {
            return self.refuse(format!(
                "outbound request to {origin} denied: not in allowed_hosts"
            ));
        }
        if self.requests_left == 0 {
            return self.refuse(
                "more outbound requests than plugins.max_requests_per_call allows in one call"
                    .to_owned(),
            );
        }
        if self.in_flight.load(Ordering::Relaxed) >= self.max_in_flight {
            return self.refuse(format!(
                "more than plugins.max_requests_in_flight = {} outbound requests open at once",
                self.max_in_flight
            ));
        }
        self.requests_left -= 1;
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let open = Open(self.in_flight.clone());
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
            drop(open);
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
