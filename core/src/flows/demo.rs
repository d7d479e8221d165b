//! `demo`: a three-step flow with no real effect, for tests and benchmarks. Only in builds with
//! the `testing` feature.
//!
//! With `dir` set, each step's effect is a file named after its idempotency key, created only if
//! absent, and each attempt appends a line to `attempts.log` — so a test can see that a resumed
//! step ran twice while its effect happened once. `hold_step` makes that step wait, after its
//! effect, until `dir/release` exists (a place to kill the worker); `fail_step` fails that step
//! on its first `fail_attempts` attempts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Flow;

pub struct DemoFlow;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoInput {
    #[serde(default)]
    pub dir: Option<PathBuf>,
    #[serde(default)]
    pub hold_step: Option<String>,
    #[serde(default)]
    pub fail_step: Option<String>,
    #[serde(default)]
    pub fail_attempts: i32,
}

impl Flow for DemoFlow {
    const NAME: &'static str = "demo";
    const STEPS: &'static [&'static str] = &["prepare", "work", "finish"];
    const MAX_ATTEMPTS: i32 = 2;
    type Input = DemoInput;
}
