//! Flow definitions: a flow is an ordered list of idempotent steps with a typed input, driven
//! by one job ([`DriveFlow`](crate::jobs::flow::DriveFlow)). The steps' *code* runs in
//! `berth_workers`; their names, order and input are defined here, so that the state change
//! that needs a flow starts it on its own transaction ([`start`]).
//!
//! Each step's start, end, attempts and error are recorded in `flow_steps`; the driver skips
//! steps already succeeded, so a crash resumes at the step that was running, which runs again
//! with the same idempotency key (`<run id>:<step>`).

#[cfg(feature = "testing")]
pub mod demo;
pub mod onboarding;
pub mod restore;

use sea_orm::ConnectionTrait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::entities::flow_runs;
use crate::error::{Error, Result};
use crate::jobs::flow::DriveFlow;
use crate::jobs::Job;
use crate::store::batch::Batch;
use crate::store::flows::NewRun;

/// A kind of flow, as stored in `flow_runs.kind`.
pub trait Flow: Send + Sync + 'static {
    /// Stored in every run: never change it once runs of it may exist.
    const NAME: &'static str;
    /// Step names, in order. Names are part of the idempotency keys: never rename one that may
    /// be in flight.
    const STEPS: &'static [&'static str];
    /// Attempts of the driver job per run; each attempt resumes at the step that failed.
    const MAX_ATTEMPTS: i32 = DriveFlow::MAX_ATTEMPTS;
    type Input: Serialize + DeserializeOwned + Send + Sync;
}

/// Starts a run of `F` on `db` — the transaction of the state change that needs it: the run, its
/// steps and its driver job commit together or not at all.
pub async fn start<F: Flow>(
    db: &impl ConnectionTrait,
    input: &F::Input,
    customer_id: Option<Uuid>,
) -> Result<flow_runs::Model> {
    start_with_id::<F>(db, Uuid::now_v7(), input, customer_id).await
}

/// [`start`] with the run's id chosen by the caller (a fresh UUIDv7): the signup intake names the
/// run in the answer it stores before writing the run.
pub async fn start_with_id<F: Flow>(
    db: &impl ConnectionTrait,
    id: Uuid,
    input: &F::Input,
    customer_id: Option<Uuid>,
) -> Result<flow_runs::Model> {
    let mut batch = Batch::new();
    let run = start_in::<F>(&mut batch, id, input, customer_id)?;
    batch.exec(db).await?;
    Ok(run)
}

/// [`start_with_id`] added to the caller's `batch`, which it sends in its transaction with the
/// rest of its change (the signup intake: one statement for every row it writes).
pub(crate) fn start_in<F: Flow>(
    batch: &mut Batch,
    id: Uuid,
    input: &F::Input,
    customer_id: Option<Uuid>,
) -> Result<flow_runs::Model> {
    let input = serde_json::to_value(input)
        .map_err(|e| Error::Internal(anyhow::anyhow!("input of flow `{}` does not serialise: {e}", F::NAME)))?;
    crate::store::flows::create_in(
        batch,
        id,
        NewRun {
            kind: F::NAME.to_owned(),
            steps: F::STEPS.iter().map(|s| (*s).to_owned()).collect(),
            input,
            customer_id,
            max_attempts: F::MAX_ATTEMPTS,
        },
    )
}
