//! A site's container output: the last lines as JSON, or followed as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_runtime::engine::{LogLine, LogStream};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Auth;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

pub const DEFAULT_TAIL: u32 = 100;
pub const MAX_TAIL: u32 = berth_ops::sites::MAX_LOG_LINES;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
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
    // The operations read the site through the caller's scope first: another tenant's site is
    // a 404 before anything reaches Docker.
    if !q.follow {
        let lines = state.ops.site_logs(&auth.caller, id, tail).await?;
        return Ok(Json(SiteLogs { lines: lines.into_iter().map(Into::into).collect() }).into_response());
    }
    let events = state.ops.follow_site_logs(&auth.caller, id, tail).await?.map(|item| {
        let event = match item {
            Ok(line) => Event::default().event("log").json_data(LogLineDto::from(line)),
            Err(e) => Ok(Event::default().event("error").data(e.to_string())),
        };
        Ok::<_, Infallible>(event.unwrap_or_else(|_| Event::default().event("error").data("unencodable line")))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}
