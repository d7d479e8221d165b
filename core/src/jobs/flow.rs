//! `flow.run`: the one job that drives a flow run through its steps (see [`crate::flows`]).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Job;

/// Drives the flow run `flow_run_id`, resuming after its last succeeded step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriveFlow {
    pub flow_run_id: Uuid,
}

impl Job for DriveFlow {
    const NAME: &'static str = "flow.run";
    /// Attempts per run (and per manual retry) unless the flow sets its own; each attempt
    /// resumes at the step that was running or failed.
    const MAX_ATTEMPTS: i32 = 5;

    /// At most one job drives a run at a time.
    fn dedup_key(&self) -> Option<String> {
        Some(format!("flow:{}", self.flow_run_id))
    }
}
