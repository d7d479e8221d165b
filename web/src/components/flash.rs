//! One-shot messages shown on the page after a redirect ("Customer created").

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlashKind {
    Success,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    pub kind: FlashKind,
    pub message: String,
}

impl Flash {
    pub fn success(message: impl Into<String>) -> Self {
        Self { kind: FlashKind::Success, message: message.into() }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self { kind: FlashKind::Error, message: message.into() }
    }
}

/// The banner at the top of the page; `role="status"` (or `alert` for errors) makes screen
/// readers announce it.
pub fn flash_banner(flash: Option<Flash>) -> impl IntoView {
    flash.map(|f| {
        let (class, role) = match f.kind {
            FlashKind::Success => ("flash flash--success", "status"),
            FlashKind::Error => ("flash flash--error", "alert"),
        };
        view! { <div class=class role=role>{f.message}</div> }
    })
}
