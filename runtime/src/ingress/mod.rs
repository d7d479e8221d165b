//! The ingress: nginx routing each site's domains to its container.
//!
//! A new configuration is rendered, written to a staging file, checked with `nginx -t`, then
//! renamed over the live file (an atomic swap on one filesystem) and nginx is reloaded. A
//! failing check leaves the live file alone and is returned (and logged, and counted).
//! `managed` mode runs Berth's own nginx ([`process`]); `external` writes into a directory the
//! system nginx includes and reloads that nginx; `off` does nothing.

pub mod process;
pub mod render;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use berth_core::config::{Config, IngressMode};
use berth_core::store::site_state::Route;
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
    /// The configuration in force, to skip a reload when nothing changed.
    applied: Mutex<Option<String>>,
    process: process::Supervisor,
}

impl Ingress {
    pub fn new(config: &Config) -> Self {
        Self {
            mode: config.ingress_mode,
            nginx: config.nginx_binary.clone(),
            // nginx resolves -c and include paths against its prefix: hand it absolute ones
            // (the embedded default, ./data/nginx, is relative).
            dir: std::path::absolute(&config.ingress_dir).unwrap_or_else(|_| config.ingress_dir.clone()),
            listen: config.ingress_listen,
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

    fn sites_path(&self) -> PathBuf {
        match self.mode {
            IngressMode::External => self.dir.join(EXTERNAL_SITES),
            _ => self.dir.join(MANAGED_SITES),
        }
    }

    fn dir_str(&self) -> Result<&str> {
        self.dir.to_str().filter(|s| s.chars().all(render::nginx_safe)).ok_or_else(|| {
            RuntimeError::Ingress(format!(
                "ingress directory {} has characters nginx configuration cannot carry",
                self.dir.display()
            ))
        })
    }

    /// Prepares the directory and, in managed mode, starts nginx with an empty site list.
    pub async fn start(&self) -> Result<()> {
        if self.mode == IngressMode::Off {
            return Ok(());
        }
        let dir = self.dir_str()?.to_owned();
        create_dir(&self.dir).await?;
        if self.mode == IngressMode::Managed {
            create_dir(&self.dir.join("tmp")).await?;
            let sites = self.sites_path();
            if tokio::fs::metadata(&sites).await.is_err() {
                let empty = render::sites(&[], self.listen, true)?;
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
        let text = render::sites(routes, self.listen, self.mode == IngressMode::Managed)?;
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

async fn create_dir(dir: &Path) -> Result<()> {
    tokio::fs::create_dir_all(dir).await.map_err(|e| RuntimeError::Io(format!("cannot create {}: {e}", dir.display())))
}

async fn write(path: &Path, text: &str) -> Result<()> {
    tokio::fs::write(path, text).await.map_err(|e| RuntimeError::Io(format!("cannot write {}: {e}", path.display())))
}
