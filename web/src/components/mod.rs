//! Building blocks shared by every page. Each is a function that returns a view, so a page
//! composes them like any other Leptos view.

pub mod badge;
pub mod confirm;
pub mod empty;
pub mod flash;
pub mod form;
pub mod qr;
pub mod site;
pub mod table;

use chrono::{DateTime, Utc};

/// Timestamps on pages: UTC, to the minute, the same format everywhere.
pub fn when(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn when_opt(at: &Option<DateTime<Utc>>) -> String {
    at.as_ref().map(when).unwrap_or_else(|| "never".to_owned())
}
