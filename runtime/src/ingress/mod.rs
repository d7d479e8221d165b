//! The ingress: nginx routing each site's domains to its container.
//!
//! A new configuration is rendered, written to a staging file, checked with `nginx -t`, then
//! renamed over the live file (an atomic swap on one filesystem) and nginx is reloaded. A
//! failing check leaves the live file alone and is returned (and logged, and counted).
//! `managed` mode runs Berth's own nginx ([`process`]); `external` writes into a directory the
//! system nginx includes and reloads that nginx; `off` does nothing.
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
use std::time::UNIX_EPOCH;

use berth_core::config::{Config, IngressMode};
use berth_core::store::site_state::Route;
use berth_integrations::tls::CertStore;
use tokio::process::Command;
use tokio::sync::Mutex;

use crate::error::{Result, RuntimeError};

const MANAGED_SITES: &str = "sites.conf";
const EXTERNAL_SITES: &str = "berth-sites.conf";
/// Never matches an `include …/*.conf` of the system nginx.
const STAGING_SUFFIX: &str = ".staging";

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
    /// The configuration in force, to skip a reload when nothing changed.
    applied: Mutex<Option<String>>,
    process: process::Supervisor,
}

impl Ingress {
    pub fn new(config: &Config) -> Self {
        Self {
            mode: config.runtime.ingress_mode,
            nginx: config.runtime.nginx_binary.clone(),
            dir: absolute(&config.runtime.ingress_dir),
            listen: config.runtime.ingress_listen,
            tls_listen: config.runtime.ingress_tls_listen,
            certs: CertStore::new(absolute(&config.tls_dir())),
            challenge_dir: absolute(&config.acme_challenge_dir()),
            applied: Mutex::new(None),
            process: process::Supervisor::default(),
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

    /// Prepares the directory and, in managed mode, starts nginx with an empty site list.
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
            self.process.ensure_running(&self.nginx, &self.dir).await?;
        }
        Ok(())
    }

    /// Keeps Berth's nginx running (managed mode): restarts it if it died.
    pub async fn supervise(&self) -> Result<()> {
        if self.mode == IngressMode::Managed {
            self.process.ensure_running(&self.nginx, &self.dir).await?;
        }
        Ok(())
    }

    /// Renders the routes and installs them when they differ from the configuration in force.
    /// Returns whether a new configuration was installed.
    pub async fn apply(&self, routes: &[Route]) -> Result<bool> {
        if self.mode == IngressMode::Off {
            return Ok(false);
        }
        let certs = self.certificates(routes).await;
        let text = render::sites(routes, &self.layout()?, &certs)?;
        let mut applied = self.applied.lock().await;
        if applied.as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        self.install(&text).await?;
        *applied = Some(text);
        Ok(true)
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

    async fn reload(&self) -> Result<()> {
        let mut cmd = Command::new(&self.nginx);
        cmd.arg("-e").arg("stderr");
        if self.mode == IngressMode::Managed {
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

    /// Stops Berth's nginx (managed mode).
    pub async fn stop(&self) {
        if self.mode == IngressMode::Managed {
            self.process.stop().await;
        }
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
