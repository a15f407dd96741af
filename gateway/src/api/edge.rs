//! The layer every request passes first: the [`guard`]'s checks, then the
//! request's count in `/metrics` by route template and status (what the
//! guard refuses, 413, 415 or 421, counted too).
//!
//! One tower service written out rather than two `middleware::from_fn`
//! layers: each of those boxed the inner service and the future of every
//! request, on the path every accepted message takes. Here a request that
//! passes costs a route's `Arc` clone and nothing boxed.

use super::{AppState, guard};
use crate::metrics::Metrics;
use axum::extract::{MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tower::{Layer, Service};

/// Wraps every route (and the fallback) in an [`Edge`].
#[derive(Clone)]
pub struct EdgeLayer {
    state: Arc<AppState>,
}

impl EdgeLayer {
    pub fn new(state: Arc<AppState>) -> Self {
        EdgeLayer { state }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    state: Arc<AppState>,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Counted<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = request.extensions().get::<MatchedPath>().cloned();
        match guard::check(&self.state, &request) {
            Ok(()) => Counted {
                state: State::Served {
                    inner: self.inner.call(request),
                    route,
                    metrics: self.state.metrics.clone(),
                },
            },
            Err(refused) => {
                let response = refused.into_response();
                count(&self.state.metrics, route.as_ref(), &response);
                Counted {
                    state: State::Refused {
                        response: Some(response),
                    },
                }
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's answer, counted when it is ready.
    pub struct Counted<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F> {
        Served {
            #[pin]
            inner: F,
            route: Option<MatchedPath>,
            metrics: Arc<Metrics>,
        },
        Refused { response: Option<Response> },
    }
}

impl<F> Future for Counted<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Served {
                inner,
                route,
                metrics,
            } => {
                let Ok(response) = ready!(inner.poll(cx));
                count(metrics, route.as_ref(), &response);
                Poll::Ready(Ok(response))
            }
            StateProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .expect("a refused request's future is polled once it is ready"))),
        }
    }
}

/// By the route's template (`/v1/messages/{id}`, never the id itself).
fn count(metrics: &Metrics, route: Option<&MatchedPath>, response: &Response) {
    let route = route.map_or("unmatched", MatchedPath::as_str);
    metrics.request(route, response.status().as_u16());
}
