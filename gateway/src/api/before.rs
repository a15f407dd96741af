//! A synchronous check before a route's handler, as a tower layer: what
//! `middleware::from_fn` gives, without boxing the inner service and the
//! future of every request (the guard and authentication sit on the path
//! of every send).

use super::{ApiError, AppState};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures::future::Either;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// What a check may do: refuse the request, or let it on, extended.
pub type Check = fn(&AppState, &mut Request) -> Result<(), ApiError>;

/// Runs `check` before every route it wraps.
#[derive(Clone)]
pub struct BeforeLayer {
    state: Arc<AppState>,
    check: Check,
}

impl BeforeLayer {
    pub fn new(state: Arc<AppState>, check: Check) -> Self {
        BeforeLayer { state, check }
    }
}

impl<S> Layer<S> for BeforeLayer {
    type Service = Before<S>;

    fn layer(&self, inner: S) -> Before<S> {
        Before {
            inner,
            state: self.state.clone(),
            check: self.check,
        }
    }
}

#[derive(Clone)]
pub struct Before<S> {
    inner: S,
    state: Arc<AppState>,
    check: Check,
}

impl<S> Service<Request> for Before<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match (self.check)(&self.state, &mut request) {
            Ok(()) => Either::Right(self.inner.call(request)),
            Err(refused) => Either::Left(ready(Ok(refused.into_response()))),
        }
    }
}
