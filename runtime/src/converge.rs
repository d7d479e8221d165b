//! One site brought to its desired state. Every step is idempotent: run twice, it does the
//! work once and then only observes. The reconciler (berth-workers) calls [`Converger::site`]
//! for every site, then [`Converger::orphans`], holding its cross-process guard.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_core::store::site_state::{DesiredSite, Observed};
use berth_core::types::{CustomerStatus, DesiredState, SiteStatus};
use futures_util::StreamExt;
use uuid::Uuid;

use crate::engine::{ContainerDetail, ContainerInfo, Created};
use crate::error::{Result, RuntimeError};
use crate::spec::{hardened, ImageFacts, SiteSpec};
use crate::Runtime;

/// Limits for a site whose customer has no plan row (a data bug): the smallest plan's.
const FALLBACK_LIMITS: (i64, i64, i64) = (256, 500, 256);
/// How long the check of a site's address (what nginx connects to) waits for a connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The health word of a running site whose address takes no connection.
pub const UNREACHABLE: &str = "unreachable";

/// How long a site whose container cannot be made waits before the next attempt, doubled per
/// failure up to [`BACKOFF_MAX`]. A change of the site (its row, e.g. a new image, or a start
/// asked for again) tries at once.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(10);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Sites whose container could not be made, per version of the site (its specification hash
/// and the row's `updated_at`, see [`attempt_key`]): the next attempt waits
/// (exponentially, capped) instead of failing again at every pass, and the same error is logged
/// once. Kept in memory: a restarted Berth tries each once more.
#[derive(Debug, Default)]
pub struct Backoffs(Mutex<HashMap<Uuid, Failing>>);

#[derive(Debug, Clone)]
struct Failing {
    hash: String,
    error: String,
    failures: u32,
    until: Instant,
}

impl Backoffs {
    /// Whether the attempt at `hash` for `site` waits until later.
    pub fn waiting(&self, site: Uuid, hash: &str, now: Instant) -> bool {
        self.lock().get(&site).is_some_and(|f| f.hash == hash && now < f.until)
    }

    /// Records a failed attempt; returns the wait before the next one and whether the error is
    /// news (the first failure of this specification, or another error than last time).
    pub fn failed(&self, site: Uuid, hash: &str, error: &str, now: Instant) -> (Duration, bool) {
        let mut map = self.lock();
        let (failures, news) = match map.get(&site) {
            Some(f) if f.hash == hash => (f.failures + 1, f.error != error),
            _ => (1, true),
        };
        let wait = BACKOFF_FIRST.saturating_mul(1 << (failures - 1).min(16)).min(BACKOFF_MAX);
        map.insert(site, Failing { hash: hash.to_owned(), error: error.to_owned(), failures, until: now + wait });
        (wait, news)
    }

    /// Forgets a site's failures (its container was made).
    pub fn clear(&self, site: Uuid) {
        self.lock().remove(&site);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Failing>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The container specification of a site as its row, plan and environment say; why not, when
/// its environment cannot be opened. The reconciler converges to it, and a volume switch
/// (`berth_ops::volumes`) waits for the container of its hash.
pub fn spec_of(d: &DesiredSite) -> std::result::Result<SiteSpec, String> {
    let site = &d.site;
    let env = d.env.clone()?;
    let (memory_mb, cpu_millis, pids) =
        d.plan.as_ref().map_or(FALLBACK_LIMITS, |p| (p.memory_mb.into(), p.cpu_millis.into(), p.max_pids.into()));
    Ok(SiteSpec {
        site_id: site.id,
        customer_id: site.customer_id,
        name: site.name.clone(),
        image: site.image.clone(),
        env,
        memory_mb,
        cpu_millis,
        pids,
        allow_root: site.allow_root,
        data_volume: site.data_volume.clone(),
    })
}

/// How long an inspection stands in for the next ones when nothing says the container changed:
/// a safety net should an engine event go missing, so a pass still looks at every container at
/// least this often.
pub const INSPECTION_MAX_AGE: Duration = Duration::from_secs(300);

/// What the last passes learned by inspecting each container (restart count, health, networks,
/// addresses), so an idle pass does not inspect every container again: an inspection is reused
/// while the container's listing looks the same (same id, state, health and addresses), no
/// engine event named it since, and it is younger than [`INSPECTION_MAX_AGE`]. The reconciler's
/// event watcher forgets a container on each of its events, and everything when the event stream
/// breaks (events may have been missed).
#[derive(Debug, Default)]
pub struct Inspections(Mutex<Known>);

#[derive(Debug, Default)]
struct Known {
    by_name: HashMap<String, Inspected>,
    /// Counts forgets: an inspection begun before one is not kept (it may predate the event).
    generation: u64,
    /// The container listing of the last pass that found nothing to do, while no event came.
    listing: Option<(Vec<ContainerInfo>, Instant)>,
    /// Whether an event watcher is following the engine: without one nothing would tell a kept
    /// listing is stale, so none is kept.
    watched: bool,
}

#[derive(Debug, Clone)]
struct Inspected {
    listing: Listing,
    detail: ContainerDetail,
    at: Instant,
}

/// What the container listing says that an inspection would also say.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listing {
    id: String,
    state: String,
    /// The health part of Docker's status line (`healthy`, `unhealthy`, `health: starting`);
    /// the rest (`Up 3 minutes`) changes with time alone.
    health: Option<String>,
    addresses: Vec<(String, String)>,
}

impl Listing {
    fn of(c: &ContainerInfo) -> Self {
        let health = c.status.rsplit_once('(').and_then(|(_, h)| h.strip_suffix(')')).map(str::to_owned);
        let mut addresses: Vec<(String, String)> = c.addresses.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        addresses.sort();
        Self { id: c.id.clone(), state: c.state.clone(), health, addresses }
    }
}

impl Inspections {
    /// Forgets what is known about the container of this name or id (an event named it), and
    /// the kept listing.
    pub fn forget(&self, name_or_id: &str) {
        let mut known = self.lock();
        known.generation += 1;
        known.listing = None;
        known.by_name.retain(|name, i| name != name_or_id && i.listing.id != name_or_id);
    }

    /// Forgets everything (events may have been missed).
    pub fn forget_all(&self) {
        let mut known = self.lock();
        known.generation += 1;
        known.listing = None;
        known.by_name.clear();
    }

    /// Says whether an event watcher follows the engine now (the reconciler's, from the moment
    /// its event stream is open until it breaks). Either way everything known is forgotten:
    /// events may have been missed in between.
    pub fn watched(&self, on: bool) {
        let mut known = self.lock();
        known.generation += 1;
        known.listing = None;
        known.by_name.clear();
        known.watched = on;
    }

    /// The listing an idle pass kept, if it still holds (an event watcher runs, no event came
    /// since, younger than [`INSPECTION_MAX_AGE`]); otherwise `Err` with the generation to hand
    /// to [`Self::keep_listing`] after listing.
    pub fn listing(&self, now: Instant) -> std::result::Result<Vec<ContainerInfo>, u64> {
        let known = self.lock();
        match &known.listing {
            Some((containers, at)) if known.watched && now.duration_since(*at) < INSPECTION_MAX_AGE => {
                Ok(containers.clone())
            }
            _ => Err(known.generation),
        }
    }

    /// Keeps the listing of a pass that found nothing to do, unless an event came since
    /// `generation` was read (before listing).
    pub fn keep_listing(&self, containers: Vec<ContainerInfo>, at: Instant, generation: u64) {
        let mut known = self.lock();
        if known.watched && known.generation == generation {
            known.listing = Some((containers, at));
        }
    }

    /// Drops the kept listing (a pass acted on the engine).
    pub fn forget_listing(&self) {
        self.lock().listing = None;
    }

    /// The last inspection of `container` if it still holds; otherwise `Err` with the
    /// generation to hand to [`Self::put`] after inspecting.
    fn get(&self, container: &ContainerInfo, now: Instant) -> std::result::Result<ContainerDetail, u64> {
        let known = self.lock();
        match known.by_name.get(&container.name) {
            Some(i) if i.listing == Listing::of(container) && now.duration_since(i.at) < INSPECTION_MAX_AGE => {
                Ok(i.detail.clone())
            }
            _ => Err(known.generation),
        }
    }

    /// Keeps an inspection begun at `generation`, unless something was forgotten since.
    fn put(&self, container: &ContainerInfo, detail: &ContainerDetail, at: Instant, generation: u64) {
        let mut known = self.lock();
        if known.generation == generation {
            let listing = Listing::of(container);
            known.by_name.insert(container.name.clone(), Inspected { listing, detail: detail.clone(), at });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What a failed attempt is remembered by: the specification (a change of image, environment,
/// plan or root) and the row's version (an owner's start, even of a site meant to run already).
fn attempt_key(hash: &str, site: &berth_core::entities::sites::Model) -> String {
    format!("{hash}@{}", site.updated_at.timestamp_micros())
}

/// What became of a site.
#[derive(Debug)]
pub enum Outcome {
    Observed(Observed),
    /// Running as wanted: what was observed, once [`probe_all`] has checked that its address
    /// takes connections (what visitors get through nginx).
    Serving(Observed),
    /// Its deletion is carried out: the caller removes the row.
    Deleted,
}

/// How an update's replacement went.
enum Replaced {
    /// nginx sends the site's visitors to the new container.
    Done(ContainerDetail),
    /// Not tried now, or given up without harm; the current container keeps serving and the
    /// next pass tries again.
    Deferred(String),
    /// The new container did not come up; the current one keeps serving. Not tried again until
    /// the site changes.
    Failed(String),
}

pub struct Converger<'a> {
    rt: &'a Runtime,
    images: HashMap<String, Option<ImageFacts>>,
    /// Sites found serving exactly as the last look saw them, without an engine call.
    untouched: usize,
}

fn drift(rt: &Runtime, kind: &str) {
    rt.metrics.drift.with_label_values(&[kind]).inc();
}

impl<'a> Converger<'a> {
    pub fn new(rt: &'a Runtime) -> Self {
        Self { rt, images: HashMap::new(), untouched: 0 }
    }

    /// How many sites so far were serving as last seen, with no engine call made for them:
    /// when that is every site, the engine looks as the pass's listing says.
    pub fn untouched(&self) -> usize {
        self.untouched
    }

    async fn image(&mut self, reference: &str) -> Result<Option<ImageFacts>> {
        if let Some(f) = self.images.get(reference) {
            return Ok(f.clone());
        }
        let facts = self.rt.engine.image(reference).await?;
        self.images.insert(reference.to_owned(), facts.clone());
        Ok(facts)
    }

    /// Converges one site. `current` is its container (by name) if any; `next` a leftover
    /// replacement container of an update interrupted by a crash.
    pub async fn site(
        &mut self,
        d: &DesiredSite,
        current: Option<&ContainerInfo>,
        next: Option<&ContainerInfo>,
    ) -> Result<Outcome> {
        let site = &d.site;
        let rt = self.rt;
        let mut current = current.cloned();
        if let Some(n) = next {
            if self.serves(site.id, n).await {
                // An update switched nginx to it and stopped before it retired the old one.
                tracing::info!(site.id = %site.id, container = %n.name, "Finishing an interrupted update");
                if let Some(old) = current.take() {
                    self.retire(&old.name).await?;
                }
                let name = rt.names.container(site.id);
                rt.engine.rename(&n.name, &name).await?;
                current = Some(ContainerInfo { name, ..n.clone() });
            } else {
                tracing::info!(site.id = %site.id, container = %n.name, "Removing an unfinished replacement container");
                rt.engine.remove(&n.name).await?;
            }
        }
        let current = current.as_ref();
        if site.status == SiteStatus::Deleting {
            rt.engine.remove(&rt.names.container(site.id)).await?;
            if site.purge_volume {
                // Every volume of the site: the one it uses, the default one, and those it no
                // longer uses (kept after a restore).
                let mut filter = rt.names.label_filter();
                filter.push(format!("{}={}", crate::names::LABEL_SITE, site.id));
                let mut volumes = rt.engine.volumes(&filter).await?;
                volumes.push(rt.names.volume(site.id));
                volumes.extend(site.data_volume.clone());
                volumes.sort();
                volumes.dedup();
                for v in volumes {
                    rt.engine.remove_volume(&v).await?;
                }
            }
            rt.backoff.clear(site.id);
            tracing::info!(site.id = %site.id, purge = site.purge_volume, "Removed a deleted site's container");
            return Ok(Outcome::Deleted);
        }
        let mut obs = Observed::of(site);
        // Below, each way out that made no engine call for the site counts it untouched.
        let spec = match spec_of(d) {
            Ok(spec) => spec,
            Err(reason) => {
                self.untouched += usize::from(next.is_none());
                return Ok(Outcome::Observed(failed(obs, reason)));
            }
        };
        let hash = spec.hash();
        let suspended = d.customer_status != CustomerStatus::Active;
        let want_running = site.desired_state == DesiredState::Running && !suspended;
        let idle_status = if suspended { SiteStatus::Suspended } else { SiteStatus::Stopped };

        let Some(container) = current else {
            if !want_running {
                self.untouched += usize::from(next.is_none());
                obs.status = Some(idle_status);
                obs.status_reason = None;
                obs.container_id = None;
                obs.address = None;
                obs.health = None;
                obs.running_image = None;
                return Ok(Outcome::Observed(obs));
            }
            let attempt = attempt_key(&hash, site);
            if rt.backoff.waiting(site.id, &attempt, Instant::now()) {
                // Failed a moment ago for this very specification: what is recorded stays true.
                self.untouched += usize::from(next.is_none());
                return Ok(Outcome::Observed(obs));
            }
            if site.container_id.is_some() {
                drift(rt, "missing_container");
                tracing::warn!(site.id = %site.id, "Site container is missing; creating it again");
            }
            return Ok(Outcome::Observed(match self.create(&spec, &rt.names.container(site.id)).await {
                Ok(detail) => {
                    tracing::info!(site.id = %site.id, container = %detail.id, "Created the site container");
                    rt.backoff.clear(site.id);
                    let port = self.port_of(&spec.image);
                    let mut o = self.running(obs, &detail, rt.names.network(site.customer_id), port);
                    o.spec_hash = Some(hash);
                    o.failed_spec_hash = None;
                    o.last_error = None;
                    o
                }
                Err(e) => {
                    let error = e.to_string();
                    let (wait, news) = rt.backoff.failed(site.id, &attempt, &error, Instant::now());
                    if news {
                        tracing::warn!(site.id = %site.id, %error, retry_in_s = wait.as_secs(), "Cannot create the site container; retrying with backoff until the site changes");
                    } else {
                        tracing::debug!(site.id = %site.id, %error, retry_in_s = wait.as_secs(), "Still cannot create the site container");
                    }
                    obs.running_image = None;
                    failed(obs, error)
                }
            }));
        };

        let name = container.name.clone();
        obs.spec_hash = container.spec_hash().map(str::to_owned);
        // An owner's change (image, environment, plan) calls for a new container; one that
        // already failed is not tried again until the site changes.
        let mut touched = next.is_some();
        if want_running
            && container.spec_hash() != Some(hash.as_str())
            && site.failed_spec_hash.as_deref() != Some(hash.as_str())
        {
            drift(rt, "outdated_container");
            touched = true;
            match self.replace(&spec, container).await {
                Replaced::Done(detail) => {
                    tracing::info!(site.id = %site.id, container = %detail.id, "Replaced the site container after a change");
                    let port = self.port_of(&spec.image);
                    let mut o = self.running(obs, &detail, rt.names.network(site.customer_id), port);
                    o.spec_hash = Some(hash);
                    o.failed_spec_hash = None;
                    o.last_error = None;
                    return Ok(Outcome::Observed(o));
                }
                Replaced::Deferred(reason) => {
                    tracing::warn!(site.id = %site.id, %reason, "Update deferred; the current container keeps serving");
                }
                Replaced::Failed(reason) => {
                    tracing::warn!(site.id = %site.id, %reason, "The new container failed its check; the old one keeps serving");
                    obs.failed_spec_hash = Some(hash.clone());
                    obs.last_error = Some(reason);
                }
            }
        }
        let mut acted = false;
        if want_running && !container.running() && container.state != "restarting" {
            drift(rt, "stopped_container");
            tracing::warn!(site.id = %site.id, state = %container.state, "Site container is not running; starting it");
            acted = true;
            if let Err(e) = rt.engine.start(&name).await {
                rt.inspections.forget(&name);
                return Ok(Outcome::Observed(failed(obs, format!("cannot start the container: {e}"))));
            }
        } else if !want_running && container.running() {
            tracing::info!(site.id = %site.id, suspended, "Stopping the site container");
            acted = true;
            rt.engine.stop(&name).await?;
        }
        // Unchanged since the last look (by its listing, and no event named it): what that
        // inspection saw still holds. After a start or stop it is looked at afresh.
        let now = Instant::now();
        let known = if acted {
            rt.inspections.forget(&name);
            Err(None)
        } else {
            rt.inspections.get(container, now).map_err(Some)
        };
        touched |= acted || known.is_err();
        let detail = match known {
            Ok(detail) => detail,
            Err(generation) => {
                let Some(detail) = rt.engine.inspect(&name).await? else {
                    return Ok(Outcome::Observed(obs));
                };
                if let Some(generation) = generation {
                    rt.inspections.put(container, &detail, now, generation);
                }
                detail
            }
        };
        if !want_running {
            self.untouched += usize::from(!touched);
            obs.status = Some(idle_status);
            obs.status_reason = None;
            obs.container_id = Some(detail.id.clone());
            obs.running_image = None;
            obs.address = None;
            obs.health = None;
            obs.restart_count = detail.restart_count as i32;
            return Ok(Outcome::Observed(obs));
        }
        if !detail.running {
            let reason = detail.error.clone().unwrap_or_else(|| format!("the container is {}", detail.state));
            obs.container_id = Some(detail.id.clone());
            obs.restart_count = detail.restart_count as i32;
            obs.address = None;
            obs.running_image = None;
            return Ok(Outcome::Observed(failed(obs, reason)));
        }
        let networks_before = detail.networks.clone();
        let detail = match self.heal_networks(&spec, &name, detail).await {
            Ok(detail) => {
                if detail.networks != networks_before {
                    touched = true;
                    rt.inspections.forget(&name);
                }
                detail
            }
            Err(reason) => {
                rt.inspections.forget(&name);
                tracing::warn!(site.id = %site.id, %reason, "Cannot put the site container back on its network");
                return Ok(Outcome::Observed(failed(obs, reason)));
            }
        };
        let failed_update = obs.failed_spec_hash.as_deref() == Some(hash.as_str());
        let last_error = obs.last_error.clone();
        let network = rt.names.network(site.customer_id);
        // The port the container was made for (its label): this pass may not have looked at the
        // image, and the image may have changed since.
        let mut o = self.running(obs, &detail, network.clone(), container.port());
        if o.address.is_none() {
            return Ok(Outcome::Observed(failed(o, format!("the container has no address on its network {network}"))));
        }
        if failed_update {
            o.status_reason = Some(format!(
                "the last update failed and the previous container keeps serving: {}",
                last_error.unwrap_or_default()
            ));
        } else {
            // Running as wanted: an error from before (a missing image since built, a crash
            // since healed) is no longer true.
            o.last_error = None;
        }
        if site.address.is_some() && o.address != site.address {
            tracing::info!(site.id = %site.id, address = ?o.address, "The site's address changed; nginx follows");
        }
        self.untouched += usize::from(!touched);
        Ok(Outcome::Serving(o))
    }

    /// Whether nginx sends the site's visitors to this container's address.
    async fn serves(&self, site: Uuid, container: &ContainerInfo) -> bool {
        let Some(customer) = container.customer_id() else { return false };
        let Some(ip) = container.addresses.get(&self.rt.names.network(customer)) else { return false };
        self.rt.ingress.routed(site).await == Some(format!("{ip}:{}", container.port()))
    }

    /// A running site container belongs on its customer's network and on no other: taken off it
    /// (by hand, or by a daemon hiccup), nginx cannot reach it and visitors get errors; attached
    /// to another, it is no longer isolated. Puts it back on (with its site-name alias), takes
    /// it off the others, and returns what the container looks like then.
    async fn heal_networks(
        &self,
        spec: &SiteSpec,
        name: &str,
        detail: ContainerDetail,
    ) -> std::result::Result<ContainerDetail, String> {
        let rt = self.rt;
        let wanted = rt.names.network(spec.customer_id);
        let attached = detail.networks.contains(&wanted);
        let foreign: Vec<&String> = detail.networks.iter().filter(|n| **n != wanted).collect();
        if attached && foreign.is_empty() {
            return Ok(detail);
        }
        if !attached {
            drift(rt, "detached_network");
            tracing::warn!(site.id = %spec.site_id, network = %wanted, "Site container is off its network; attaching it again");
            let attach = async {
                rt.engine.ensure_network(&wanted, rt.names.customer_labels(spec.customer_id)).await?;
                rt.engine.connect_network(&wanted, name, vec![spec.name.clone()]).await
            };
            attach
                .await
                .map_err(|e| format!("the container is off its network {wanted} and cannot be put back: {e}"))?;
        }
        for net in foreign {
            drift(rt, "foreign_network");
            tracing::warn!(site.id = %spec.site_id, network = %net, "Site container is on another network; detaching it");
            rt.engine
                .disconnect_network(net, name)
                .await
                .map_err(|e| format!("the container is also on network {net} and cannot be taken off it: {e}"))?;
        }
        rt.engine.inspect(name).await.map_err(|e| e.to_string())?.ok_or_else(|| "the container vanished".to_owned())
    }

    /// Stops a container (its process gets the stop timeout to finish what it serves) and
    /// removes it.
    async fn retire(&self, name: &str) -> Result<()> {
        if let Err(e) = self.rt.engine.stop(name).await {
            tracing::debug!(container = name, error = %e, "Cannot stop the container before removing it");
        }
        self.rt.engine.remove(name).await
    }

    fn running(&self, mut obs: Observed, detail: &ContainerDetail, network: String, port: u16) -> Observed {
        obs.status = Some(if detail.running { SiteStatus::Running } else { SiteStatus::Provisioning });
        obs.status_reason = None;
        obs.container_id = Some(detail.id.clone());
        obs.address = detail.addresses.get(&network).map(|ip| format!("{ip}:{port}"));
        obs.health = Some(detail.health.clone().unwrap_or_else(|| "none".into()));
        obs.restart_count = detail.restart_count as i32;
        obs.running_image = detail.image.clone();
        obs
    }

    fn port_of(&self, image: &str) -> u16 {
        self.images.get(image).cloned().flatten().unwrap_or_default().port()
    }

    /// Creates (or adopts) and starts a container of `spec` named `name`, on the customer's
    /// network, with the site's volume.
    async fn create(&mut self, spec: &SiteSpec, name: &str) -> Result<ContainerDetail> {
        let rt = self.rt;
        let facts = self.image(&spec.image).await?.ok_or_else(|| RuntimeError::ImageMissing(spec.image.clone()))?;
        rt.engine
            .ensure_network(&rt.names.network(spec.customer_id), rt.names.customer_labels(spec.customer_id))
            .await?;
        rt.engine.ensure_volume(&spec.volume(&rt.names), rt.names.site_labels(spec.site_id, spec.customer_id)).await?;
        match rt.engine.create(name, hardened(&rt.names, spec, &facts)).await? {
            Created::New(_) => {}
            // Another reconciler made it first (same deterministic name): adopt it.
            Created::Existing => {
                tracing::info!(site.id = %spec.site_id, container = name, "Adopted an existing container")
            }
        }
        rt.engine.start(name).await?;
        rt.engine.inspect(name).await?.ok_or_else(|| RuntimeError::NotFound(format!("container {name}")))
    }

    /// Replaces a site's container without a visitor noticing: starts the new one beside it,
    /// waits until it answers, switches nginx to it and lets requests in flight to the old one
    /// finish, then stops and removes the old one and gives the new one the site's name. Until
    /// the switch, a failure removes the new container and leaves the old one serving.
    async fn replace(&mut self, spec: &SiteSpec, old: &ContainerInfo) -> Replaced {
        let rt = self.rt;
        let next = rt.names.next_container(spec.site_id);
        if !rt.ingress.knows_routes().await {
            return Replaced::Deferred("the ingress has not installed a configuration since Berth started".into());
        }
        let started = async {
            rt.engine.remove(&next).await.map_err(|e| e.to_string())?;
            self.create(spec, &next).await.map_err(|e| e.to_string())?;
            self.wait_healthy(&next, spec).await
        }
        .await;
        if let Err(reason) = started {
            let logs = self.tail(&next, 5).await;
            let _ = rt.engine.remove(&next).await;
            return Replaced::Failed(if logs.is_empty() { reason } else { format!("{reason}; last output: {logs}") });
        }
        let network = rt.names.network(spec.customer_id);
        let address = match rt.engine.inspect(&next).await {
            Ok(Some(d)) => d.addresses.get(&network).map(|ip| format!("{ip}:{}", self.port_of(&spec.image))),
            _ => None,
        };
        let switched = match &address {
            Some(address) => rt.ingress.switch(spec.site_id, address).await.map_err(|e| e.to_string()),
            None => Err(format!("the new container has no address on network {network}")),
        };
        if let Err(reason) = switched {
            let _ = rt.engine.remove(&next).await;
            return Replaced::Deferred(format!("cannot send visitors to the new container: {reason}"));
        }
        // From here on nginx sends visitors to the new container: it is the site's, whatever
        // else fails (the next pass finishes an interrupted swap, see `site`).
        let name = rt.names.container(spec.site_id);
        let finished = async {
            self.retire(&old.name).await?;
            rt.engine.rename(&next, &name).await
        }
        .await;
        let serving = if let Err(e) = finished {
            tracing::warn!(site.id = %spec.site_id, error = %e, "Cannot retire the old container yet; the next pass finishes the update");
            next
        } else {
            name
        };
        match rt.engine.inspect(&serving).await {
            Ok(Some(detail)) => Replaced::Done(detail),
            Ok(None) => Replaced::Deferred("the new container vanished".into()),
            Err(e) => Replaced::Deferred(e.to_string()),
        }
    }

    /// Healthy: running, not reported unhealthy by Docker, and its port accepts connections
    /// twice in a row.
    async fn wait_healthy(&self, name: &str, spec: &SiteSpec) -> std::result::Result<(), String> {
        let network = self.rt.names.network(spec.customer_id);
        let port = self.port_of(&spec.image);
        let deadline = Instant::now() + self.rt.health_timeout;
        let mut good = 0;
        while Instant::now() < deadline {
            let detail =
                self.rt.engine.inspect(name).await.map_err(|e| e.to_string())?.ok_or("the new container vanished")?;
            if !detail.running || detail.state == "restarting" {
                return Err(detail.error.unwrap_or_else(|| format!("the new container is {}", detail.state)));
            }
            if detail.health.as_deref() == Some("unhealthy") {
                return Err("the new container reports itself unhealthy".into());
            }
            let answered = match detail.addresses.get(&network) {
                Some(ip) => {
                    tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect((ip.as_str(), port)))
                        .await
                        .is_ok_and(|r| r.is_ok())
                }
                None => false,
            };
            good = if answered { good + 1 } else { 0 };
            if good >= 2 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Err(format!("the new container did not answer on port {port} within {} s", self.rt.health_timeout.as_secs()))
    }

    async fn tail(&self, name: &str, lines: u32) -> String {
        let mut stream = self.rt.engine.logs(name, lines, false);
        let mut out = Vec::new();
        while let Some(Ok(line)) = stream.next().await {
            out.push(line.line);
        }
        out.join(" | ")
    }

    /// Removes Berth containers no site owns (a restore drill's scratch container only once it
    /// expired), and customer networks no live site uses.
    pub async fn orphans(&self, sites: &[DesiredSite], containers: &[ContainerInfo]) -> Result<bool> {
        let rt = self.rt;
        let mut removed = false;
        let known: HashSet<Uuid> = sites.iter().map(|d| d.site.id).collect();
        let now = chrono::Utc::now().timestamp();
        for c in containers {
            if c.site_id().is_some_and(|id| known.contains(&id)) {
                continue;
            }
            // A restore drill's scratch container is its drill's until it expires; after that
            // it is a crashed drill's leftover, removed like any orphan.
            if c.drill_expires().is_some_and(|expires| expires > now) {
                continue;
            }
            drift(rt, "orphan_container");
            tracing::warn!(container = %c.name, "Removing a Berth container that no site owns");
            // One that cannot be removed yet (its removal already under way) must not keep the
            // networks below from being cleaned up: the next pass tries it again.
            removed = true;
            if let Err(e) = rt.engine.remove(&c.id).await {
                tracing::warn!(container = %c.name, error = %e, "Cannot remove the container yet");
            }
        }
        let live: HashSet<String> = sites
            .iter()
            .filter(|d| d.site.status != SiteStatus::Deleting)
            .map(|d| rt.names.network(d.site.customer_id))
            .collect();
        for net in rt.engine.networks(&rt.names.label_filter()).await? {
            if live.contains(&net) {
                continue;
            }
            drift(rt, "orphan_network");
            tracing::info!(network = %net, "Removing a customer network with no sites left");
            removed = true;
            if let Err(e) = rt.engine.remove_network(&net).await {
                // Still attached (a container being removed): the next pass finishes it.
                tracing::warn!(network = %net, error = %e, "Cannot remove the network yet");
            }
        }
        Ok(removed)
    }
}

/// How many site addresses a pass probes at once. Connects on the local bridge take well under
/// a millisecond, but one after the other they added up to most of an idle pass at a few
/// hundred sites; a bound keeps a pass from opening hundreds of sockets at once (and a burst of
/// unreachable sites from holding more than this many timeouts).
pub const PROBE_CONCURRENCY: usize = 32;

/// Probes the address of every serving site (see [`probe`]), [`PROBE_CONCURRENCY`] at a time;
/// the observations come back in the order given. Each item: the site, what was observed, and
/// whether the site was already recorded unreachable.
pub async fn probe_all(items: Vec<(Uuid, Observed, bool)>) -> Vec<Observed> {
    futures_util::stream::iter(items)
        .map(|(site, mut o, was_unreachable)| async move {
            probe(&mut o, site, was_unreachable).await;
            o
        })
        .buffered(PROBE_CONCURRENCY)
        .collect()
        .await
}

/// Checks what visitors get: a running site whose address takes no connection is reported
/// `unreachable` (nginx answers its visitors with an error), with the reason, whatever the
/// container's own health check says. `was_unreachable` keeps the log to one line per incident.
async fn probe(o: &mut Observed, site: Uuid, was_unreachable: bool) {
    let Some(address) = o.address.clone() else { return };
    let error = match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(address.as_str())).await {
        Ok(Ok(_)) => return,
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
    };
    let reason = format!("visitors get an error: nginx cannot connect to {address} ({error})");
    if !was_unreachable {
        tracing::warn!(site.id = %site, %address, %error, "A running site cannot be reached at its address");
    }
    o.health = Some(UNREACHABLE.to_owned());
    o.status_reason = Some(reason);
}

fn failed(mut obs: Observed, reason: String) -> Observed {
    obs.status = Some(SiteStatus::Failed);
    obs.status_reason = Some(reason.clone());
    obs.last_error = Some(reason);
    obs.address = None;
    obs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_restarts_for_a_new_specification() {
        let b = Backoffs::default();
        let (site, t0) = (Uuid::now_v7(), Instant::now());
        assert!(!b.waiting(site, "a", t0));
        let waits: Vec<(Duration, bool)> = (0..8).map(|_| b.failed(site, "a", "image x is missing", t0)).collect();
        let secs: Vec<u64> = waits.iter().map(|(w, _)| w.as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(waits.iter().filter(|(_, news)| *news).count(), 1, "the same error is news once");
        assert!(b.waiting(site, "a", t0 + Duration::from_secs(299)));
        assert!(!b.waiting(site, "a", t0 + Duration::from_secs(300)));
        assert!(!b.waiting(site, "b", t0), "a changed site tries at once");
        assert!(b.failed(site, "a", "another error", t0).1, "another error is news");
        assert_eq!(b.failed(site, "b", "image y is missing", t0), (BACKOFF_FIRST, true));
        b.clear(site);
        assert!(!b.waiting(site, "b", t0));
    }
}
