//! Site operations. Changes to the desired state (create, update, start, stop, delete) are
//! recorded by the store, audited in its transaction, and the reconciler is woken so the
//! container converges now; restart and logs act on the container directly.

use std::future::Future;
use std::time::Duration;

use berth_core::access::Caller;
use berth_core::store::sites::{self, Completion, NewSite, Patch, Site};
use berth_core::types::{DesiredState, SiteStatus};
use berth_runtime::engine::LogLine;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use sea_orm::ActiveEnum;
use uuid::Uuid;

use crate::{Error, Ops, Result};

/// How long a restart may take before the caller is told the engine did not answer (Docker
/// waits for the container's stop timeout, then starts it again).
pub const RESTART_TIMEOUT: Duration = Duration::from_secs(60);
/// How long reading a container's output may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The most lines of output one read returns.
pub const MAX_LOG_LINES: u32 = 10_000;

/// What [`Ops::recover_site`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The container ran (or hung, or was paused): it was restarted.
    Restarted,
    /// The container was not running: it was started.
    Started,
}

/// How a deletion went on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// The reconciler removes the container (and volume), then the site; its status shows it.
    Started,
    /// Without a container runtime there was nothing to remove: the site is gone.
    Done,
}

impl Ops {
    /// Creates a site and has the reconciler start its container now.
    pub async fn create_site(&self, caller: &Caller, new: NewSite) -> Result<Site> {
        let site = sites::create(&self.db, &self.keys, caller, new).await?;
        self.reconcile_soon();
        Ok(site)
    }

    /// Changes a site's image, domains, environment or desired state; the reconciler replaces
    /// the container (the new one answers before the old one goes).
    pub async fn update_site(&self, caller: &Caller, id: Uuid, patch: Patch) -> Result<Site> {
        let site = sites::update(&self.db, &self.keys, caller, id, patch).await?;
        self.reconcile_soon();
        Ok(site)
    }

    /// Wants the site running: the reconciler starts its container (creating it if needed).
    pub async fn start_site(&self, caller: &Caller, id: Uuid) -> Result<Site> {
        self.set_desired(caller, id, DesiredState::Running).await
    }

    /// Wants the site stopped: the reconciler stops its container (and keeps it).
    pub async fn stop_site(&self, caller: &Caller, id: Uuid) -> Result<Site> {
        self.set_desired(caller, id, DesiredState::Stopped).await
    }

    async fn set_desired(&self, caller: &Caller, id: Uuid, desired: DesiredState) -> Result<Site> {
        let site = sites::set_desired(&self.db, &self.keys, caller, id, desired).await?;
        self.reconcile_soon();
        Ok(site)
    }

    /// Restarts the running container of a site now, audited as `site.restart`.
    pub async fn restart_site(&self, caller: &Caller, id: Uuid) -> Result<Site> {
        let site = sites::get(&self.db, &self.keys, caller, id).await?;
        let rt = self.runtime()?;
        if site.model.status != SiteStatus::Running || site.model.container_id.is_none() {
            return Err(Error::NotRunning(site.model.status.to_value()));
        }
        within(RESTART_TIMEOUT, rt.engine.restart(&rt.container_name(id))).await?;
        sites::record_action(&self.db, caller, &site.model, "site.restart").await?;
        self.reconcile_soon();
        Ok(site)
    }

    /// Brings back a site its owner wants running but that does not serve (the alerts'
    /// remediation): a container that runs, is paused or hangs is restarted; one that is not
    /// running (stopped behind Berth's back, or crashed) is started. Starting is what the
    /// reconciler would do too, and both are idempotent (starting a running container changes
    /// nothing), so the two never undo each other; nothing here stops a container the
    /// reconciler just started. Audited as `site.restart`. Refused (`NotRunning`) for a site its
    /// owner stopped, and (`NoContainer`) before it has a container.
    pub async fn recover_site(&self, caller: &Caller, id: Uuid) -> Result<Recovery> {
        let site = sites::get(&self.db, &self.keys, caller, id).await?;
        let rt = self.runtime()?;
        if site.model.desired_state != DesiredState::Running || site.model.status == SiteStatus::Deleting {
            return Err(Error::NotRunning(site.model.status.to_value()));
        }
        let name = rt.container_name(id);
        let Some(detail) = within(READ_TIMEOUT, rt.engine.inspect(&name)).await? else {
            return Err(Error::NoContainer);
        };
        let recovery = if detail.running || detail.state == "paused" {
            within(RESTART_TIMEOUT, rt.engine.restart(&name)).await?;
            Recovery::Restarted
        } else {
            within(RESTART_TIMEOUT, rt.engine.start(&name)).await?;
            Recovery::Started
        };
        sites::record_action(&self.db, caller, &site.model, "site.restart").await?;
        self.reconcile_soon();
        Ok(recovery)
    }

    /// Deletes a site: it leaves the ingress at once; the reconciler removes its container (and,
    /// with `purge`, its data volume) and then the site. Without a runtime it is gone at once.
    pub async fn delete_site(&self, caller: &Caller, id: Uuid, purge: bool) -> Result<Deletion> {
        if !self.has_runtime() {
            sites::delete(&self.db, caller, id, purge, Completion::Now).await?;
            return Ok(Deletion::Done);
        }
        sites::delete(&self.db, caller, id, purge, Completion::ByReconciler).await?;
        self.reconcile_soon();
        Ok(Deletion::Started)
    }

    /// The last `tail` lines of the site's container output, oldest first.
    pub async fn site_logs(&self, caller: &Caller, id: Uuid, tail: u32) -> Result<Vec<LogLine>> {
        let site = sites::get(&self.db, &self.keys, caller, id).await?;
        self.logs_of(&site, tail).await
    }

    /// [`Ops::site_logs`] of a site the caller already read through its scope (a [`Site`] only
    /// comes from a scoped store read), so a page that shows the site reads it once.
    pub async fn logs_of(&self, site: &Site, tail: u32) -> Result<Vec<LogLine>> {
        let name = self.container_of(site).await?;
        let rt = self.runtime()?;
        let read = async {
            let mut stream = rt.engine.logs(&name, tail.clamp(1, MAX_LOG_LINES), false);
            let mut lines = Vec::new();
            while let Some(item) = stream.next().await {
                lines.push(item?);
            }
            Ok::<_, berth_runtime::RuntimeError>(lines)
        };
        within(READ_TIMEOUT, read).await
    }

    /// The site's container output as it is written, after the last `tail` lines. Errors
    /// after the stream started arrive as items.
    pub async fn follow_site_logs(
        &self,
        caller: &Caller,
        id: Uuid,
        tail: u32,
    ) -> Result<BoxStream<'static, berth_runtime::Result<LogLine>>> {
        let site = sites::get(&self.db, &self.keys, caller, id).await?;
        let name = self.container_of(&site).await?;
        Ok(self.runtime()?.engine.logs(&name, tail.clamp(1, MAX_LOG_LINES), true))
    }

    /// The name of the site's existing container.
    async fn container_of(&self, site: &Site) -> Result<String> {
        let rt = self.runtime()?;
        let name = rt.container_name(site.model.id);
        match within(READ_TIMEOUT, rt.engine.inspect(&name)).await? {
            Some(_) => Ok(name),
            None => Err(Error::NoContainer),
        }
    }
}

/// Runs an engine call with a deadline, so no page or request hangs on an engine that does not
/// answer.
async fn within<T>(limit: Duration, call: impl Future<Output = berth_runtime::Result<T>>) -> Result<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result.map_err(Error::from),
        Err(_) => Err(Error::EngineTimeout),
    }
}
