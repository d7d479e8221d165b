//! Time-series charts drawn on the server as inline SVG: axes with units, the newest value in
//! the title, a hover title on every point. No JavaScript, no image files; the points are
//! averaged down to the chart's width first, so a 30-day range costs the same to draw as an hour.

use chrono::{DateTime, Utc};
use leptos::prelude::*;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 160.0;
/// Room for the value labels on the left and the time labels below.
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;
/// At most one point per this many pixels.
const PIXELS_PER_POINT: f64 = 4.0;

/// How a chart's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Percent,
    Bytes,
    BytesPerSecond,
    Milliseconds,
}

impl Unit {
    pub fn format(self, v: f64) -> String {
        match self {
            Self::Percent => format!("{v:.1} %"),
            Self::Milliseconds => format!("{v:.0} ms"),
            Self::Bytes => bytes(v),
            Self::BytesPerSecond => format!("{}/s", bytes(v)),
        }
    }
}

fn bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v.max(0.0);
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Averages `points` into at most `max` buckets of equal time over `[from, to)`.
pub fn fit(points: &[(i64, f64)], from: i64, to: i64, max: usize) -> Vec<(i64, f64)> {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let step = ((to - from) / max as i64).max(1);
    berth_core::store::metrics::downsample(points, step)
}

/// One chart. `limit`, when given, is drawn as a dashed line (a memory limit) and included in
/// the scale.
pub fn chart(
    title: &str,
    unit: Unit,
    points: &[(i64, f64)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: Option<f64>,
) -> AnyView {
    let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis().max(from.timestamp_millis() + 1));
    let points = fit(points, from_ms, to_ms, ((WIDTH - LEFT) / PIXELS_PER_POINT) as usize);
    let latest = points.last().map(|(_, v)| unit.format(*v)).unwrap_or_else(|| "no data".into());
    let heading = format!("{title}: {latest}");
    if points.is_empty() {
        return view! {
            <figure class="chart">
                <figcaption>{heading}</figcaption>
                <p class="muted">"No samples in this range yet."</p>
            </figure>
        }
        .into_any();
    }
    let mut max = points.iter().map(|(_, v)| *v).fold(limit.unwrap_or(0.0), f64::max);
    if unit == Unit::Percent {
        max = max.max(100.0);
    }
    let max = if max <= 0.0 { 1.0 } else { max * 1.05 };
    let plot_w = WIDTH - LEFT;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let x = |t: i64| LEFT + (t - from_ms) as f64 / (to_ms - from_ms) as f64 * plot_w;
    let y = |v: f64| TOP + plot_h - (v / max) * plot_h;
    let line: String = points.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v))).collect::<Vec<_>>().join(" ");
    let dots = points
        .iter()
        .map(|(t, v)| {
            let at = DateTime::from_timestamp_millis(*t).map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string());
            let label = format!("{}: {}", at.unwrap_or_default(), unit.format(*v));
            view! {
                <circle cx=format!("{:.1}", x(*t)) cy=format!("{:.1}", y(*v)) r="3" class="chart__dot">
                    <title>{label}</title>
                </circle>
            }
        })
        .collect_view();
    let limit_line = limit.map(|l| {
        let ly = format!("{:.1}", y(l));
        view! {
            <line x1=format!("{LEFT}") x2=format!("{WIDTH}") y1=ly.clone() y2=ly class="chart__limit">
                <title>{format!("limit: {}", unit.format(l))}</title>
            </line>
        }
    });
    let time = |d: DateTime<Utc>| {
        if to - from > chrono::Duration::days(2) {
            d.format("%m-%d %H:%M").to_string()
        } else {
            d.format("%H:%M").to_string()
        }
    };
    let base = format!("{:.1}", TOP + plot_h);
    view! {
        <figure class="chart">
            <figcaption>{heading.clone()}</figcaption>
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=heading class="chart__svg">
                <line x1=format!("{LEFT}") x2=format!("{WIDTH}") y1=base.clone() y2=base.clone() class="chart__axis" />
                <line x1=format!("{LEFT}") x2=format!("{LEFT}") y1=format!("{TOP}") y2=base class="chart__axis" />
                <text x=format!("{}", LEFT - 4.0) y=format!("{}", TOP + 10.0) text-anchor="end" class="chart__label">{unit.format(max)}</text>
                <text x=format!("{}", LEFT - 4.0) y=format!("{}", TOP + plot_h) text-anchor="end" class="chart__label">{unit.format(0.0)}</text>
                <text x=format!("{LEFT}") y=format!("{}", HEIGHT - 4.0) class="chart__label">{time(from)}</text>
                <text x=format!("{WIDTH}") y=format!("{}", HEIGHT - 4.0) text-anchor="end" class="chart__label">{time(to)}</text>
                {limit_line}
                <polyline points=line class="chart__line" />
                {dots}
            </svg>
        </figure>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_like_people_write_them() {
        assert_eq!(Unit::Bytes.format(512.0 * 1024.0 * 1024.0), "512.0 MiB");
        assert_eq!(Unit::BytesPerSecond.format(300.0), "300 B/s");
        assert_eq!(Unit::Percent.format(12.345), "12.3 %");
    }

    #[test]
    fn long_ranges_are_averaged_to_the_width() {
        let points: Vec<(i64, f64)> = (0..10_000).map(|i| (i * 1000, 1.0)).collect();
        let fitted = fit(&points, 0, 10_000_000, 100);
        assert!(fitted.len() <= 101 && fitted.iter().all(|(_, v)| *v == 1.0), "{}", fitted.len());
    }
}
