//! The container engine seen from Berth: a small trait with one real implementation
//! ([`crate::docker::DockerEngine`]). The trait is the seam for unit tests of the logic around
//! it; the integration tests drive the real engine.

use std::collections::HashMap;

use async_trait::async_trait;
use bollard::models::ContainerCreateBody;
use futures_util::stream::BoxStream;
use uuid::Uuid;

use crate::error::Result;
use crate::names::{LABEL_CUSTOMER, LABEL_DRILL, LABEL_DRILL_EXPIRES, LABEL_PORT, LABEL_SITE, LABEL_SPEC};
use crate::spec::ImageFacts;

/// One Berth container as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    /// Without Docker's leading slash.
    pub name: String,
    pub labels: HashMap<String, String>,
    /// Docker's state word: `created`, `running`, `exited`, `restarting`, ...
    pub state: String,
    /// Docker's status line, e.g. `Up 3 minutes (healthy)`.
    pub status: String,
    /// IP address per attached network.
    pub addresses: HashMap<String, String>,
}

impl ContainerInfo {
    pub fn site_id(&self) -> Option<Uuid> {
        self.labels.get(LABEL_SITE).and_then(|v| v.parse().ok())
    }
    pub fn customer_id(&self) -> Option<Uuid> {
        self.labels.get(LABEL_CUSTOMER).and_then(|v| v.parse().ok())
    }
    pub fn spec_hash(&self) -> Option<&str> {
        self.labels.get(LABEL_SPEC).map(String::as_str)
    }
    pub fn port(&self) -> u16 {
        self.labels.get(LABEL_PORT).and_then(|p| p.parse().ok()).unwrap_or(crate::spec::DEFAULT_PORT)
    }
    pub fn running(&self) -> bool {
        self.state == "running"
    }
    /// The restore drill this is a scratch container of.
    pub fn drill_id(&self) -> Option<Uuid> {
        self.labels.get(LABEL_DRILL).and_then(|v| v.parse().ok())
    }
    /// When a drill's scratch container becomes a leftover (unix seconds); unreadable: now.
    pub fn drill_expires(&self) -> Option<i64> {
        self.drill_id()?;
        Some(self.labels.get(LABEL_DRILL_EXPIRES).and_then(|v| v.parse().ok()).unwrap_or(0))
    }
    /// The health word of the status line: `healthy`, `unhealthy`, `starting`, or `none`.
    pub fn health(&self) -> &'static str {
        health_of(&self.status)
    }
}

pub fn health_of(status: &str) -> &'static str {
    if status.contains("(healthy)") {
        "healthy"
    } else if status.contains("(unhealthy)") {
        "unhealthy"
    } else if status.contains("(health: starting)") {
        "starting"
    } else {
        "none"
    }
}

/// The parts of an inspect the reconciler records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerDetail {
    pub id: String,
    /// The image reference the container was created from.
    pub image: Option<String>,
    pub running: bool,
    pub restart_count: i64,
    pub health: Option<String>,
    /// Why the container is not running, when Docker says (exit code, OOM, start error).
    pub error: Option<String>,
    /// Docker's state word (`running`, `restarting`, `exited`, ...).
    pub state: String,
    /// Every network the container is attached to, sorted.
    pub networks: Vec<String>,
    /// IP address per attached network.
    pub addresses: HashMap<String, String>,
}

/// One event of the engine about an object of Berth's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EngineEvent {
    /// `container`, `network`, ...
    pub kind: String,
    /// Docker's action, e.g. `start`, `die`, `health_status: healthy`.
    pub action: String,
    /// The object's id.
    pub id: String,
    /// The object's name, when the engine says (containers: without the leading slash).
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    New(String),
    /// A container of that name was there already (another reconciler made it): adopt it.
    Existing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: LogStream,
    pub line: String,
}

#[async_trait]
pub trait Engine: Send + Sync {
    async fn ping(&self) -> Result<()>;
    /// `None` when the image is not on this host.
    async fn image(&self, reference: &str) -> Result<Option<ImageFacts>>;
    /// Creates the network unless it exists.
    async fn ensure_network(&self, name: &str, labels: HashMap<String, String>) -> Result<()>;
    /// Removes a network; a missing one is not an error.
    async fn remove_network(&self, name: &str) -> Result<()>;
    /// Attaches a container to a network, reachable there by `aliases` too.
    async fn connect_network(&self, network: &str, container: &str, aliases: Vec<String>) -> Result<()>;
    /// Detaches a container from a network; not being attached is not an error.
    async fn disconnect_network(&self, network: &str, container: &str) -> Result<()>;
    /// Network names carrying all of these `key=value` labels.
    async fn networks(&self, labels: &[String]) -> Result<Vec<String>>;
    /// Every container (running or not) carrying all of these `key=value` labels.
    async fn containers(&self, labels: &[String]) -> Result<Vec<ContainerInfo>>;
    async fn create(&self, name: &str, body: ContainerCreateBody) -> Result<Created>;
    /// `None` when there is no such container.
    async fn inspect(&self, name: &str) -> Result<Option<ContainerDetail>>;
    async fn start(&self, name: &str) -> Result<()>;
    async fn stop(&self, name: &str) -> Result<()>;
    async fn restart(&self, name: &str) -> Result<()>;
    /// Force-removes a container; a missing one is not an error.
    async fn remove(&self, name: &str) -> Result<()>;
    async fn rename(&self, name: &str, new_name: &str) -> Result<()>;
    /// Creates a named volume unless it exists.
    async fn ensure_volume(&self, name: &str, labels: HashMap<String, String>) -> Result<()>;
    /// Removes a volume; a missing one is not an error.
    async fn remove_volume(&self, name: &str) -> Result<()>;
    async fn volumes(&self, labels: &[String]) -> Result<Vec<String>>;
    /// The directory on the engine's host that holds a volume's data (Docker's `Mountpoint`);
    /// `None` when there is no such volume. Only meaningful to a process on that host.
    async fn volume_mountpoint(&self, name: &str) -> Result<Option<String>>;
    /// Where `volume` is mounted inside `container`; `None` when the container does not exist or
    /// does not mount it.
    async fn mount_destination(&self, container: &str, volume: &str) -> Result<Option<String>>;
    /// `path` inside a container (running or not) as a tar stream: the engine's archive API.
    /// Entries are named after the last component of `path` (`data/...` for `/data`).
    fn archive(&self, container: &str, path: &str) -> BoxStream<'static, Result<Vec<u8>>>;
    /// The last `tail` lines of a container's output, then (with `follow`) new lines as they come.
    fn logs(&self, name: &str, tail: u32, follow: bool) -> BoxStream<'static, Result<LogLine>>;
    /// One item per container, network or volume event on objects with these labels.
    fn events(&self, labels: &[String]) -> BoxStream<'static, Result<EngineEvent>>;
}
