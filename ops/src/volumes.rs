//! A site's data volumes: switching a site onto a fresh volume filled from a directory (what a
//! restore does), and the volumes it no longer uses (listed, discarded, removed when their time
//! is up).
//!
//! The switch cannot make things worse:
//! 1. [`Ops::fresh_volume`] creates a new volume labelled as the site's; nothing uses it yet;
//! 2. [`Ops::fill_volume`] copies a directory into it (never into the volume the site uses);
//! 3. [`Ops::switch_volume`] points the site at it (`sites.data_volume`, a compare-and-set), so
//!    the container specification changes and the reconciler replaces the container the way it
//!    replaces any other: the new container starts beside the old one, must answer, nginx is
//!    switched, then the old one retires. This waits for that outcome. Healthy: the old volume
//!    is recorded as retired (kept `BERTH_RETIRED_VOLUME_KEEP_DAYS`, never removed by the
//!    switch). Not healthy: the site is pointed back at its old volume — the old container
//!    never stopped serving it — the fresh volume is recorded as `failed_switch`, and the error
//!    says why.
//!
//! [`Ops::switch_to_copy_of`] does all three.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_core::access::Caller;
use berth_core::entities::{site_volumes, sites};
use berth_core::store::{site_state, site_volumes as store};
use berth_core::types::{CustomerStatus, DesiredState, SiteStatus};
use berth_runtime::names::LABEL_SITE;
use berth_runtime::volumes::FillStats;
use berth_runtime::Runtime;
use sea_orm::EntityTrait;
use uuid::Uuid;

use crate::{Error, Ops, Result};

/// How often a switch looks at the site while it waits for the reconciler.
const POLL: Duration = Duration::from_millis(300);
/// How often it asks the reconciler for a pass meanwhile (a deferred replacement retries).
const NUDGE: Duration = Duration::from_secs(3);

/// How a switch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switched {
    /// The volume the site used before; now retired (kept, listed, not removed).
    pub from: String,
    /// The volume the site uses now.
    pub to: String,
    /// A replacement container on `to` was health-checked and nginx switched to it; false when
    /// the site is not meant to run (stopped, or its customer suspended): it starts on `to`.
    pub checked: bool,
}

impl Ops {
    /// The volume a site's container mounts.
    pub fn volume_of(&self, site: &sites::Model) -> Result<String> {
        let rt = self.runtime()?;
        Ok(site.data_volume.clone().unwrap_or_else(|| rt.names.volume(site.id)))
    }

    /// Creates a fresh, empty data volume for a site (labelled as the site's), named with
    /// `generation` (`[a-z0-9]`, 1 to 32: a restore uses its run's id, so a resumed restore
    /// finds the volume it made). Creating it again is a no-op.
    pub async fn fresh_volume(&self, caller: &Caller, site_id: Uuid, generation: &str) -> Result<String> {
        let ok = !generation.is_empty()
            && generation.len() <= 32
            && generation.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !ok {
            return Err(Error::Store(berth_core::Error::invalid("generation", "1 to 32 lowercase letters and digits")));
        }
        let site = store::site(&self.db, caller, site_id).await?;
        let rt = self.runtime()?;
        let name = rt.names.fresh_volume(site.id, generation);
        if name == self.volume_of(&site)? {
            return Err(Error::VolumeInUse(format!("volume {name} is the one the site uses")));
        }
        rt.engine.ensure_volume(&name, rt.names.site_labels(site.id, site.customer_id)).await?;
        Ok(name)
    }

    /// Makes `volume` (a fresh volume of the site, never the one it uses) hold exactly what
    /// `source` holds, keeping modes, owners and symlinks. Needs a local engine.
    pub async fn fill_volume(&self, caller: &Caller, site_id: Uuid, volume: &str, source: &Path) -> Result<FillStats> {
        let site = store::site(&self.db, caller, site_id).await?;
        let rt = self.runtime()?;
        if volume == self.volume_of(&site)? {
            return Err(Error::VolumeInUse(format!(
                "volume {volume} is the one the site uses; it is never overwritten"
            )));
        }
        check_own_volume(rt, &site, volume).await?;
        if !rt.local_engine {
            return Err(Error::RemoteEngine);
        }
        let mountpoint = rt
            .engine
            .volume_mountpoint(volume)
            .await?
            .ok_or_else(|| Error::Fill(format!("volume {volume} does not exist")))?;
        let mountpoint = PathBuf::from(mountpoint);
        if !mountpoint.is_dir() {
            return Err(Error::Fill(format!(
                "the volume's directory {} is not reachable from this machine (is Berth running in a container without it?)",
                mountpoint.display()
            )));
        }
        let source = source.to_owned();
        let stats = tokio::task::spawn_blocking(move || berth_runtime::volumes::fill_dir(&source, &mountpoint))
            .await
            .map_err(|e| Error::Fill(format!("the copy stopped: {e}")))?
            .map_err(|e| Error::Fill(e.to_string()))?;
        tracing::info!(
            site.id = %site.id, volume, files = stats.files, bytes = stats.bytes, skipped = stats.skipped,
            "Filled a fresh data volume"
        );
        Ok(stats)
    }

    /// Switches the site from volume `from` (`None`: the default one) onto `to` (a fresh volume
    /// of the site) and waits until the replacement container on `to` serves, or failed; see
    /// the module documentation. Calling it again after a crash, with the same volumes, waits
    /// for the same outcome.
    pub async fn switch_volume(
        &self,
        caller: &Caller,
        site_id: Uuid,
        from: Option<&str>,
        to: &str,
        reason: &str,
    ) -> Result<Switched> {
        let site = store::site(&self.db, caller, site_id).await?;
        let rt = self.runtime()?.clone();
        let from_name = from.map_or_else(|| rt.names.volume(site.id), str::to_owned);
        if to == from_name {
            return Err(Error::VolumeInUse(format!("the site uses volume {to} already")));
        }
        check_own_volume(&rt, &site, to).await?;
        store::switch(&self.db, caller, site_id, from, Some(to), reason).await?;
        self.reconcile_soon();
        tracing::info!(site.id = %site_id, from = %from_name, to, "Switching a site onto a fresh data volume");
        let desired = site_state::desired_one(&self.db, &self.keys, site_id).await?;
        let running =
            desired.site.desired_state == DesiredState::Running && desired.customer_status == CustomerStatus::Active;
        let checked = if running {
            let target =
                berth_runtime::converge::spec_of(&desired).map_err(Error::SwitchFailed).map(|spec| spec.hash());
            let outcome = match target {
                Ok(hash) => self.wait_replaced(&rt, site_id, &hash).await,
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                return Err(self.roll_back(caller, &desired.site, from, to, e).await);
            }
            true
        } else {
            false
        };
        let keep_until = chrono::Utc::now() + keep_for(&rt);
        store::retire(&self.db, &desired.site, &from_name, store::REPLACED_BY_RESTORE, keep_until).await?;
        tracing::info!(site.id = %site_id, from = %from_name, to, checked, "The site switched onto its fresh data volume");
        Ok(Switched { from: from_name, to: to.to_owned(), checked })
    }

    /// The whole switch: a fresh volume, filled from `source`, then switched onto. A failure
    /// before the switch leaves the site as it was (the fresh volume is removed).
    pub async fn switch_to_copy_of(&self, caller: &Caller, site_id: Uuid, source: &Path) -> Result<Switched> {
        let site = store::site(&self.db, caller, site_id).await?;
        let generation = Uuid::now_v7().simple().to_string()[20..].to_owned();
        let fresh = self.fresh_volume(caller, site_id, &generation).await?;
        if let Err(e) = self.fill_volume(caller, site_id, &fresh, source).await {
            if let Ok(rt) = self.runtime() {
                let _ = rt.engine.remove_volume(&fresh).await;
            }
            return Err(e);
        }
        self.switch_volume(caller, site_id, site.data_volume.as_deref(), &fresh, "copy").await
    }

    /// Waits until the site's container is the one of specification `hash` (the reconciler
    /// records it), or the reconciler recorded that one as failed, or the time is up.
    async fn wait_replaced(&self, rt: &Runtime, site_id: Uuid, hash: &str) -> Result<()> {
        // The replacement gets the health timeout, plus time for passes, image inspection and
        // the old container's drain.
        let limit = rt.health_timeout * 2 + Duration::from_secs(60);
        let deadline = Instant::now() + limit;
        let mut nudged = Instant::now();
        loop {
            let site =
                sites::Entity::find_by_id(site_id).one(&self.db).await?.ok_or(berth_core::Error::NotFound("site"))?;
            if site.status == SiteStatus::Deleting {
                return Err(Error::SwitchFailed("the site is being deleted".into()));
            }
            if site.spec_hash.as_deref() == Some(hash) && site.status == SiteStatus::Running {
                return Ok(());
            }
            if site.failed_spec_hash.as_deref() == Some(hash) {
                return Err(Error::SwitchFailed(
                    site.last_error.unwrap_or_else(|| "the new container did not become healthy".into()),
                ));
            }
            if Instant::now() >= deadline {
                return Err(Error::SwitchFailed(format!(
                    "no healthy container on the new data within {} s",
                    limit.as_secs()
                )));
            }
            if nudged.elapsed() >= NUDGE {
                rt.reconcile_soon();
                nudged = Instant::now();
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Points the site back at `from` after a failed switch onto `to`, records `to` as
    /// `failed_switch`, and returns the error to report (`cause`, or the rollback's own failure).
    async fn roll_back(
        &self,
        caller: &Caller,
        site: &sites::Model,
        from: Option<&str>,
        to: &str,
        cause: Error,
    ) -> Error {
        tracing::warn!(site.id = %site.id, error = %cause, to, "The switch onto a fresh data volume failed; going back");
        if let Err(e) = store::switch(&self.db, caller, site.id, Some(to), from, "rollback").await {
            tracing::error!(site.id = %site.id, error = %e, "Cannot point the site back at its previous data volume");
            return Error::SwitchFailed(format!("{cause}; and pointing the site back at its data failed: {e}"));
        }
        self.reconcile_soon();
        let keep_until = chrono::Utc::now() + self.runtime().map(|rt| keep_for(rt)).unwrap_or(chrono::Duration::zero());
        if let Err(e) = store::retire(&self.db, site, to, store::FAILED_SWITCH, keep_until).await {
            tracing::warn!(site.id = %site.id, error = %e, volume = to, "Cannot record the failed volume");
        }
        cause
    }

    /// The volumes a site no longer uses, newest first (still there: not discarded).
    pub async fn site_volumes(&self, caller: &Caller, site_id: Uuid) -> Result<Vec<site_volumes::Model>> {
        Ok(store::list(&self.db, caller, site_id).await?)
    }

    /// Removes a volume the site no longer uses (an operator decided its data is not needed),
    /// audited as `site.volume_discard`. The volume the site uses is never removed.
    pub async fn discard_volume(&self, caller: &Caller, site_id: Uuid, name: &str) -> Result<()> {
        let (site, row) = store::get(&self.db, caller, site_id, name).await?;
        let rt = self.runtime()?;
        if name == self.volume_of(&site)? {
            return Err(Error::VolumeInUse(format!("volume {name} is the one the site uses")));
        }
        remove(rt, name).await?;
        store::mark_discarded(&self.db, caller, &row).await?;
        tracing::info!(site.id = %site_id, volume = name, actor = %caller.actor, "Discarded a retired data volume");
        Ok(())
    }

    /// Removes the retired volumes whose `keep_until` passed (the housekeeping job); returns how
    /// many. One that cannot go (still in use) is logged and tried again next time.
    pub async fn remove_expired_volumes(&self) -> Result<usize> {
        let rt = self.runtime()?;
        let caller = Caller::system("housekeeping");
        let mut removed = 0;
        for row in store::expired(&self.db, chrono::Utc::now()).await? {
            let site = sites::Entity::find_by_id(row.site_id).one(&self.db).await?;
            if site.as_ref().is_some_and(|s| self.volume_of(s).ok().as_deref() == Some(row.name.as_str())) {
                tracing::warn!(site.id = %row.site_id, volume = %row.name, "A retired volume is the site's again; not removing it");
                continue;
            }
            match remove(rt, &row.name).await {
                Ok(()) => {
                    store::mark_discarded(&self.db, &caller, &row).await?;
                    removed += 1;
                }
                Err(e) => {
                    tracing::warn!(site.id = %row.site_id, volume = %row.name, error = %e, "Cannot remove a retired data volume yet")
                }
            }
        }
        Ok(removed)
    }
}

/// How long a retired volume is kept.
fn keep_for(rt: &Runtime) -> chrono::Duration {
    chrono::Duration::from_std(rt.retired_volume_keep).unwrap_or(chrono::Duration::zero())
}

/// Refuses a volume that is not labelled as this site's in this installation: a switch or a
/// fill only ever touches the site's own volumes.
async fn check_own_volume(rt: &Runtime, site: &sites::Model, volume: &str) -> Result<()> {
    let mut filter = rt.names.label_filter();
    filter.push(format!("{LABEL_SITE}={}", site.id));
    if rt.engine.volumes(&filter).await?.iter().any(|v| v == volume) {
        Ok(())
    } else {
        Err(Error::Store(berth_core::Error::NotFound("volume")))
    }
}

/// Removes a volume; one a container still mounts is a conflict, not an engine failure.
async fn remove(rt: &Runtime, name: &str) -> Result<()> {
    match rt.engine.remove_volume(name).await {
        Ok(()) => Ok(()),
        Err(berth_runtime::RuntimeError::Conflict(_)) => {
            Err(Error::VolumeInUse(format!("volume {name} is still in use by a container")))
        }
        Err(e) => Err(e.into()),
    }
}
