//! Demonstration job kinds with no effect, for tests and the queue benchmark. Only in builds
//! with the `testing` feature (the test suite turns it on); never in a release binary.

use serde::{Deserialize, Serialize};

use super::Job;
use crate::flows::demo::DemoInput;

/// Does nothing.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Noop {}

impl Job for Noop {
    const NAME: &'static str = "demo.noop";
}

/// Sleeps `ms` milliseconds (at most ten minutes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sleep {
    pub ms: u64,
}

impl Job for Sleep {
    const NAME: &'static str = "demo.sleep";
}

/// Always fails with `message`, once: its single attempt makes it dead at once, ready for a
/// manual retry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fail {
    pub message: String,
}

impl Job for Fail {
    const NAME: &'static str = "demo.fail";
    const MAX_ATTEMPTS: i32 = 1;
}

/// Starts a run of the demo flow (its input as the payload).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct StartDemoFlow(pub DemoInput);

impl Job for StartDemoFlow {
    const NAME: &'static str = "demo.flow";
}
