//! The ingress: nginx routing each site's domains to its container.
//!
//! A new configuration is rendered, written to a staging file, checked with `nginx -t`, then
//! renamed over the live file (an atomic swap on one filesystem) and nginx is reloaded. A
//! failing check leaves the live file alone and is returned (and logged, and counted).
//! `managed` mode runs Berth's own nginx ([`process`]); `external` writes into a directory the
//! system nginx includes and reloads that nginx; `off` does nothing.
//!
//! In managed mode nginx is a daemon of its own: it keeps serving while Berth is stopped,
//! killed or upgraded, a starting Berth adopts it (pid file, configuration check, reload), and
//! only [`Ingress::stop`] (`berth ingress stop`, or `stop_on_exit`) takes it down. An operator's
//! stop leaves a marker file, so a running Berth does not start it again behind their back;
//! [`Ingress::start`] (Berth's start-up, `berth ingress start`) removes it.
//!
//! [`Ingress::switch`] moves one site to a new address within a reconcile pass (an update's
//! replacement container) and waits until nginx no longer sends anything to the old one.
//!
//! Every HTTP server also answers ACME HTTP-01 challenges from the challenge directory. With
//! `BERTH_INGRESS_TLS_LISTEN` set, every routed host whose certificate is complete in the
//! certificate store also gets an HTTPS server there. The certificates' modification times are
//! part of the rendered text, so a new or renewed certificate is installed by the same
//! render-check-swap-reload path as any other change, at the reconciler's next pass.

pub mod process;
pub mod render;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, UNIX_EPOCH};

use berth_core::config::{Config, IngressMode};
use berth_core::store::site_state::Route;
use berth_integrations::tls::CertStore;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::process::Command;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::error::{Result, RuntimeError};

const MANAGED_SITES: &str = "sites.conf";
const EXTERNAL_SITES: &str = "berth-sites.conf";
/// Never matches an `include …/*.conf` of the system nginx.
const STAGING_SUFFIX: &str = ".staging";
/// Written by an operator's `berth ingress stop`: a running Berth leaves nginx down.
const STOPPED_MARKER: &str = "stopped-by-operator";
/// How long nginx gets to finish the requests in flight when it is stopped.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// At most this much of nginx's log is forwarded per pass (the rest at the next ones).
const LOG_CHUNK: u64 = 64 * 1024;

/// The configuration in force, and the routes it was rendered from.
#[derive(Default)]
struct Applied {
    text: Option<String>,
    routes: Option<Vec<Route>>,
}

pub struct Ingress {
    mode: IngressMode,
    nginx: PathBuf,
    dir: PathBuf,
    listen: SocketAddr,
    tls_listen: Option<SocketAddr>,
    /// Site certificates, as onboarding stores them.
    certs: CertStore,
    /// ACME HTTP-01 tokens, as the ACME issuer publishes them.
    challenge_dir: PathBuf,
    /// The configuration in force (to skip a reload when nothing changed) and its routes (to
    /// move one site within a pass).
    applied: Mutex<Applied>,
    /// Berth's own nginx (managed mode).
    daemon: process::Nginx,
    /// How far nginx's log has been forwarded to Berth's (managed mode).
    log_offset: Mutex<Option<u64>>,
    /// How long requests in flight to a site's old address may take after a switch.
    drain_timeout: Duration,
    /// Whether Berth's clean shutdown also stops its nginx.
    stop_on_exit: bool,
}

impl Ingress {
    pub fn new(config: &Config) -> Self {
        let rt = &config.runtime;
        let dir = absolute(&rt.ingress_dir);
        Self {
            mode: rt.ingress_mode,
            nginx: rt.nginx_binary.clone(),
            daemon: process::Nginx::new(&rt.nginx_binary, &dir),
            dir,
            listen: rt.ingress_listen,
            tls_listen: rt.ingress_tls_listen,
            certs: CertStore::new(absolute(&config.tls_dir())),
            challenge_dir: absolute(&config.acme_challenge_dir()),
            applied: Mutex::new(Applied::default()),
            log_offset: Mutex::new(None),
            drain_timeout: Duration::from_secs(rt.site_drain_seconds),
            stop_on_exit: rt.ingress_stop_on_exit,
        }
    }

    pub fn mode(&self) -> IngressMode {
        self.mode
    }

    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    pub fn tls_listen(&self) -> Option<SocketAddr> {
        self.tls_listen
    }

    fn sites_path(&self) -> PathBuf {
        match self.mode {
            IngressMode::External => self.dir.join(EXTERNAL_SITES),
            _ => self.dir.join(MANAGED_SITES),
        }
    }

    fn dir_str(&self) -> Result<&str> {
        nginx_path(&self.dir, "ingress directory")
    }

    fn layout(&self) -> Result<render::Layout> {
        Ok(render::Layout {
            listen: self.listen,
            tls_listen: self.tls_listen,
            default_server: self.mode == IngressMode::Managed,
            challenge_dir: nginx_path(&self.challenge_dir, "ACME challenge directory")?.to_owned(),
        })
    }

    /// The complete certificates of the routed hosts (none when HTTPS is off).
    async fn certificates(&self, routes: &[Route]) -> BTreeMap<String, render::CertFiles> {
        let mut found = BTreeMap::new();
        if self.tls_listen.is_none() {
            return found;
        }
        for host in routes.iter().flat_map(|r| &r.domains) {
            if found.contains_key(host) {
                continue;
            }
            if let Some(files) = self.certificate(host).await {
                found.insert(host.clone(), files);
            }
        }
        found
    }

    /// A host's certificate if it is complete: the issuer marker (which the store writes last)
    /// names a known issuer and both PEM files are there and not empty. Anything else (not
    /// issued yet, half written, unreadable) counts as no certificate: the host stays on HTTP.
    async fn certificate(&self, host: &str) -> Option<render::CertFiles> {
        // Domains are validated before they are stored; the host also names a directory here,
        // so refuse anything that could step outside the store regardless.
        let plain = !host.is_empty()
            && !host.starts_with('.')
            && !host.contains("..")
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !plain {
            return None;
        }
        self.certs.issuer(host).await?;
        let (chain, key) = self.certs.paths(host);
        let mut stamp = 0;
        for path in [&chain, &key] {
            let meta = tokio::fs::metadata(path).await.ok()?;
            if !meta.is_file() || meta.len() == 0 {
                return None;
            }
            // The newest file's age goes into the rendered text: a renewal rewrites both.
            let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
            stamp = stamp.max(modified);
        }
        Some(render::CertFiles { chain: chain.to_str()?.to_owned(), key: key.to_str()?.to_owned(), stamp })
    }

    /// Prepares the directory and, in managed mode, makes sure Berth's nginx runs: it adopts the
    /// one already serving (reloaded with the configuration just written and checked) or starts
    /// one with the site list last written (empty the first time). Clears an operator's stop.
    pub async fn start(&self) -> Result<()> {
        if self.mode == IngressMode::Off {
            return Ok(());
        }
        let dir = self.dir_str()?.to_owned();
        create_dir(&self.dir).await?;
        create_dir(&self.challenge_dir).await?;
        // Tokens are public by design (the CA fetches them over plain HTTP) and nginx's workers
        // may run as another user than Berth: they must be able to read the directory.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let open = std::fs::Permissions::from_mode(0o755);
            tokio::fs::set_permissions(&self.challenge_dir, open)
                .await
                .map_err(|e| RuntimeError::Io(format!("cannot open up {}: {e}", self.challenge_dir.display())))?;
        }
        if self.mode == IngressMode::Managed {
            create_dir(&self.dir.join("tmp")).await?;
            let sites = self.sites_path();
            if tokio::fs::metadata(&sites).await.is_err() {
                let empty = render::sites(&[], &self.layout()?, &BTreeMap::new())?;
                write(&sites, &empty).await?;
            }
            let main = render::main_conf(&dir, &sites.display().to_string())?;
            write(&self.dir.join("nginx.conf"), &main).await?;
            self.test(&self.dir.join("nginx.conf")).await?;
            let _ = tokio::fs::remove_file(self.dir.join(STOPPED_MARKER)).await;
            self.forward_log_from_now().await;
            match self.daemon.master() {
                Some(pid) => {
                    // It may run an older main configuration (Berth was upgraded) or site list.
                    self.reload().await?;
                    tracing::info!(pid, prefix = %self.dir.display(), "Adopted the running nginx");
                }
                None => {
                    let pid = self.daemon.launch().await?;
                    tracing::info!(pid, prefix = %self.dir.display(), "Started Berth's nginx");
                }
            }
        }
        Ok(())
    }

    /// Keeps Berth's nginx running (managed mode): starts it again if it died, unless an
    /// operator stopped it. Forwards what nginx logged since the last call.
    pub async fn supervise(&self) -> Result<()> {
        if self.mode != IngressMode::Managed {
            return Ok(());
        }
        self.forward_log().await;
        if self.daemon.master().is_some() {
            return Ok(());
        }
        if tokio::fs::try_exists(self.dir.join(STOPPED_MARKER)).await.unwrap_or(false) {
            tracing::debug!("Berth's nginx was stopped by an operator; leaving it down");
            return Ok(());
        }
        tracing::warn!(prefix = %self.dir.display(), "Berth's nginx is not running; starting it again");
        let pid = self.daemon.launch().await?;
        tracing::info!(pid, "Started Berth's nginx");
        Ok(())
    }

    /// Skips what nginx logged before now (an adopted nginx's history is not Berth's to repeat).
    async fn forward_log_from_now(&self) {
        let len = tokio::fs::metadata(self.daemon.error_log()).await.map_or(0, |m| m.len());
        *self.log_offset.lock().await = Some(len);
    }

    /// Copies the complete lines nginx added to its log since the last call into Berth's log.
    async fn forward_log(&self) {
        let mut offset = self.log_offset.lock().await;
        let Ok(mut file) = tokio::fs::File::open(self.daemon.error_log()).await else { return };
        let Ok(len) = file.metadata().await.map(|m| m.len()) else { return };
        // Truncated or replaced (log rotation): start over at its beginning.
        let start = offset.filter(|o| *o <= len).unwrap_or(0);
        if start == len || file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
            *offset = Some(start);
            return;
        }
        let mut buf = Vec::new();
        if (&mut file).take(LOG_CHUNK).read_to_end(&mut buf).await.is_err() {
            return;
        }
        let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        for line in String::from_utf8_lossy(&buf[..complete]).lines().filter(|l| !l.trim().is_empty()) {
            tracing::warn!(target: "berth::nginx", "{line}");
        }
        *offset = Some(start + complete as u64);
    }

    /// Renders the routes and installs them when they differ from the configuration in force.
    /// Returns whether a new configuration was installed.
    pub async fn apply(&self, routes: &[Route]) -> Result<bool> {
        if self.mode == IngressMode::Off {
            return Ok(false);
        }
        let mut applied = self.applied.lock().await;
        self.apply_locked(&mut applied, routes.to_vec()).await
    }

    async fn apply_locked(&self, applied: &mut Applied, routes: Vec<Route>) -> Result<bool> {
        let certs = self.certificates(&routes).await;
        let text = render::sites(&routes, &self.layout()?, &certs)?;
        if applied.text.as_deref() == Some(text.as_str()) {
            applied.routes = Some(routes);
            return Ok(false);
        }
        self.install(&text).await?;
        applied.text = Some(text);
        applied.routes = Some(routes);
        Ok(true)
    }

    /// Whether [`switch`](Self::switch) knows what nginx routes: with no ingress there is nothing
    /// to switch; otherwise a configuration must have been installed (or found current) since
    /// Berth started.
    pub async fn knows_routes(&self) -> bool {
        self.mode == IngressMode::Off || self.applied.lock().await.routes.is_some()
    }

    /// The address nginx sends a site's visitors to, as last installed; `None` when the site is
    /// not routed (or nothing was installed since Berth started).
    pub async fn routed(&self, site: Uuid) -> Option<String> {
        let applied = self.applied.lock().await;
        applied.routes.as_ref()?.iter().find(|r| r.site_id == site).map(|r| r.address.clone())
    }

    /// Sends a routed site's visitors to `address` from now on, then waits (up to the drain
    /// timeout) until nginx has nothing left in flight to the old address: after this, the old
    /// container can be stopped without a visitor noticing. Returns `false` (and does nothing)
    /// when the site is not routed, which also means no visitor reaches its old address.
    pub async fn switch(&self, site: Uuid, address: &str) -> Result<bool> {
        if self.mode == IngressMode::Off {
            return Ok(false);
        }
        let mut applied = self.applied.lock().await;
        let Some(routes) = applied.routes.clone() else { return Ok(false) };
        if !routes.iter().any(|r| r.site_id == site && r.address != address) {
            return Ok(false);
        }
        let routes = routes
            .into_iter()
            .map(|mut r| {
                if r.site_id == site {
                    r.address = address.to_owned();
                }
                r
            })
            .collect();
        // The generation of workers that may still send requests to the old address.
        let before = self.daemon.master().map(|pid| (pid, self.daemon.workers(pid)));
        if !self.apply_locked(&mut applied, routes).await? {
            return Ok(false);
        }
        drop(applied);
        self.drain(before).await?;
        Ok(true)
    }

    /// Waits until a reload has taken effect and the workers of the previous configuration have
    /// finished their requests. Berth sees its own nginx's workers; the system nginx's
    /// (external mode) it cannot, so it waits the whole drain timeout. An error: nginx did not
    /// take up the new configuration, and still sends visitors to the old address.
    async fn drain(&self, before: Option<(u32, std::collections::HashSet<u32>)>) -> Result<()> {
        match (self.mode, before) {
            (IngressMode::Managed, Some((master, old))) => {
                match self.daemon.wait_generation(master, &old, self.drain_timeout).await {
                    process::Generation::Replaced => {}
                    process::Generation::StillDraining => tracing::warn!(
                        timeout_s = self.drain_timeout.as_secs(),
                        "nginx still serves requests of the previous configuration after the drain timeout"
                    ),
                    process::Generation::NotReloaded => {
                        return Err(RuntimeError::Ingress(format!(
                            "nginx did not take up the new configuration within {} s (see {})",
                            self.drain_timeout.as_secs(),
                            self.daemon.error_log().display()
                        )))
                    }
                }
            }
            // Berth's nginx is not running: nothing is in flight.
            (IngressMode::Managed, None) => {}
            _ => tokio::time::sleep(self.drain_timeout).await,
        }
        Ok(())
    }

    /// Stages `sites_conf`, checks it with `nginx -t`, swaps it in and reloads nginx. On a
    /// failed check the live configuration is untouched and the error says why.
    pub async fn install(&self, sites_conf: &str) -> Result<()> {
        let dir = self.dir_str()?.to_owned();
        create_dir(&self.dir).await?;
        let live = self.sites_path();
        let staging = PathBuf::from(format!("{}{STAGING_SUFFIX}", live.display()));
        write(&staging, sites_conf).await?;
        let check_path = self.dir.join(".berth-check.conf.staging");
        write(&check_path, &render::check_conf(&dir, &staging.display().to_string())?).await?;
        let checked = self.test(&check_path).await;
        let _ = tokio::fs::remove_file(&check_path).await;
        if let Err(e) = checked {
            let _ = tokio::fs::remove_file(&staging).await;
            return Err(e);
        }
        tokio::fs::rename(&staging, &live)
            .await
            .map_err(|e| RuntimeError::Io(format!("cannot swap in {}: {e}", live.display())))?;
        self.reload().await
    }

    /// `nginx -t` on a configuration file.
    async fn test(&self, conf: &Path) -> Result<()> {
        let out = Command::new(&self.nginx)
            .arg("-t")
            .arg("-q")
            .arg("-e")
            .arg("stderr")
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(conf)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| RuntimeError::Ingress(format!("cannot run {}: {e}", self.nginx.display())))?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(RuntimeError::Ingress(format!("nginx refused the configuration: {}", stderr.trim())))
    }

    /// Has nginx load the live files. Berth's own nginx, when it is not running (an operator
    /// stopped it, or it died and the reconciler starts it again), reads them when it starts.
    async fn reload(&self) -> Result<()> {
        let mut cmd = Command::new(&self.nginx);
        cmd.arg("-e").arg("stderr");
        if self.mode == IngressMode::Managed {
            if self.daemon.master().is_none() {
                return Ok(());
            }
            cmd.arg("-p").arg(&self.dir).arg("-c").arg(self.dir.join("nginx.conf"));
        }
        let out = cmd
            .arg("-s")
            .arg("reload")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| RuntimeError::Ingress(format!("cannot run {}: {e}", self.nginx.display())))?;
        if out.status.success() {
            return Ok(());
        }
        Err(RuntimeError::Ingress(format!("nginx reload failed: {}", String::from_utf8_lossy(&out.stderr).trim())))
    }

    /// Berth is shutting down: its nginx keeps serving the sites unless the settings say to stop
    /// it with Berth.
    pub async fn on_exit(&self) {
        if self.mode != IngressMode::Managed {
            return;
        }
        if self.stop_on_exit {
            if let Some(pid) = self.daemon.stop(STOP_GRACE).await {
                tracing::info!(pid, "Stopped Berth's nginx with Berth");
            }
        } else if let Some(pid) = self.daemon.master() {
            tracing::info!(pid, "Berth's nginx keeps serving the sites; `berth ingress stop` stops it");
        }
    }

    /// Takes Berth's nginx down (managed mode) and keeps it down: a running Berth will not start
    /// it again until [`start`](Self::start). Requests in flight are finished first. Returns the
    /// stopped master's pid, or `None` when none ran.
    pub async fn stop(&self) -> Result<Option<u32>> {
        match self.mode {
            IngressMode::Managed => {}
            IngressMode::External => {
                return Err(RuntimeError::Ingress(
                    "BERTH_INGRESS_MODE is external: the system nginx is not Berth's to stop; use its service manager"
                        .into(),
                ))
            }
            IngressMode::Off => {
                return Err(RuntimeError::Ingress("BERTH_INGRESS_MODE is off: there is no nginx".into()))
            }
        }
        create_dir(&self.dir).await?;
        write(&self.dir.join(STOPPED_MARKER), "Stopped by `berth ingress stop`; Berth's next start removes this.\n")
            .await?;
        Ok(self.daemon.stop(STOP_GRACE).await)
    }
}

/// nginx resolves relative paths against its prefix: hand it absolute ones (the embedded
/// default, ./data, is relative).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// A path as nginx configuration text, refused when it has characters nginx cannot carry.
fn nginx_path<'p>(path: &'p Path, what: &str) -> Result<&'p str> {
    path.to_str().filter(|s| !s.is_empty() && s.chars().all(render::nginx_safe)).ok_or_else(|| {
        RuntimeError::Ingress(format!("{what} {} has characters nginx configuration cannot carry", path.display()))
    })
}

async fn create_dir(dir: &Path) -> Result<()> {
    tokio::fs::create_dir_all(dir).await.map_err(|e| RuntimeError::Io(format!("cannot create {}: {e}", dir.display())))
}

async fn write(path: &Path, text: &str) -> Result<()> {
    tokio::fs::write(path, text).await.map_err(|e| RuntimeError::Io(format!("cannot write {}: {e}", path.display())))
}
