//! Resource usage of site containers, for the metrics collector.
//!
//! When Berth runs on the Docker host, the numbers come straight from the kernel: the
//! container's cgroup files (v2 or v1, whichever the host mounts) and `/proc/<pid>/net/dev` of a
//! process inside it. Reading them takes microseconds and costs the engine nothing, where
//! Docker's stats API takes most of a second per call. Only the container's own cgroup is read,
//! never the root cgroup's `memory.stat`. With a remote engine (or a container whose cgroup is
//! not found) the collector falls back to one-shot calls of the stats API.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;

use crate::docker::DockerEngine;
use crate::{Result, RuntimeError};

/// Cumulative counters and current levels of one container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerStats {
    /// CPU time used since the container started, in microseconds.
    pub cpu_usec: u64,
    /// Memory in use, without the reclaimable page cache (what `docker stats` shows).
    pub memory_bytes: u64,
    /// The container's memory limit; 0 when unlimited.
    pub memory_limit_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
    pub pids: u64,
}

/// Where the host keeps container cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupLayout {
    /// The unified hierarchy (cgroup v2) mounted at this root.
    V2(PathBuf),
    /// Per-controller hierarchies (cgroup v1) under this root.
    V1(PathBuf),
}

impl CgroupLayout {
    /// The layout of this host, if it has one Berth can read.
    pub fn detect() -> Option<Self> {
        Self::detect_under(Path::new("/sys/fs/cgroup"))
    }

    fn detect_under(root: &Path) -> Option<Self> {
        if root.join("cgroup.controllers").is_file() {
            Some(Self::V2(root.to_path_buf()))
        } else if root.join("memory").is_dir() && root.join("cpuacct").is_dir() {
            Some(Self::V1(root.to_path_buf()))
        } else {
            None
        }
    }

    /// The container's cgroup directory for `controller` (ignored on v2), under either of
    /// Docker's cgroup drivers (cgroupfs: `docker/<id>`; systemd: `system.slice/docker-<id>.scope`).
    fn dir(&self, controller: &str, id: &str) -> Option<PathBuf> {
        let base = match self {
            Self::V2(root) => root.clone(),
            Self::V1(root) => root.join(controller),
        };
        [base.join("docker").join(id), base.join("system.slice").join(format!("docker-{id}.scope"))]
            .into_iter()
            .find(|d| d.is_dir())
    }

    /// Reads a container's usage from its cgroup; `None` when this host has no cgroup for it
    /// (a remote engine, another cgroup driver), so the caller can ask Docker instead.
    pub fn read(&self, container_id: &str) -> Option<ContainerStats> {
        // A full id only: anything else must never become part of a path.
        if container_id.len() != 64 || !container_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        match self {
            Self::V2(_) => {
                let dir = self.dir("", container_id)?;
                let cpu = keyed(&read(&dir.join("cpu.stat")), "usage_usec");
                let current = number(&read(&dir.join("memory.current")));
                let inactive = keyed(&read(&dir.join("memory.stat")), "inactive_file");
                let (block_read, block_write) = io_stat(&read(&dir.join("io.stat")));
                let (rx, tx) = net_of(&dir);
                Some(ContainerStats {
                    cpu_usec: cpu,
                    memory_bytes: current.saturating_sub(inactive),
                    memory_limit_bytes: number(&read(&dir.join("memory.max"))),
                    net_rx_bytes: rx,
                    net_tx_bytes: tx,
                    block_read_bytes: block_read,
                    block_write_bytes: block_write,
                    pids: number(&read(&dir.join("pids.current"))),
                })
            }
            Self::V1(_) => {
                let cpu = self.dir("cpuacct", container_id)?;
                let memory = self.dir("memory", container_id)?;
                let usage = number(&read(&memory.join("memory.usage_in_bytes")));
                let inactive = keyed(&read(&memory.join("memory.stat")), "total_inactive_file");
                let limit = number(&read(&memory.join("memory.limit_in_bytes")));
                let (block_read, block_write) = self
                    .dir("blkio", container_id)
                    .map(|d| blkio_v1(&read(&d.join("blkio.throttle.io_service_bytes"))))
                    .unwrap_or_default();
                let pids = self.dir("pids", container_id).map(|d| number(&read(&d.join("pids.current"))));
                let (rx, tx) = net_of(&cpu);
                Some(ContainerStats {
                    cpu_usec: number(&read(&cpu.join("cpuacct.usage"))) / 1000,
                    memory_bytes: usage.saturating_sub(inactive),
                    // v1 reports "no limit" as a huge page-aligned number.
                    memory_limit_bytes: if limit >= 1 << 62 { 0 } else { limit },
                    net_rx_bytes: rx,
                    net_tx_bytes: tx,
                    block_read_bytes: block_read,
                    block_write_bytes: block_write,
                    pids: pids.unwrap_or(0),
                })
            }
        }
    }
}

/// A file's contents, or empty when it cannot be read (the container just went away).
fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A file holding one number; `max` and anything unreadable count as 0.
fn number(text: &str) -> u64 {
    text.trim().parse().unwrap_or(0)
}

/// The value of `key` in a `key value` per line file (`cpu.stat`, `memory.stat`).
fn keyed(text: &str, key: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Bytes read and written, summed over devices, from cgroup v2's `io.stat`
/// (`8:0 rbytes=1 wbytes=2 rios=…`).
fn io_stat(text: &str) -> (u64, u64) {
    let mut totals = (0u64, 0u64);
    for field in text.split_whitespace() {
        if let Some(v) = field.strip_prefix("rbytes=") {
            totals.0 += v.parse().unwrap_or(0);
        } else if let Some(v) = field.strip_prefix("wbytes=") {
            totals.1 += v.parse().unwrap_or(0);
        }
    }
    totals
}

/// Bytes read and written from cgroup v1's `blkio.throttle.io_service_bytes`
/// (`8:0 Read 123` per device and operation; the `Total` lines are skipped).
fn blkio_v1(text: &str) -> (u64, u64) {
    let mut totals = (0u64, 0u64);
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(_device), Some(op), Some(v)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let v: u64 = v.parse().unwrap_or(0);
        match op {
            "Read" => totals.0 += v,
            "Write" => totals.1 += v,
            _ => {}
        }
    }
    totals
}

/// Bytes received and sent by a container, from `/proc/<pid>/net/dev` of the first process in
/// its cgroup (every process of a container shares its network namespace); loopback excluded.
fn net_of(cgroup: &Path) -> (u64, u64) {
    let Some(pid) = read(&cgroup.join("cgroup.procs")).lines().next().and_then(|l| l.trim().parse::<u32>().ok()) else {
        return (0, 0);
    };
    net_dev(&read(Path::new(&format!("/proc/{pid}/net/dev"))))
}

/// Sums the receive and transmit byte counters of `/proc/net/dev`, loopback excluded.
fn net_dev(text: &str) -> (u64, u64) {
    let mut totals = (0u64, 0u64);
    for line in text.lines().skip(2) {
        let Some((iface, counters)) = line.split_once(':') else { continue };
        if iface.trim() == "lo" {
            continue;
        }
        let fields: Vec<u64> = counters.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
        if fields.len() >= 9 {
            totals.0 += fields[0];
            totals.1 += fields[8];
        }
    }
    totals
}

impl DockerEngine {
    /// One sample from Docker's stats API (`stream=false, one-shot=true`): for engines whose
    /// containers' cgroups this host cannot read.
    pub async fn stats_once(&self, container: &str) -> Result<ContainerStats> {
        let options = bollard::query_parameters::StatsOptionsBuilder::default().stream(false).one_shot(true).build();
        let mut stream = self.client().stats(container, Some(options));
        let s = match stream.next().await {
            Some(item) => item?,
            None => return Err(RuntimeError::NotFound(container.to_owned())),
        };
        let memory = s.memory_stats.unwrap_or_default();
        let inactive = memory
            .stats
            .as_ref()
            .and_then(|m| m.get("inactive_file").or_else(|| m.get("total_inactive_file")).copied())
            .unwrap_or(0);
        let (rx, tx) = s
            .networks
            .unwrap_or_default()
            .values()
            .fold((0, 0), |(rx, tx), n| (rx + n.rx_bytes.unwrap_or(0), tx + n.tx_bytes.unwrap_or(0)));
        let (block_read, block_write) =
            s.blkio_stats.and_then(|b| b.io_service_bytes_recursive).unwrap_or_default().iter().fold(
                (0, 0),
                |(r, w), e| match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("read") => (r + e.value.unwrap_or(0), w),
                    Some("write") => (r, w + e.value.unwrap_or(0)),
                    _ => (r, w),
                },
            );
        Ok(ContainerStats {
            cpu_usec: s.cpu_stats.and_then(|c| c.cpu_usage).and_then(|u| u.total_usage).unwrap_or(0) / 1000,
            memory_bytes: memory.usage.unwrap_or(0).saturating_sub(inactive),
            memory_limit_bytes: memory.limit.unwrap_or(0),
            net_rx_bytes: rx,
            net_tx_bytes: tx,
            block_read_bytes: block_read,
            block_write_bytes: block_write,
            pids: s.pids_stats.and_then(|p| p.current).unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_files() {
        assert_eq!(keyed("usage_usec 1234\nuser_usec 1000\n", "usage_usec"), 1234);
        assert_eq!(keyed("cache 5\ntotal_inactive_file 42\n", "total_inactive_file"), 42);
        assert_eq!(number("max\n"), 0);
        assert_eq!(io_stat("8:0 rbytes=100 wbytes=20 rios=1\n8:16 rbytes=1 wbytes=2\n"), (101, 22));
        assert_eq!(blkio_v1("8:0 Read 10\n8:0 Write 7\n8:0 Total 17\nTotal 17\n"), (10, 7));
        let dev = "Inter-|   Receive\n face |bytes packets\n    lo: 50 1 0 0 0 0 0 0 50 1 0 0 0 0 0 0\n  eth0: 1000 10 0 0 0 0 0 0 300 3 0 0 0 0 0 0\n";
        assert_eq!(net_dev(dev), (1000, 300));
    }

    #[test]
    fn ids_never_become_paths_unless_they_are_container_ids() {
        let layout = CgroupLayout::V2(PathBuf::from("/nonexistent"));
        assert_eq!(layout.read("../../etc"), None);
        assert_eq!(layout.read(&"a".repeat(64)), None, "no such cgroup here");
    }
}
