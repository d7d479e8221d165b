//! Site backups: asking for one, listing them, downloading one as a tar stream, and reading a
//! site's data volume for the backup job. The API, the console and the portal call these, so
//! they cannot diverge; every call is scoped by the caller through the store first, so another
//! tenant's site or backup is not found before anything reaches the repository.

use std::io::{Read, Write};
use std::path::PathBuf;

use berth_backup::{Backups, Source};
use berth_core::access::Caller;
use berth_core::entities::backups;
use berth_core::store::backups::{self as store, Requested};
use berth_core::store::page::{Page, Paged};
use berth_core::types::{BackupKind, BackupStatus};
use berth_runtime::Runtime;
use futures_util::stream::{BoxStream, StreamExt};
use uuid::Uuid;

use crate::{Error, Ops, Result};

/// A backup's data as a tar stream, and the name to offer the file under.
pub struct Download {
    pub filename: String,
    pub stream: BoxStream<'static, std::io::Result<Vec<u8>>>,
}

impl Ops {
    pub(crate) fn backups(&self) -> Result<&Backups> {
        self.backups.as_deref().ok_or(Error::NoBackups)
    }

    /// Records a backup of the site and queues its `backup.site` job (202 on the API).
    pub async fn request_backup(&self, caller: &Caller, site_id: Uuid, kind: BackupKind) -> Result<Requested> {
        let target = self.backups()?.target().as_str();
        Ok(store::request(&self.db, caller, site_id, kind, target).await?)
    }

    /// The site's backups, newest first.
    pub async fn list_backups(&self, caller: &Caller, site_id: Uuid, page: Page) -> Result<Paged<backups::Model>> {
        Ok(store::list_for_site(&self.db, caller, site_id, page).await?)
    }

    pub async fn get_backup(&self, caller: &Caller, site_id: Uuid, backup_id: Uuid) -> Result<backups::Model> {
        Ok(store::get(&self.db, caller, site_id, backup_id).await?)
    }

    /// The data of a succeeded backup as a tar stream, read from the customer's repository as it
    /// is sent. A backup that did not succeed has nothing to download (409).
    pub async fn download_backup(&self, caller: &Caller, site_id: Uuid, backup_id: Uuid) -> Result<Download> {
        let backup = store::get(&self.db, caller, site_id, backup_id).await?;
        let snapshot = match (&backup.status, &backup.snapshot_id) {
            (BackupStatus::Succeeded, Some(id)) => id.clone(),
            (BackupStatus::Pruned, _) => {
                return Err(Error::Store(berth_core::Error::Conflict(format!(
                    "backup {backup_id} was removed by the retention policy; its data is no longer kept"
                ))))
            }
            _ => {
                return Err(Error::Store(berth_core::Error::Conflict(format!(
                    "backup {backup_id} has not succeeded; only a verified backup can be downloaded"
                ))))
            }
        };
        let repo = self.backups()?.repository(backup.customer_id);
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(8);
        let writer = ChannelWriter { tx: tx.clone(), buf: Vec::with_capacity(CHUNK) };
        tokio::spawn(async move {
            if let Err(e) = repo.dump_tar(&snapshot, Box::new(writer)).await {
                tracing::warn!(backup.id = %backup_id, error = %e, "A backup download ended early");
                // The client sees a broken transfer, never a short tar that looks whole.
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        let time = backup.created_at.format("%Y%m%dT%H%M%SZ");
        Ok(Download { filename: format!("site-{site_id}-{time}.tar"), stream: stream.boxed() })
    }
}

const CHUNK: usize = 256 * 1024;

/// Hands what the (blocking) tar writer produces to the response stream in chunks; a closed
/// receiver (the client went away) ends the writing.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the download was closed"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// Where the backup job reads a site's data volume from, while the site keeps serving:
///
/// - the engine is local (`unix://`; Berth runs as root on the Docker host) and the volume's
///   mountpoint is readable here: that directory, read in place;
/// - otherwise: the engine's archive API on the site's container (running or not), a tar stream
///   unpacked into the staging area.
///
/// `data_volume` is the site's `sites.data_volume`: after a restore the site uses another volume
/// than its original one, and that is the data to back up.
pub async fn volume_source(
    runtime: &Runtime,
    engine_is_local: bool,
    site_id: Uuid,
    data_volume: Option<&str>,
) -> anyhow::Result<Source> {
    let volume = data_volume.map_or_else(|| runtime.names.volume(site_id), str::to_owned);
    if engine_is_local {
        match runtime.engine.volume_mountpoint(&volume).await? {
            None => anyhow::bail!("the site's data volume {volume} does not exist"),
            Some(mountpoint) => {
                let path = PathBuf::from(&mountpoint);
                if tokio::fs::read_dir(&path).await.is_ok() {
                    return Ok(Source::Dir(path));
                }
                tracing::info!(
                    volume,
                    mountpoint,
                    "Volume mountpoint not readable here; reading it through the engine's archive API"
                );
            }
        }
    }
    let container = runtime.names.container(site_id);
    let Some(destination) = runtime.engine.mount_destination(&container, &volume).await? else {
        anyhow::bail!("no container of the site mounts its data volume {volume}, so it cannot be read remotely");
    };
    let root = destination.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_owned();
    if root.is_empty() {
        anyhow::bail!("the site's volume is mounted at `{destination}`, which cannot be archived on its own");
    }
    let stream = runtime.engine.archive(&container, &destination);
    Ok(Source::Tar { archive: Box::new(BlockingStream::new(stream)), root })
}

/// An async byte stream read as a blocking [`Read`] (on the backup engine's blocking thread).
struct BlockingStream {
    handle: tokio::runtime::Handle,
    stream: BoxStream<'static, berth_runtime::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

impl BlockingStream {
    fn new(stream: BoxStream<'static, berth_runtime::Result<Vec<u8>>>) -> Self {
        Self { handle: tokio::runtime::Handle::current(), stream, buf: Vec::new(), pos: 0 }
    }
}

impl Read for BlockingStream {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.handle.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
