//! Restoring a site's data from one of its backups, as a flow whose every step is recorded:
//! started by `POST /api/v1/sites/{id}/backups/{backup_id}/restore` (and the console) in the
//! transaction that checked the caller may see both the site and the backup.
//!
//! The steps, in order (docs/backups.md, "Restore"):
//! 1. `verify`: the snapshot decrypts, every blob reads back intact, and it is this site's
//!    (its label and manifest match the backup row of this site); nothing is touched before;
//! 2. `pre_restore`: a backup of the current data (a `backups` row of kind `pre_restore`), so
//!    the restore itself can be undone;
//! 3. `fill`: the snapshot is restored into a fresh volume (never the one the site uses);
//! 4. `switch`: the site moves onto it through a health-checked replacement container; a
//!    failure puts it back on its old volume, which never stopped serving;
//! 5. `keep_old`: the old volume is recorded as retired (kept, listed, removed only by an
//!    operator or when its time is up).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Flow;

pub struct Restore;

/// What one restore run is about: the flow's input, fixed when it starts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Subject {
    pub site_id: Uuid,
    pub customer_id: Uuid,
    /// The backup whose snapshot is restored (a row of this site).
    pub backup_id: Uuid,
    /// The volume the site used when the restore was asked for (`None`: its original one):
    /// the switch is a compare-and-set from it, and `keep_old` records it.
    pub from_volume: Option<String>,
    /// Names the fresh volume (`<prefix>-data-<site>-<generation>`), so a resumed run finds the
    /// volume it made.
    pub generation: String,
    /// Who asked, for the audit entries the steps write.
    pub requested_by: String,
}

impl Flow for Restore {
    const NAME: &'static str = "site.restore";
    const STEPS: &'static [&'static str] = &["verify", "pre_restore", "fill", "switch", "keep_old"];
    /// A crash resumes at the running step; a step that fails (a corrupt snapshot, a replacement
    /// that did not become healthy and was rolled back) has already left the site as it was,
    /// and trying again rarely helps: the run fails soon, visible with its error and a retry
    /// button.
    const MAX_ATTEMPTS: i32 = 2;
    type Input = Subject;
}
