//! Berth's own nginx (managed mode), run as a daemon of its own so that the data plane outlives
//! the control plane.
//!
//! nginx is started in its default daemon mode: it checks its configuration, binds its ports,
//! then forks into a new session and writes `<prefix>/nginx.pid`. It is no child of Berth (no
//! parent-death signal, not in Berth's process group), so it keeps serving while Berth stops,
//! crashes or is upgraded. A starting Berth finds it through the pid file, checks that the pid
//! is an nginx master running with this prefix (a stale file may name a recycled pid), and
//! adopts it. Only [`Nginx::stop`] (`berth ingress stop`) takes it down.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::error::{Result, RuntimeError};

/// How long a freshly detached nginx gets to write its pid file.
const PID_FILE_WAIT: Duration = Duration::from_secs(5);
/// How often process state is polled while waiting.
const POLL: Duration = Duration::from_millis(25);

/// The nginx of one prefix directory.
#[derive(Debug, Clone)]
pub struct Nginx {
    binary: PathBuf,
    prefix: PathBuf,
}

impl Nginx {
    /// `prefix` must be absolute: it is matched against the master's command line.
    pub fn new(binary: &Path, prefix: &Path) -> Self {
        Self { binary: binary.to_owned(), prefix: prefix.to_owned() }
    }

    pub fn pid_file(&self) -> PathBuf {
        self.prefix.join("nginx.pid")
    }

    /// nginx's own log (the main configuration sends `error_log` here).
    pub fn error_log(&self) -> PathBuf {
        self.prefix.join("error.log")
    }

    /// The pid of this prefix's nginx master when it runs.
    pub fn master(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.pid_file()).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        (pid > 1 && is_master_of(pid, &self.prefix)).then_some(pid)
    }

    /// Starts nginx and returns its master's pid. nginx reports a bad configuration or a port
    /// in use before it detaches, so such a failure is this call's error.
    pub async fn launch(&self) -> Result<u32> {
        // The launcher's own output (what nginx says before it detaches) goes to a file, not a
        // pipe: the detached master must hold nothing of Berth's open.
        let startup = self.prefix.join("startup.log");
        let out = std::fs::File::create(&startup)
            .map_err(|e| RuntimeError::Io(format!("cannot write {}: {e}", startup.display())))?;
        let status = Command::new(&self.binary)
            .arg("-e")
            .arg(self.error_log())
            .arg("-p")
            .arg(&self.prefix)
            .arg("-c")
            .arg(self.prefix.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .status()
            .await
            .map_err(|e| RuntimeError::Ingress(format!("cannot start {}: {e}", self.binary.display())))?;
        if !status.success() {
            let said = std::fs::read_to_string(&startup).unwrap_or_default();
            return Err(RuntimeError::Ingress(format!("nginx did not start ({status}): {}", said.trim())));
        }
        let deadline = Instant::now() + PID_FILE_WAIT;
        loop {
            if let Some(pid) = self.master() {
                return Ok(pid);
            }
            if Instant::now() > deadline {
                return Err(RuntimeError::Ingress(format!(
                    "nginx started but no running master is named in {}",
                    self.pid_file().display()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The worker processes of a master.
    pub fn workers(&self, master: u32) -> HashSet<u32> {
        let Ok(entries) = std::fs::read_dir("/proc") else { return HashSet::new() };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| stat(*pid).is_some_and(|s| s.ppid == master && s.state != 'Z'))
            .collect()
    }

    /// After a reload: waits until `master` runs workers of the new configuration and every
    /// worker in `old` has exited (they finish the requests they were serving, then quit), or
    /// until `timeout` passes.
    pub async fn wait_generation(&self, master: u32, old: &HashSet<u32>, timeout: Duration) -> Generation {
        let deadline = Instant::now() + timeout;
        loop {
            // A dead master serves nothing; the one started next reads the new files.
            if !alive(master) {
                return Generation::Replaced;
            }
            let now = self.workers(master);
            let fresh = now.iter().any(|w| !old.contains(w));
            if fresh && now.is_disjoint(old) {
                return Generation::Replaced;
            }
            if Instant::now() > deadline {
                return if fresh { Generation::StillDraining } else { Generation::NotReloaded };
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops this prefix's nginx: a graceful quit (requests in flight are finished), then after
    /// `grace` a fast stop, then a kill. Returns the master's pid, or `None` when none ran.
    pub async fn stop(&self, grace: Duration) -> Option<u32> {
        let pid = self.master()?;
        let workers = self.workers(pid);
        let gone = |pids: &HashSet<u32>| !alive(pid) && pids.iter().all(|w| !alive(*w));
        for (signal, wait) in [(libc::SIGQUIT, grace), (libc::SIGTERM, Duration::from_secs(3))] {
            send(pid, signal);
            let deadline = Instant::now() + wait;
            while !gone(&workers) && Instant::now() < deadline {
                tokio::time::sleep(POLL).await;
            }
            if gone(&workers) {
                return Some(pid);
            }
        }
        tracing::warn!(pid, "Berth's nginx did not stop when asked; killing it");
        for p in std::iter::once(pid).chain(workers) {
            send(p, libc::SIGKILL);
        }
        // A killed master leaves its pid file behind.
        let _ = std::fs::remove_file(self.pid_file());
        Some(pid)
    }
}

/// How a reload went, seen from nginx's worker processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// Only workers of the new configuration are left.
    Replaced,
    /// New workers serve, but old ones are still finishing long requests.
    StillDraining,
    /// No worker of the new configuration appeared: nginx did not take it up.
    NotReloaded,
}

fn send(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with plain integers; no memory is involved.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

struct Stat {
    state: char,
    ppid: u32,
}

/// The state and parent of a process, from /proc/<pid>/stat.
fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces and parentheses.
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(Stat { state, ppid })
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z')
}

/// Whether `pid` is an nginx master process started with `-p prefix`. nginx rewrites its
/// command line to `nginx: master process <its original arguments>`.
fn is_master_of(pid: u32, prefix: &Path) -> bool {
    if !alive(pid) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    let Some(args) = cmdline.trim().strip_prefix("nginx: master process ") else { return false };
    let prefix = prefix.to_string_lossy();
    let mut words = args.split_whitespace();
    while let Some(w) = words.next() {
        if w == "-p" {
            return words.next().is_some_and(|p| p.trim_end_matches('/') == prefix.trim_end_matches('/'));
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_no_nginx_master() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(!is_master_of(me, Path::new("/")));
        assert!(stat(me).is_some_and(|s| s.ppid > 0));
    }

    #[test]
    fn a_pid_file_naming_another_process_is_not_adopted() {
        let dir = std::env::temp_dir().join(format!("berth-nginx-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("nginx.pid"), format!("{}\n", std::process::id())).expect("pid file");
        let nginx = Nginx::new(Path::new("/usr/sbin/nginx"), &dir);
        assert_eq!(nginx.master(), None);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
