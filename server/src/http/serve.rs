//! The HTTP listener, with limits a slow or silent client cannot get round.
//!
//! `axum::serve` keeps a connection open for as long as the client likes: one that sends its
//! request head a byte a second, or nothing at all, holds a socket (and a file descriptor) for
//! ever, and a thousand of them starve the process. Here every connection is HTTP/1.1 (what
//! browsers and reverse proxies speak to a plain-HTTP upstream) and is bounded by
//! [`HttpLimits`]:
//!
//! - **head**: a request head must arrive whole within `header_timeout`, counted from the
//!   connection's start for its first request and from the first byte of each later one, or
//!   the connection is closed;
//! - **body**: a request body must arrive whole within `body_timeout` of the head; otherwise
//!   reading it fails with [`BodyTimeout`] (the API answers 408 problem+json);
//! - **idle**: a kept-alive connection with no request for `idle_timeout` is closed (so a
//!   reverse proxy's pooled connections may idle longer than a head may take);
//! - **count**: at most `max_connections` are open at once; beyond that, new ones wait in the
//!   kernel's listen backlog until a slot frees, so the process never runs out of descriptors.
//!
//! Graceful shutdown: when `stop` resolves, no new connection is accepted, idle ones are closed,
//! and requests in flight finish (for at most [`DRAIN_LIMIT`]) before [`serve`] returns.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
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

/// How long a graceful shutdown waits for requests in flight.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` within `limits` until `stop` resolves, then drains (for at most
/// [`DRAIN_LIMIT`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    // The head timeout is ours (see `connection`): hyper's also runs while a kept-alive
    // connection waits for its next request, which would cut keep-alive to the head timeout.
    http.timer(TokioTimer::new()).header_read_timeout(None).keep_alive(true);
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
    if tokio::time::timeout(DRAIN_LIMIT, slots.acquire_many(all)).await.is_err() {
        // A long-lived answer (a log stream, say) must not hold the process (and the workers'
        // shutdown after it) for ever; what is left is cut when the runtime stops.
        tracing::warn!(
            open = limits.max_connections - slots.available_permits(),
            "HTTP connections still open after {DRAIN_LIMIT:?}; stopping anyway"
        );
    }
    Ok(())
}

/// One connection: its requests, its head and idle timers, and its part in graceful shutdown.
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
    let io = Watched { inner: stream, activity: activity.clone() };
    let conn = http.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut shutting_down = false;
    loop {
        let (deadline, _) = activity.next_deadline(&limits);
        // Requests do not wake this loop (that cost a wake-up of the task and a new timer per
        // request, three times over). Any deadline a later change of activity can set is
        // `then + header timeout` or `then + idle timeout`, so the timer is armed no later than
        // `now +` the shorter of the two, and a timer that fires early re-checks.
        let wake = deadline.min(Instant::now() + limits.header_timeout.min(limits.idle_timeout));
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    // Resets and garbage from clients: routine, not an error of ours.
                    tracing::debug!(%remote, error = %e, "HTTP connection ended");
                }
                return;
            }
            _ = closing.changed(), if !shutting_down => {
                conn.as_mut().graceful_shutdown();
                shutting_down = true;
            }
            () = tokio::time::sleep_until(wake.into()) => {
                // Re-checked: a request may have begun or ended while the timer ran.
                let (deadline, on_expiry) = activity.next_deadline(&limits);
                if deadline > Instant::now() {
                    continue;
                }
                match on_expiry {
                    // A head that is not whole in time: the connection is dropped, closing it.
                    Expiry::Head => {
                        tracing::debug!(%remote, "Closed a connection whose request head did not arrive in time");
                        return;
                    }
                    // Idle between requests: closes at once (nothing is in flight).
                    Expiry::Idle if !shutting_down => {
                        conn.as_mut().graceful_shutdown();
                        shutting_down = true;
                    }
                    Expiry::Idle | Expiry::Recheck => {}
                }
            }
        }
    }
}

/// What a connection is doing, for its timers: requests in flight, when the last one began or
/// ended, and since when the head of the next one has been arriving.
struct Activity {
    state: Mutex<ActivityState>,
}

struct ActivityState {
    in_flight: usize,
    last: Instant,
    /// Since when a request head is being awaited: from the connection's start (a new client
    /// must send its first head in time), or from the first byte after a response.
    head_since: Option<Instant>,
}

/// What happens when a connection's deadline passes.
#[derive(Debug, Clone, Copy)]
enum Expiry {
    Head,
    Idle,
    Recheck,
}

impl Activity {
    fn new() -> Self {
        let now = Instant::now();
        let state = ActivityState { in_flight: 0, last: now, head_since: Some(now) };
        Self { state: Mutex::new(state) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut ActivityState) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state)
    }

    /// Changes `state`. The connection's loop is not woken: its timer never runs later than
    /// the deadline a change can bring (see `connection`).
    fn update(&self, f: impl FnOnce(&mut ActivityState)) {
        self.with(f);
    }

    /// Bytes arrived: between requests, they start the next head's clock.
    fn read(&self) {
        self.with(|s| {
            if s.in_flight == 0 && s.head_since.is_none() {
                s.head_since = Some(Instant::now());
            }
        });
    }

    /// A whole head arrived and its request begins.
    fn begin(self: &Arc<Self>) -> Busy {
        self.update(|s| {
            s.in_flight += 1;
            s.head_since = None;
            s.last = Instant::now();
        });
        Busy(self.clone())
    }

    fn end(&self) {
        self.update(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            s.last = Instant::now();
        });
    }

    /// The next moment something is due, and what.
    fn next_deadline(&self, limits: &HttpLimits) -> (Instant, Expiry) {
        self.with(|s| match s.head_since {
            Some(since) => (since + limits.header_timeout, Expiry::Head),
            None if s.in_flight == 0 => (s.last + limits.idle_timeout, Expiry::Idle),
            None => (Instant::now() + limits.idle_timeout, Expiry::Recheck),
        })
    }
}

/// Marks a request in flight until dropped (also when the client goes away mid-request).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// The socket, telling the connection's [`Activity`] when bytes arrive.
struct Watched {
    inner: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read();
        }
        result
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
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
/// or steadily the client trickles it. The deadline counts from the head's arrival; its timer is
/// armed when the body is first read, so a request whose body nobody reads (a GET) costs no
/// timer and no allocation.
struct DeadlineBody {
    inner: Incoming,
    limit: Duration,
    due: tokio::time::Instant,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, limit: Duration) -> Self {
        Self { inner, limit, due: tokio::time::Instant::now() + limit, deadline: None }
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
        let due = this.due;
        let deadline = this.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        // The deadline first, so a body that keeps arriving cannot outrun it either.
        if deadline.as_mut().poll(cx).is_ready() {
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
