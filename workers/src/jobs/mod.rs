//! The runners of the job kinds defined in `berth_core::jobs`, one file per family (the flow
//! driver lives with the flows, in `crate::flows::driver`).

pub mod alerts;
pub mod backup;
#[cfg(feature = "testing")]
pub mod demo;
pub mod drill;
pub mod housekeeping;
pub mod metrics;
pub mod platform_backup;
pub mod test_notification;
