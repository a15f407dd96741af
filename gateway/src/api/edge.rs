//! The outermost layer: every request's answer counted in `/metrics` by
//! route template and status. It wraps the [`super::guard`]'s check (a
//! [`super::before`] layer), so what the guard refuses (413, 415, 421) is
//! counted too.
//!
//! A tower service written out rather than `middleware::from_fn`, which
//! boxes the inner service and the future of every request, on the path
//! every accepted message takes. Here a request costs a route's `Arc`
//! clone and nothing boxed.

use crate::metrics::Metrics;
use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tower::{Layer, Service};

/// Wraps every route (and the fallback) in a [`Count`].
#[derive(Clone)]
pub struct CountLayer {
    metrics: Arc<Metrics>,
}

impl CountLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        CountLayer { metrics }
    }
}

impl<S> Layer<S> for CountLayer {
    type Service = Count<S>;

    fn layer(&self, inner: S) -> Count<S> {
        Count {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Count<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<Request> for Count<S>
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
        Counted {
            route: request.extensions().get::<MatchedPath>().cloned(),
            metrics: self.metrics.clone(),
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's answer, counted when it is ready.
    pub struct Counted<F> {
        #[pin]
        inner: F,
        route: Option<MatchedPath>,
        metrics: Arc<Metrics>,
    }
}

impl<F> Future for Counted<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = ready!(this.inner.poll(cx));
        // By the route's template (`/v1/messages/{id}`, never the id itself).
        let route = this.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        this.metrics.request(route, response.status().as_u16());
        Poll::Ready(Ok(response))
    }
}
