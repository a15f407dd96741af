//! The sandbox's only door: outbound requests, checked against the
//! connector's `allowed_hosts` and sent through the gateway's pooled client,
//! whether they come through `wasi:http` or as one whole request through the
//! contract's `outbound` import ([`Egress::fetch`]). One call may make a
//! bounded number of requests, a few at a time: a plugin that loops on
//! requests costs one failed attempt, not the gateway's sockets.

use super::limits::CallLimits;
use super::scope::{Answer, Exchange, Scope};
use crate::origin::Origin;
use crate::outbound::OutboundClient;
use http_body_util::{BodyExt, Full, Limited};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// One call's view of the door: which origins it may reach, how many
/// requests it has left, and why one was refused, so the attempt's reason
/// can say.
pub struct Egress {
    scope: Arc<Scope>,
    client: OutboundClient,
    max_response_bytes: u64,
    /// How long one whole request may take (`fetch`): less than the call's
    /// own limit, so the connector hears of it and can say so.
    request_timeout: Duration,
    requests_left: u32,
    max_in_flight: u32,
    in_flight: Arc<AtomicU32>,
    refused: Option<String>,
    /// Requests refused this call: the first is logged, the rest counted,
    /// so a plugin looping on refused requests writes one line, not thousands.
    refusals: u32,
    /// A whole request got no answer in `request_timeout`.
    timed_out: Arc<AtomicBool>,
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
            request_timeout: limits.timeout.mul_f64(0.8),
            requests_left: limits.max_requests,
            max_in_flight: limits.max_requests_in_flight,
            in_flight: Arc::default(),
            refused: None,
            refusals: 0,
            timed_out: Arc::default(),
        }
    }

    /// Why a request was refused during this call, if one was.
    pub fn refused(&self) -> Option<String> {
        self.refused.clone()
    }

    /// How long a whole request went unanswered, if one did.
    pub fn timed_out(&self) -> Option<Duration> {
        self.timed_out
            .load(Ordering::Relaxed)
            .then_some(self.request_timeout)
    }

    fn refuse(&mut self, why: String) -> Sending {
        self.note_refusal(why);
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }

    fn note_refusal(&mut self, why: String) {
        self.refusals += 1;
        if self.refusals == 1 {
            tracing::warn!(connector = %self.scope.name, "outbound request refused: {why}");
        }
        self.refused = Some(why);
    }

    /// How many requests were refused after the first (which was logged).
    pub fn unlogged_refusals(&self) -> u32 {
        self.refusals.saturating_sub(1)
    }

    /// Take one request of the call's allowance, or say why not: a method
    /// or header `wasi:http` forbids, an origin not allowed, or too many
    /// requests in the call, or too many at once.
    fn admit<B>(&mut self, request: &http::Request<B>) -> Result<Open, String> {
        forbidden(request)?;
        let uri = request.uri();
        if let Err(origin) = self.check(uri) {
            return Err(format!(
                "outbound request to {origin} denied: not in allowed_hosts"
            ));
        }
        if self.requests_left == 0 {
            return Err(
                "more outbound requests than plugins.max_requests_per_call allows in one call"
                    .to_owned(),
            );
        }
        if self.in_flight.load(Ordering::Relaxed) >= self.max_in_flight {
            return Err(format!(
                "more than plugins.max_requests_in_flight = {} outbound requests open at once",
                self.max_in_flight
            ));
        }
        self.requests_left -= 1;
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(Open(self.in_flight.clone()))
    }

    /// One whole request and its whole answer, under the same checks and
    /// limits as `wasi:http`. The future borrows nothing of the call.
    pub fn fetch(
        &mut self,
        request: Fetch,
    ) -> impl Future<Output = Result<Fetched, FetchError>> + Send + use<> {
        let transcript = self.scope.transcript.clone();
        let shown = transcript.as_ref().map(|_| Exchange {
            method: request.method.clone(),
            url: request.url.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
            answer: Err(String::new()),
        });
        let admitted = Self::build(request).and_then(|request| {
            self.admit(&request)
                .map(|open| (request, open))
                .map_err(FetchError::Denied)
        });
        if let Err(FetchError::Denied(why)) = &admitted {
            self.note_refusal(why.clone());
        }
        let client = self.client.clone();
        let max_response = usize::try_from(self.max_response_bytes).unwrap_or(usize::MAX);
        let timeout = self.request_timeout;
        let timed_out = self.timed_out.clone();
        async move {
            let (request, open) = admitted?;
            let exchange = async {
                let response = client
                    .request(request)
                    .await
                    .map_err(|e| FetchError::Failed(crate::outbound::describe(&e)))?;
                drop(open);
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, max_response)
                    .collect()
                    .await
                    .map_err(|e| {
                        if e.is::<http_body_util::LengthLimitError>() {
                            FetchError::TooLarge
                        } else {
                            FetchError::Failed(format!("reading the answer: {e}"))
                        }
                    })?
                    .to_bytes();
                Ok(Fetched {
                    status: parts.status.as_u16(),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.to_string(),
                                String::from_utf8_lossy(v.as_bytes()).into_owned(),
                            )
                        })
                        .collect(),
                    body: body.to_vec(),
                })
            };
            let fetched = tokio::time::timeout(timeout, exchange).await.map_err(|_| {
                timed_out.store(true, Ordering::Relaxed);
                FetchError::Timeout
            });
            if let (Some(transcript), Some(mut shown)) = (transcript, shown) {
                shown.answer = match &fetched {
                    Ok(Ok(f)) => Ok(Answer {
                        status: f.status,
                        headers: f.headers.clone(),
                        body: f.body.clone(),
                    }),
                    Ok(Err(e)) | Err(e) => Err(e.to_string()),
                };
                transcript
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(shown);
            }
            fetched?
        }
    }

    fn build(request: Fetch) -> Result<http::Request<Full<bytes::Bytes>>, FetchError> {
        if request.body.len() > MAX_REQUEST_BYTES {
            return Err(FetchError::Denied(too_large_request()));
        }
        let mut builder = http::Request::builder()
            .method(request.method.as_str())
            .uri(request.url.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(Full::new(bytes::Bytes::from(request.body)))
            .map_err(|e| FetchError::Failed(format!("invalid request: {e}")))
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

/// The largest request body a plugin may send: far above any provider
/// call, far below what would let one call hold the gateway's memory.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

fn too_large_request() -> String {
    format!("outbound request body over {MAX_REQUEST_BYTES} bytes")
}

/// Headers a plugin may not set, as `wasi:http` forbids them: hop-by-hop
/// ones the client manages. `Host` is checked apart: `wasi:http` itself
/// writes it from the request's authority, and only a different one (a
/// request to an allowed origin claiming another) is refused.
const FORBIDDEN_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// Why a request breaks the rules `wasi:http` sets for what a guest may
/// send, if it does: `CONNECT` (a tunnel past every check), `TRACE`, a
/// forbidden header, or an announced body over the limit.
fn forbidden<B>(request: &http::Request<B>) -> Result<(), String> {
    if matches!(
        *request.method(),
        http::Method::CONNECT | http::Method::TRACE
    ) {
        return Err(format!(
            "outbound request refused: method {} is not allowed",
            request.method()
        ));
    }
    let authority = request.uri().authority().map(|a| a.as_str());
    for host in request.headers().get_all(http::header::HOST) {
        let own = match (host.to_str().ok(), authority) {
            (Some(claimed), Some(authority)) => claimed.eq_ignore_ascii_case(authority),
            _ => false,
        };
        if !own {
            return Err(format!(
                "outbound request refused: Host {:?} is not the URL's own ({})",
                String::from_utf8_lossy(host.as_bytes()),
                authority.unwrap_or("none")
            ));
        }
    }
    if let Some(name) = request
        .headers()
        .keys()
        .find(|name| FORBIDDEN_HEADERS.contains(&name.as_str()))
    {
        return Err(format!(
            "outbound request refused: the {name} header is set by the gateway, not the plugin"
        ));
    }
    let announced = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > MAX_REQUEST_BYTES as u64) {
        return Err(too_large_request());
    }
    Ok(())
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
        let open = match self.admit(&request) {
            Ok(open) => open,
            Err(why) => return self.refuse(why),
        };
        let client = self.client.clone();
        let max_response = usize::try_from(self.max_response_bytes).unwrap_or(usize::MAX);
        let first_byte = options.and_then(|o| o.first_byte_timeout);
        Box::new(async move {
            let (parts, body) = request.into_parts();
            let body = Limited::new(body, MAX_REQUEST_BYTES)
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

/// A whole request, as a connector hands it over.
pub struct Fetch {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A whole answer.
pub struct Fetched {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub enum FetchError {
    Denied(String),
    Timeout,
    TooLarge,
    Failed(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Denied(why) | FetchError::Failed(why) => f.write_str(why),
            FetchError::Timeout => f.write_str("no answer in time"),
            FetchError::TooLarge => f.write_str("the answer was larger than allowed"),
        }
    }
}

fn classify(error: &hyper_util::client::legacy::Error) -> HttpError {
    if error.is_connect() {
        HttpError::ConnectionRefused
    } else {
        HttpError::HttpProtocolError
    }
}
