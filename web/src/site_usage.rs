//! The "Usage" panel of a site page, in the admin console and the portal alike: CPU, memory,
//! network, response-time and disk charts (disk against the plan's storage) over 1 hour, 24 hours, 7 days or 30 days, and the share of
//! uptime checks that passed. Read through the same tenant-scoped store call as the API's
//! `/sites/{id}/metrics`.

use berth_core::store::metrics::{self, Series};
use berth_core::store::sites::Site;
use chrono::{Duration, Utc};
use leptos::prelude::*;
use serde::Deserialize;

use crate::auth::PageCtx;
use crate::components::chart::{chart, Unit};
use crate::error::PageError;
use crate::WebState;

/// The ranges a page offers, as `?range=` values.
const RANGES: [(&str, &str, i64); 4] =
    [("1h", "1 hour", 1), ("24h", "24 hours", 24), ("7d", "7 days", 24 * 7), ("30d", "30 days", 24 * 30)];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UsageQuery {
    pub range: Option<String>,
}

/// The usage panel for `site` over the range `q` asks for (24 hours when it asks for none or
/// for one the page does not offer).
pub async fn usage(state: &WebState, ctx: &PageCtx, site: &Site, q: &UsageQuery) -> Result<AnyView, PageError> {
    let (key, _, hours) = RANGES.iter().copied().find(|(k, _, _)| Some(*k) == q.range.as_deref()).unwrap_or(RANGES[1]);
    let to = Utc::now();
    let from = to - Duration::hours(hours);
    let wanted = [
        Series::CpuPercent,
        Series::MemoryBytes,
        Series::MemoryLimitBytes,
        Series::NetworkRxBytesPerSecond,
        Series::NetworkTxBytesPerSecond,
        Series::ResponseMs,
        Series::DiskBytes,
        Series::DiskLimitBytes,
    ];
    let found = metrics::site_series(&state.db, &ctx.caller, site.model.id, from, to, None, &wanted).await?;
    let get = |s: Series| found.series.iter().find(|(k, _)| *k == s).map(|(_, p)| p.clone()).unwrap_or_default();
    let limit = get(Series::MemoryLimitBytes).last().map(|(_, v)| *v).filter(|v| *v > 0.0);
    let href = ctx.area.path(&format!("/sites/{}", site.model.id));
    let ranges = RANGES
        .iter()
        .map(|(k, label, _)| {
            let current = *k == key;
            view! {
                <a href=format!("{href}?range={k}#usage") class="button button--quiet" aria-current=current.then_some("true")>{*label}</a>
            }
        })
        .collect_view();
    let disk = get(Series::DiskBytes);
    let disk_limit = get(Series::DiskLimitBytes).last().map(|(_, v)| *v).filter(|v| *v > 0.0);
    let storage = match (disk.last(), disk_limit) {
        (Some((_, used)), Some(quota)) => {
            let percent = used * 100.0 / quota;
            let over = if percent > 100.0 { " — over the plan's storage" } else { "" };
            format!("{} of {} ({percent:.1} %){over}", mib(*used), mib(quota))
        }
        (Some((_, used)), None) => format!("{} (the plan sets no storage)", mib(*used)),
        (None, _) => "not measured in this range".to_owned(),
    };
    let uptime = match found.uptime_percent {
        Some(p) => format!("{p:.2} % of uptime checks passed"),
        None => "no uptime checks in this range".to_owned(),
    };
    Ok(view! {
        <section class="panel stack" aria-labelledby="usage-title" id="usage">
            <h2 id="usage-title">"Usage"</h2>
            <nav class="actions" aria-label="Range">{ranges}</nav>
            <p><strong>"Uptime: "</strong>{uptime}</p>
            <p><strong>"Storage: "</strong>{storage}</p>
            <div class="charts">
                {chart("CPU", Unit::Percent, &get(Series::CpuPercent), from, to, None)}
                {chart("Memory", Unit::Bytes, &get(Series::MemoryBytes), from, to, limit)}
                {chart("Received", Unit::BytesPerSecond, &get(Series::NetworkRxBytesPerSecond), from, to, None)}
                {chart("Sent", Unit::BytesPerSecond, &get(Series::NetworkTxBytesPerSecond), from, to, None)}
                {chart("Response time", Unit::Milliseconds, &get(Series::ResponseMs), from, to, None)}
                {chart("Disk", Unit::Bytes, &disk, from, to, disk_limit)}
            </div>
        </section>
    }
    .into_any())
}

/// Bytes as MiB with one decimal.
fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}
