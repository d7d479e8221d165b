//! [`Engine`] on the Docker Engine API, through bollard.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptionsBuilder, EventsOptions, ListContainersOptions,
    ListNetworksOptions, ListVolumesOptions, LogsOptions, RemoveContainerOptions, RemoveVolumeOptions,
    RenameContainerOptions, RestartContainerOptions, StopContainerOptions,
};
use bollard::{ClientVersion, Docker};
use futures_util::stream::{BoxStream, StreamExt};
use ipnet::IpNet;

use crate::engine::{ContainerDetail, ContainerInfo, Created, Engine, EngineEvent, LogLine, LogStream};
use crate::error::{Result, RuntimeError};
use crate::spec::ImageFacts;
use crate::subnets::SubnetPool;

/// Per-request timeout towards the engine.
const REQUEST_TIMEOUT_SECONDS: u64 = 120;
/// The oldest Engine API Berth speaks (Docker 20.10); a newer engine is asked for its version.
const MIN_API: ClientVersion = ClientVersion { major_version: 1, minor_version: 41 };

#[derive(Clone)]
pub struct DockerEngine {
    docker: Docker,
    subnets: Option<SubnetPool>,
    /// Seconds a site's process gets to exit after its stop signal before Docker kills it.
    stop_timeout: i32,
}

impl DockerEngine {
    /// A client of `host` (`unix:///var/run/docker.sock`, `tcp://…`). Nothing is sent yet, so
    /// Berth starts while the engine is down. It speaks API 1.41 (Docker 20.10), which newer
    /// engines still serve: bollard's own default is newer than engines still in service.
    pub fn connect(host: &str) -> Result<Self> {
        let docker = if let Some(path) = host.strip_prefix("unix://") {
            Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECONDS, &MIN_API)?
        } else {
            Docker::connect_with_http(host, REQUEST_TIMEOUT_SECONDS, &MIN_API)?
        };
        // Docker's own default until `with_stop_timeout` sets BERTH_SITE_STOP_TIMEOUT_SECONDS.
        Ok(Self { docker, subnets: None, stop_timeout: 10 })
    }

    /// How long a stop (or restart) waits for the site's process to exit before it is killed.
    pub fn with_stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        self
    }

    /// Customer networks get their subnets from `pool` instead of Docker's small default pools.
    pub fn with_subnets(mut self, pool: SubnetPool) -> Self {
        self.subnets = Some(pool);
        self
    }

    /// Every subnet any network on this engine uses, Berth's or not.
    async fn used_subnets(&self) -> Result<Vec<IpNet>> {
        let all = self.docker.list_networks(None::<ListNetworksOptions>).await?;
        Ok(all
            .iter()
            .filter_map(|n| n.ipam.as_ref()?.config.as_ref())
            .flatten()
            .filter_map(|c| c.subnet.as_deref()?.parse().ok())
            .collect())
    }

    pub fn client(&self) -> &Docker {
        &self.docker
    }
}

fn label_filters(labels: &[String]) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), labels.to_vec())])
}

/// Treats "not found" as done: removing what is already gone is the goal reached.
fn gone_is_ok(res: std::result::Result<(), bollard::errors::Error>) -> Result<()> {
    match res.map_err(RuntimeError::from) {
        Err(RuntimeError::NotFound(_)) => Ok(()),
        other => other,
    }
}

#[async_trait]
impl Engine for DockerEngine {
    async fn ping(&self) -> Result<()> {
        tokio::time::timeout(Duration::from_secs(3), self.docker.ping())
            .await
            .map_err(|_| RuntimeError::Unavailable("no answer within 3 s".into()))??;
        Ok(())
    }

    async fn image(&self, reference: &str) -> Result<Option<ImageFacts>> {
        let inspect = match self.docker.inspect_image(reference).await.map_err(RuntimeError::from) {
            Ok(i) => i,
            Err(RuntimeError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let config = inspect.config.unwrap_or_default();
        let mut volumes = config.volumes.unwrap_or_default();
        volumes.sort();
        let mut ports: Vec<u16> = config
            .exposed_ports
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.strip_suffix("/tcp").and_then(|n| n.parse().ok()))
            .collect();
        ports.sort_unstable();
        Ok(Some(ImageFacts {
            user: config.user.filter(|u| !u.is_empty()),
            data_path: volumes.into_iter().next(),
            port: ports.first().copied(),
        }))
    }

    async fn ensure_network(&self, name: &str, labels: HashMap<String, String>) -> Result<()> {
        let existing = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(HashMap::from([("name".to_owned(), vec![name.to_owned()])])),
            }))
            .await?;
        // The name filter matches substrings: compare exactly.
        if existing.iter().any(|n| n.name.as_deref() == Some(name)) {
            return Ok(());
        }
        // Two creations may pick the same free subnet at once; the loser re-reads and retries.
        for _ in 0..5 {
            let ipam = match &self.subnets {
                None => None,
                Some(pool) => {
                    let subnet = pool.next_free(&self.used_subnets().await?).ok_or_else(|| {
                        RuntimeError::Docker(format!("no free /{} subnet left in {}", pool.prefix, pool.pool))
                    })?;
                    Some(Ipam {
                        config: Some(vec![IpamConfig { subnet: Some(subnet.to_string()), ..Default::default() }]),
                        ..Default::default()
                    })
                }
            };
            let request = NetworkCreateRequest {
                name: name.to_owned(),
                driver: Some("bridge".to_owned()),
                labels: Some(labels.clone()),
                ipam,
                ..Default::default()
            };
            match self.docker.create_network(request).await.map_err(RuntimeError::from) {
                // Another process created it in between: it exists, which is what we wanted.
                Ok(_) | Err(RuntimeError::Conflict(_)) => return Ok(()),
                Err(e) if e.to_string().contains("overlap") => continue,
                Err(e) => return Err(e),
            }
        }
        Err(RuntimeError::Docker(format!("could not find a free subnet for network {name}")))
    }

    async fn remove_network(&self, name: &str) -> Result<()> {
        gone_is_ok(self.docker.remove_network(name).await)
    }

    async fn connect_network(&self, network: &str, container: &str, aliases: Vec<String>) -> Result<()> {
        let request = NetworkConnectRequest {
            container: container.to_owned(),
            endpoint_config: Some(EndpointSettings { aliases: Some(aliases), ..Default::default() }),
        };
        Ok(self.docker.connect_network(network, request).await?)
    }

    async fn disconnect_network(&self, network: &str, container: &str) -> Result<()> {
        let request = NetworkDisconnectRequest { container: container.to_owned(), force: Some(true) };
        gone_is_ok(self.docker.disconnect_network(network, request).await)
    }

    async fn networks(&self, labels: &[String]) -> Result<Vec<String>> {
        let list =
            self.docker.list_networks(Some(ListNetworksOptions { filters: Some(label_filters(labels)) })).await?;
        Ok(list.into_iter().filter_map(|n| n.name).collect())
    }

    async fn containers(&self, labels: &[String]) -> Result<Vec<ContainerInfo>> {
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(label_filters(labels)),
                ..Default::default()
            }))
            .await?;
        Ok(list
            .into_iter()
            .map(|c| ContainerInfo {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_default(),
                labels: c.labels.unwrap_or_default(),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                status: c.status.unwrap_or_default(),
                addresses: c
                    .network_settings
                    .and_then(|n| n.networks)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(net, ep)| ep.ip_address.filter(|ip| !ip.is_empty()).map(|ip| (net, ip)))
                    .collect(),
            })
            .collect())
    }

    async fn create(&self, name: &str, body: ContainerCreateBody) -> Result<Created> {
        let options = CreateContainerOptions { name: Some(name.to_owned()), ..Default::default() };
        match self.docker.create_container(Some(options), body).await.map_err(RuntimeError::from) {
            Ok(res) => Ok(Created::New(res.id)),
            Err(RuntimeError::Conflict(_)) => Ok(Created::Existing),
            Err(RuntimeError::NotFound(msg)) if msg.contains("image") => {
                Err(RuntimeError::ImageMissing(msg.trim_start_matches("No such image: ").to_owned()))
            }
            Err(e) => Err(e),
        }
    }

    async fn inspect(&self, name: &str) -> Result<Option<ContainerDetail>> {
        let c = match self.docker.inspect_container(name, None).await.map_err(RuntimeError::from) {
            Ok(c) => c,
            Err(RuntimeError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let state = c.state.unwrap_or_default();
        let status_word = state.status;
        let running = state.running.unwrap_or(false);
        let error = if running {
            None
        } else if state.oom_killed == Some(true) {
            Some("the site ran out of memory (OOM-killed)".to_owned())
        } else if let Some(e) = state.error.filter(|e| !e.is_empty()) {
            Some(e)
        } else {
            state.exit_code.filter(|c| *c != 0).map(|c| format!("the site's process exited with status {c}"))
        };
        let endpoints = c.network_settings.and_then(|n| n.networks).unwrap_or_default();
        let mut networks: Vec<String> = endpoints.keys().cloned().collect();
        networks.sort();
        let addresses = endpoints
            .into_iter()
            .filter_map(|(net, ep)| ep.ip_address.filter(|ip| !ip.is_empty()).map(|ip| (net, ip)))
            .collect();
        Ok(Some(ContainerDetail {
            id: c.id.unwrap_or_default(),
            image: c.config.and_then(|cfg| cfg.image).filter(|i| !i.is_empty()),
            state: status_word.map(|s| s.to_string()).unwrap_or_default(),
            networks,
            addresses,
            running,
            restart_count: c.restart_count.unwrap_or(0),
            health: state.health.and_then(|h| h.status).map(|s| s.to_string()).filter(|s| !s.is_empty()),
            error,
        }))
    }

    async fn start(&self, name: &str) -> Result<()> {
        match self.docker.start_container(name, None).await {
            // 304: already running.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            other => Ok(other?),
        }
    }

    async fn stop(&self, name: &str) -> Result<()> {
        let options = StopContainerOptions { t: Some(self.stop_timeout), signal: None };
        match self.docker.stop_container(name, Some(options)).await {
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            other => Ok(other?),
        }
    }

    async fn restart(&self, name: &str) -> Result<()> {
        let options = RestartContainerOptions { t: Some(self.stop_timeout), signal: None };
        Ok(self.docker.restart_container(name, Some(options)).await?)
    }

    async fn remove(&self, name: &str) -> Result<()> {
        // `v`: anonymous volumes go with the container; named ones (site data) never do.
        let options = RemoveContainerOptions { force: true, v: true, link: false };
        match self.docker.remove_container(name, Some(options)).await.map_err(RuntimeError::from) {
            Ok(()) | Err(RuntimeError::NotFound(_)) => Ok(()),
            // "removal already in progress": someone else is removing it.
            Err(RuntimeError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        Ok(self.docker.rename_container(name, RenameContainerOptions { name: new_name.to_owned() }).await?)
    }

    async fn ensure_volume(&self, name: &str, labels: HashMap<String, String>) -> Result<()> {
        let request = VolumeCreateRequest { name: Some(name.to_owned()), labels: Some(labels), ..Default::default() };
        // Creating an existing local volume succeeds and leaves it as it is.
        self.docker.create_volume(request).await?;
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        gone_is_ok(self.docker.remove_volume(name, Some(RemoveVolumeOptions { force: true })).await)
    }

    async fn volumes(&self, labels: &[String]) -> Result<Vec<String>> {
        let res = self.docker.list_volumes(Some(ListVolumesOptions { filters: Some(label_filters(labels)) })).await?;
        Ok(res.volumes.unwrap_or_default().into_iter().map(|v| v.name).collect())
    }

    async fn volume_mountpoint(&self, name: &str) -> Result<Option<String>> {
        match self.docker.inspect_volume(name).await.map_err(RuntimeError::from) {
            Ok(v) => Ok(Some(v.mountpoint).filter(|m| !m.is_empty())),
            Err(RuntimeError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn mount_destination(&self, container: &str, volume: &str) -> Result<Option<String>> {
        let c = match self.docker.inspect_container(container, None).await.map_err(RuntimeError::from) {
            Ok(c) => c,
            Err(RuntimeError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(c.mounts
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.name.as_deref() == Some(volume))
            .and_then(|m| m.destination)
            .filter(|d| !d.is_empty()))
    }

    fn archive(&self, container: &str, path: &str) -> BoxStream<'static, Result<Vec<u8>>> {
        let options = DownloadFromContainerOptionsBuilder::new().path(path).build();
        self.docker
            .download_from_container(container, Some(options))
            .map(|chunk| chunk.map(|b| b.to_vec()).map_err(RuntimeError::from))
            .boxed()
    }

    fn logs(&self, name: &str, tail: u32, follow: bool) -> BoxStream<'static, Result<LogLine>> {
        let options = LogsOptions { follow, stdout: true, stderr: true, tail: tail.to_string(), ..Default::default() };
        self.docker
            .logs(name, Some(options))
            .filter_map(|item| async move {
                match item {
                    Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => Some(Ok(LogLine {
                        stream: LogStream::Stdout,
                        line: String::from_utf8_lossy(&message).trim_end_matches(['\r', '\n']).to_owned(),
                    })),
                    Ok(LogOutput::StdErr { message }) => Some(Ok(LogLine {
                        stream: LogStream::Stderr,
                        line: String::from_utf8_lossy(&message).trim_end_matches(['\r', '\n']).to_owned(),
                    })),
                    Ok(LogOutput::StdIn { .. }) => None,
                    Err(e) => Some(Err(RuntimeError::from(e))),
                }
            })
            .boxed()
    }

    fn events(&self, labels: &[String]) -> BoxStream<'static, Result<EngineEvent>> {
        let mut filters = label_filters(labels);
        filters.insert("type".to_owned(), vec!["container".to_owned(), "network".to_owned()]);
        // A network event carries the network's labels, not the container's: attaching a site
        // container to a network that is not Berth's (which breaks its isolation) would pass
        // unseen through the label filter. Connects and disconnects are followed on every
        // network, in a second stream.
        let mut any_network = HashMap::new();
        any_network.insert("type".to_owned(), vec!["network".to_owned()]);
        any_network.insert("event".to_owned(), vec!["connect".to_owned(), "disconnect".to_owned()]);
        // State changes only: every health check also emits exec_* events, which at a few
        // hundred sites would keep the reconciler busy for nothing.
        let actions = [
            "create",
            "start",
            "restart",
            "stop",
            "die",
            "kill",
            "oom",
            "destroy",
            "rename",
            "health_status",
            "connect",
            "disconnect",
        ];
        filters.insert("event".to_owned(), actions.iter().map(|a| (*a).to_owned()).collect());
        let stream = |filters| {
            self.docker
                .events(Some(EventsOptions { filters: Some(filters), ..Default::default() }))
                .map(|e| {
                    e.map(|m| {
                        let actor = m.actor.unwrap_or_default();
                        EngineEvent {
                            kind: m.typ.map(|t| t.to_string()).unwrap_or_default(),
                            action: m.action.unwrap_or_default(),
                            id: actor.id.unwrap_or_default(),
                            name: actor.attributes.and_then(|mut a| a.remove("name")),
                        }
                    })
                    .map_err(RuntimeError::from)
                })
                // Either stream ending ends the follow (as an error, so the follower starts over):
                // the other one alone would miss events.
                .chain(futures_util::stream::once(async {
                    Err(RuntimeError::Unavailable("the engine's event stream ended".into()))
                }))
        };
        futures_util::stream::select(stream(filters), stream(any_network)).boxed()
    }
}
