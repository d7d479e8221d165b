//! A site's resource usage over time: `GET /api/v1/sites/{id}/metrics`. Raw samples for short
//! ranges, 1-minute and 1-hour rollups for longer ones (docs/monitoring.md).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use berth_core::cache;
use berth_core::store::metrics::{self, Series};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Auth;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

/// The longest range one request may span.
const MAX_SPAN_DAYS: i64 = 400;
/// The most points one series may have when a step is given.
const MAX_POINTS: i64 = 5_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    /// Start (RFC 3339); default one hour before `to`.
    pub from: Option<DateTime<Utc>>,
    /// End (RFC 3339, exclusive); default now.
    pub to: Option<DateTime<Utc>>,
    /// Average into buckets of this many seconds (1 to 86400).
    pub step: Option<u32>,
    /// Comma-separated series names; default all: cpu_percent, memory_bytes, memory_limit_bytes,
    /// network_rx_bytes_per_second, network_tx_bytes_per_second, block_read_bytes_per_second,
    /// block_write_bytes_per_second, pids, up (1/0 per uptime check, averaged per bucket),
    /// response_ms, disk_bytes, disk_limit_bytes (the volume's use and the plan's storage).
    pub series: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Point {
    /// The sample's (or bucket's start) time.
    pub t: DateTime<Utc>,
    pub v: f64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SiteMetrics {
    pub site_id: Uuid,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Where the points come from: `raw` (up to 6 h), `1m` (up to 8 days) or `1h`.
    pub resolution: String,
    pub step_seconds: Option<u32>,
    /// The share of uptime checks in the range that got a non-5xx answer, in percent; `null`
    /// without checks.
    pub uptime_percent: Option<f64>,
    /// Points per series name, oldest first.
    pub series: BTreeMap<String, Vec<Point>>,
}

pub(super) fn parse_series(list: Option<&str>) -> Result<Vec<Series>, ApiError> {
    let Some(list) = list.filter(|l| !l.trim().is_empty()) else { return Ok(Series::ALL.to_vec()) };
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim) {
        let series = Series::parse(name).ok_or_else(|| {
            let known: Vec<_> = Series::ALL.iter().map(|s| s.name()).collect();
            ApiError::invalid("series", &format!("unknown series `{name}`; known: {}", known.join(", ")))
        })?;
        if !out.contains(&series) {
            out.push(series);
        }
    }
    Ok(out)
}

/// A site's CPU, memory, network, disk I/O and process series. Customers see only their own
/// sites' (another tenant's site is 404).
#[utoipa::path(get, operation_id = "sites_metrics", path = "/sites/{id}/metrics", tag = "sites", params(("id" = Uuid, Path), MetricsQuery),
    responses((status = 200, body = SiteMetrics), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn metrics(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> ApiResult<Json<SiteMetrics>> {
    let mut to = q.to.unwrap_or_else(Utc::now);
    let mut from = q.from.unwrap_or(to - Duration::hours(1));
    if from >= to {
        return Err(ApiError::invalid("from", "must be before `to`"));
    }
    if to - from > Duration::days(MAX_SPAN_DAYS) {
        return Err(ApiError::invalid("from", &format!("the range may span at most {MAX_SPAN_DAYS} days")));
    }
    if let Some(step) = q.step {
        if !(1..=86_400).contains(&step) {
            return Err(ApiError::invalid("step", "must be from 1 to 86400 seconds"));
        }
        if (to - from).num_seconds() / i64::from(step) > MAX_POINTS {
            return Err(ApiError::invalid(
                "step",
                &format!("gives more than {MAX_POINTS} points; choose a larger step"),
            ));
        }
    }
    let wanted = parse_series(q.series.as_deref())?;
    // Ranges read from the rollups (beyond 6 hours) are cached in Redis when it is configured:
    // their buckets change once a minute at most, so the range is floored to the minute and the
    // answer kept for 5 minutes (`cache::METRICS_TTL`). The caller's access is checked first,
    // every time.
    let cache = match metrics::Resolution::for_span(to - from) {
        metrics::Resolution::Minute | metrics::Resolution::Hour if state.cache.is_on() => {
            metrics::check_site(&state.db, &auth.caller, id).await?;
            let floor = |t: DateTime<Utc>| DateTime::from_timestamp(t.timestamp().div_euclid(60) * 60, 0).unwrap_or(t);
            (from, to) = (floor(from), floor(to));
            let names: Vec<&str> = wanted.iter().map(|s| s.name()).collect();
            let key = format!(
                "metrics:site:{id}:v1:{}:{}:{}:{}",
                from.timestamp(),
                to.timestamp(),
                q.step.unwrap_or(0),
                names.join(",")
            );
            if let Some(answer) = state.cache.get::<SiteMetrics>(&key).await {
                return Ok(Json(answer));
            }
            Some(key)
        }
        _ => None,
    };
    let found = metrics::site_series(&state.db, &auth.caller, id, from, to, q.step, &wanted).await?;
    let series = found
        .series
        .into_iter()
        .map(|(s, points)| {
            let points = points
                .into_iter()
                .filter_map(|(t, v)| DateTime::from_timestamp_millis(t).map(|t| Point { t, v }))
                .collect();
            (s.name().to_owned(), points)
        })
        .collect();
    let answer = SiteMetrics {
        site_id: id,
        from,
        to,
        resolution: found.resolution.name().to_owned(),
        step_seconds: q.step,
        uptime_percent: found.uptime_percent,
        series,
    };
    if let Some(key) = cache {
        state.cache.put(&key, &answer, cache::METRICS_TTL).await;
    }
    Ok(Json(answer))
}
