//! The session layer, only where a session can be used.
//!
//! Loading nothing still costs: the session layer parses the cookies, builds a session handle,
//! opens a tracing span and boxes a future on every request. Two kinds of request can never use
//! a session, and they are the most frequent ones, so they skip the layer:
//!
//! - the probes (`/healthz`, `/readyz`, `/metrics`): no handler of theirs reads a session;
//! - API requests with an `Authorization` header: the [`Auth`](crate::auth::Auth) extractor
//!   authenticates them by the header alone and never looks at a session (a cookie sent along
//!   is ignored, as it always was). Sign-in is the exception, since it starts a session whatever
//!   else the request carries, so it always gets the layer.
//!
//! Every other request (the console, the portal, cookie-authenticated API calls) goes through
//! the layer as before.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use futures_util::future::Either;
use tower::{Layer, Service};

/// Whether a request may use a session (see the module's documentation).
pub fn may_use_session(req: &Request) -> bool {
    let path = req.uri().path();
    if crate::app::is_probe(path) {
        return false;
    }
    !(path.starts_with("/api/v1/")
        && path != "/api/v1/auth/login"
        && req.headers().contains_key(axum::http::header::AUTHORIZATION))
}

/// Wraps a service in `L` (the session layer) for the requests that [`may_use_session`], and
/// passes the others to the service itself.
#[derive(Clone)]
pub struct WhereUsed<L>(pub L);

impl<L: Layer<S>, S: Clone> Layer<S> for WhereUsed<L> {
    type Service = Split<S, L::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        Split { plain: inner.clone(), with_sessions: self.0.layer(inner) }
    }
}

#[derive(Clone)]
pub struct Split<S, T> {
    plain: S,
    with_sessions: T,
}

impl<S, T> Service<Request> for Split<S, T>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    T: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, T::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both wrap the same router, which is always ready.
        match self.plain.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.with_sessions.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if may_use_session(&req) {
            Either::Right(self.with_sessions.call(req))
        } else {
            Either::Left(self.plain.call(req))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::may_use_session;
    use axum::extract::Request;

    fn req(path: &str, bearer: bool) -> Request {
        let mut b = Request::builder().uri(path);
        if bearer {
            b = b.header("authorization", "Bearer berth_x");
        }
        b.body(axum::body::Body::empty()).expect("request")
    }

    #[test]
    fn only_probes_and_bearer_api_calls_skip_sessions() {
        assert!(!may_use_session(&req("/healthz", false)));
        assert!(!may_use_session(&req("/metrics", true)));
        assert!(!may_use_session(&req("/api/v1/sites/1", true)));
        assert!(may_use_session(&req("/api/v1/sites/1", false)));
        assert!(may_use_session(&req("/api/v1/auth/login", true)), "sign-in starts a session");
        assert!(may_use_session(&req("/admin/sites", true)), "console pages keep theirs");
        assert!(may_use_session(&req("/portal", false)));
    }
}
