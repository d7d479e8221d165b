//! The HTTP listener, with limits a slow or silent client cannot get round.
//!
//! `axum::serve` keeps a connection open for as long as the client likes: one that sends its
//! request head a byte a second, or nothing at all, holds a socket (and a file descriptor) for
//! ever, and a thousand of them starve the process. Here every connection is HTTP/1.1 (what
//! browsers and reverse proxies speak to a plain-HTTP upstream) and is bounded by
//! [`HttpLimits`]:
//!
//! - **head**: a request head must arrive whole within `header_timeout` (hyper's
//!   `header_read_timeout`), or the connection is closed;
//! - **body**: a request body must arrive whole within `body_timeout` of the head; otherwise
//!   reading it fails with [`BodyTimeout`] (the API answers 408 problem+json);
//! - **idle**: a connection with no request in flight for `idle_timeout` (a fresh one that sends
//!   nothing included) is closed;
//! - **count**: at most `max_connections` are open at once; beyond that, new ones wait in the
//!   kernel's listen backlog until a slot frees, so the process never runs out of descriptors.
//!
//! Graceful shutdown: when `stop` resolves, no new connection is accepted, idle ones are closed,
//! and requests in flight finish before [`serve`] returns.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use berth_core::config::HttpLimits;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// Serves `app` on `listener` within `limits` until `stop` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let mut last_full_warning: Option<Instant> = None;
    tokio::pin!(stop);
    loop {
        // A slot first, then a connection: at the cap, new clients wait in the backlog.
        if slots.available_permits() == 0 && last_full_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            tracing::warn!(max = limits.max_connections, "HTTP connection limit reached; new connections wait");
            last_full_warning = Some(Instant::now());
        }
        let permit = tokio::select! {
            () = &mut stop => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "Cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let http = http.clone();
        let closing = closing_rx.clone();
        tokio::spawn(async move {
            connection(stream, remote, app, http, limits, closing).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    // Every connection holds a slot until it ends: all slots back means all connections done.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// One connection: its requests, its idle timer, and its part in graceful shutdown.
async fn connection(
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    app: Router,
    http: hyper::server::conn::http1::Builder,
    limits: HttpLimits,
    mut closing: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let app = app.clone();
            let busy = activity.begin();
            async move {
                let (mut parts, body) = req.into_parts();
                parts.extensions.insert(ConnectInfo(remote));
                let body = Body::new(DeadlineBody::new(body, limits.body_timeout));
                let res = app.oneshot(Request::from_parts(parts, body)).await;
                drop(busy);
                res
            }
        })
    };
    let conn = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    // Timeouts, resets and garbage from clients: routine, not an error of ours.
                    tracing::debug!(%remote, error = %e, "HTTP connection ended");
                }
                return;
            }
            _ = closing.changed(), if !shutting_down => {
                conn.as_mut().graceful_shutdown();
                shutting_down = true;
            }
            () = tokio::time::sleep_until(activity.idle_deadline(limits.idle_timeout).into()), if !shutting_down => {
                if activity.idle_for(limits.idle_timeout) {
                    // Closes at once when idle; lets a request in flight finish otherwise.
                    conn.as_mut().graceful_shutdown();
                    shutting_down = true;
                }
            }
        }
    }
}

/// Requests in flight on one connection, and when the last one started or ended.
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn new() -> Self {
        Self { in_flight: AtomicUsize::new(0), last: Mutex::new(Instant::now()) }
    }

    fn touch(&self) {
        if let Ok(mut last) = self.last.lock() {
            *last = Instant::now();
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.touch();
        Busy(self.clone())
    }

    fn last(&self) -> Instant {
        self.last.lock().map(|l| *l).unwrap_or_else(|_| Instant::now())
    }

    /// When the connection would be idle for `idle` if nothing happens until then.
    fn idle_deadline(&self, idle: Duration) -> Instant {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            Instant::now() + idle
        } else {
            self.last() + idle
        }
    }

    fn idle_for(&self, idle: Duration) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0 && self.last().elapsed() >= idle
    }
}

/// Marks a request in flight until dropped (also when the client goes away mid-request).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

/// Reading a request body took longer than BERTH_HTTP_BODY_TIMEOUT_SECONDS.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(Duration);

/// True when `err` (an extractor's rejection, say) comes from a [`BodyTimeout`].
pub fn is_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<BodyTimeout>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// A request body that fails with [`BodyTimeout`] once its deadline has passed, however slowly
/// or steadily the client trickles it.
struct DeadlineBody {
    inner: Incoming,
    limit: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, limit: Duration) -> Self {
        Self { inner, limit, deadline: Box::pin(tokio::time::sleep(limit)) }
    }
}

impl hyper::body::Body for DeadlineBody {
    type Data = hyper::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        // The deadline first, so a body that keeps arriving cannot outrun it either.
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit)))));
        }
        Pin::new(&mut this.inner).poll_frame(cx).map(|frame| frame.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
