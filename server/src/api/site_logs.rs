//! A site's container output: the last lines as JSON, or followed as server-sent events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_core::store;
use berth_runtime::engine::{LogLine, LogStream};
use berth_runtime::{Runtime, RuntimeError};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Auth;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

pub const DEFAULT_TAIL: u32 = 100;
pub const MAX_TAIL: u32 = 10_000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// How many of the last lines (1 to 10000, default 100).
    pub tail: Option<u32>,
    /// Keep the connection open and send new lines as server-sent events (`event: log`).
    #[serde(default)]
    pub follow: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogLineDto {
    /// `stdout` or `stderr`.
    pub stream: String,
    pub line: String,
}

impl From<LogLine> for LogLineDto {
    fn from(l: LogLine) -> Self {
        let stream = match l.stream {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        };
        Self { stream: stream.into(), line: l.line }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SiteLogs {
    pub lines: Vec<LogLineDto>,
}

/// The runtime, or 503 when Berth runs without one.
pub fn runtime(state: &AppState) -> ApiResult<Arc<Runtime>> {
    state
        .runtime
        .clone()
        .ok_or_else(|| ApiError::Unavailable("no container runtime is configured (BERTH_DOCKER_HOST is off)".into()))
}

pub fn runtime_error(e: RuntimeError) -> ApiError {
    match e {
        RuntimeError::NotFound(_) => {
            ApiError::Core(berth_core::Error::Conflict("the site has no container yet".into()))
        }
        RuntimeError::Unavailable(_) => {
            tracing::error!(error = %e, "Docker unreachable");
            ApiError::Unavailable("the container engine is unreachable; try again shortly".into())
        }
        other => ApiError::Core(berth_core::Error::Internal(anyhow::anyhow!("container engine: {other}"))),
    }
}

/// The last `tail` lines of a site's container output, oldest first; `NotFound` when the site
/// has no container. The caller has checked that its caller may see the site. Shared by this
/// endpoint and the site pages (`berth_web::SiteRuntime`, built in `crate::app`).
pub async fn last_lines(rt: &Runtime, site: Uuid, tail: u32) -> Result<Vec<LogLine>, RuntimeError> {
    let name = rt.container_name(site);
    if rt.engine.inspect(&name).await?.is_none() {
        return Err(RuntimeError::NotFound(name));
    }
    let mut stream = rt.engine.logs(&name, tail, false);
    let mut lines = Vec::new();
    while let Some(item) = stream.next().await {
        lines.push(item?);
    }
    Ok(lines)
}

/// The site's container output. With `follow=true` the answer is `text/event-stream`: one
/// `log` event per line (data: a JSON `{stream, line}`), first the last `tail` lines.
#[utoipa::path(get, operation_id = "sites_logs", path = "/sites/{id}/logs", tag = "sites", params(("id" = Uuid, Path), LogsQuery),
    responses((status = 200, body = SiteLogs, description = "JSON, or text/event-stream with follow=true"), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn logs(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> ApiResult<Response> {
    let tail = q.tail.unwrap_or(DEFAULT_TAIL);
    if !(1..=MAX_TAIL).contains(&tail) {
        return Err(ApiError::invalid("tail", "must be from 1 to 10000"));
    }
    // Scoped read first: another tenant's site is a 404 before anything reaches Docker.
    let site = store::sites::get(&state.db, &state.keys, &auth.caller, id).await?;
    let rt = runtime(&state)?;
    if !q.follow {
        let lines = last_lines(&rt, site.model.id, tail).await.map_err(runtime_error)?;
        return Ok(Json(SiteLogs { lines: lines.into_iter().map(Into::into).collect() }).into_response());
    }
    let name = rt.container_name(site.model.id);
    if rt.engine.inspect(&name).await.map_err(runtime_error)?.is_none() {
        return Err(runtime_error(RuntimeError::NotFound(name)));
    }
    let events = rt.engine.logs(&name, tail, true).map(|item| {
        let event = match item {
            Ok(line) => Event::default().event("log").json_data(LogLineDto::from(line)),
            Err(e) => Ok(Event::default().event("error").data(e.to_string())),
        };
        Ok::<_, Infallible>(event.unwrap_or_else(|_| Event::default().event("error").data("unencodable line")))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}
