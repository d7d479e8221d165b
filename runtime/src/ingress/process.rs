//! Berth's own nginx process (managed mode): started in the foreground with Berth's prefix
//! directory, restarted when it dies, stopped gracefully with Berth.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::error::{Result, RuntimeError};

#[derive(Default)]
pub struct Supervisor {
    child: Mutex<Option<Guard>>,
}

/// Owns the nginx master process. Dropping it (a crashed or cancelled Berth task) still asks
/// nginx to quit: killing only the master would leave its workers holding the port.
struct Guard {
    child: Child,
}

impl Guard {
    fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            // SIGQUIT: nginx's graceful shutdown, which also ends its worker processes.
            // SAFETY: kill(2) on a pid we spawned and still own; no memory is involved.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGQUIT);
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.terminate();
        }
    }
}

impl Supervisor {
    /// Starts nginx unless it is running; a dead one is reported and started again.
    pub async fn ensure_running(&self, nginx: &Path, prefix: &Path) -> Result<()> {
        let mut slot = self.child.lock().await;
        if let Some(guard) = slot.as_mut() {
            match guard.child.try_wait() {
                Ok(None) => return Ok(()),
                Ok(Some(status)) => tracing::warn!(%status, "Berth's nginx exited; starting it again"),
                Err(e) => tracing::warn!(error = %e, "Cannot tell whether Berth's nginx runs; starting it again"),
            }
            *slot = None;
        }
        let mut command = Command::new(nginx);
        // If Berth itself is killed outright (SIGKILL: no Drop runs), the kernel still tells
        // nginx to quit, so no orphaned nginx keeps the ingress port.
        #[cfg(target_os = "linux")]
        // SAFETY: prctl(2) with integer arguments only, between fork and exec, as
        // pre_exec requires: no allocation, no locks.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT as libc::c_ulong, 0, 0, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command
            .arg("-e")
            .arg("stderr")
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(prefix.join("nginx.conf"))
            .arg("-g")
            .arg("daemon off;")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| RuntimeError::Ingress(format!("cannot start {}: {e}", nginx.display())))?;
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::warn!(target: "berth::nginx", "{line}");
                }
            });
        }
        tracing::info!(pid = child.id(), prefix = %prefix.display(), "Started Berth's nginx");
        *slot = Some(Guard { child });
        Ok(())
    }

    pub async fn stop(&self) {
        let Some(mut guard) = self.child.lock().await.take() else { return };
        guard.terminate();
        if tokio::time::timeout(std::time::Duration::from_secs(10), guard.child.wait()).await.is_err() {
            tracing::warn!("Berth's nginx did not quit within 10 s; killing it");
            let _ = guard.child.kill().await;
        }
    }
}
