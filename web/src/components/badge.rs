//! Status badges. The word is always written out, so the colour is never the only signal.

use berth_core::entities::flow_runs::FlowState;
use berth_core::entities::flow_steps::StepState;
use berth_core::entities::jobs::JobState;
use berth_core::types::{CustomerStatus, SiteStatus};
use leptos::prelude::*;
use sea_orm::ActiveEnum;

/// Colour families; the stylesheet keeps every pair above WCAG AA contrast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Busy,
    Neutral,
    Warning,
    Bad,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Good => "badge badge--good",
            Tone::Busy => "badge badge--busy",
            Tone::Neutral => "badge badge--neutral",
            Tone::Warning => "badge badge--warning",
            Tone::Bad => "badge badge--bad",
        }
    }
}

pub fn badge(label: String, tone: Tone) -> impl IntoView {
    view! { <span class=tone.class()>{label}</span> }
}

pub fn site_tone(status: SiteStatus) -> Tone {
    match status {
        SiteStatus::Running => Tone::Good,
        SiteStatus::Pending | SiteStatus::Provisioning => Tone::Busy,
        SiteStatus::Stopped => Tone::Neutral,
        SiteStatus::Suspended | SiteStatus::Deleting => Tone::Warning,
        SiteStatus::Failed => Tone::Bad,
    }
}

/// A site's status in the shared vocabulary (pending, provisioning, running, ...).
pub fn site_status(status: SiteStatus) -> impl IntoView {
    badge(status.to_value(), site_tone(status))
}

pub fn customer_status(status: CustomerStatus) -> impl IntoView {
    let tone = match status {
        CustomerStatus::Active => Tone::Good,
        CustomerStatus::Suspended => Tone::Warning,
        CustomerStatus::Cancelled => Tone::Neutral,
    };
    badge(status.to_value(), tone)
}

pub fn flow_tone(state: FlowState) -> Tone {
    match state {
        FlowState::Running => Tone::Busy,
        FlowState::Succeeded => Tone::Good,
        FlowState::Failed => Tone::Bad,
    }
}

/// A flow run's state: running, succeeded or failed.
pub fn flow_state(state: FlowState) -> impl IntoView {
    badge(state.to_value(), flow_tone(state))
}

pub fn step_state(state: StepState) -> impl IntoView {
    let tone = match state {
        StepState::Pending => Tone::Neutral,
        StepState::Running => Tone::Busy,
        StepState::Succeeded => Tone::Good,
        StepState::Failed => Tone::Bad,
    };
    badge(state.to_value(), tone)
}

pub fn job_state(state: JobState) -> impl IntoView {
    let tone = match state {
        JobState::Queued => Tone::Neutral,
        JobState::Running => Tone::Busy,
        JobState::Done => Tone::Good,
        JobState::Dead => Tone::Bad,
    };
    badge(state.to_value(), tone)
}
