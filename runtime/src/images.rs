//! Site images Berth builds itself. `berth images build` and the test setup call the same
//! [`build_site_static`]: the build context (docker/site-static plus the host's static busybox)
//! is assembled in memory as a tar archive and sent through the Engine API.

use std::path::Path;

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;

use crate::docker::DockerEngine;
use crate::error::{Result, RuntimeError};

pub const SITE_STATIC_TAG: &str = "berth/site-static:latest";
/// Where Debian's busybox-static puts its binary.
pub const DEFAULT_BUSYBOX: &str = "/bin/busybox";

const DOCKERFILE: &str = include_str!("../../docker/site-static/Dockerfile");
const START_SH: &str = include_str!("../../docker/site-static/start.sh");

/// The build context of berth/site-static as a tar archive.
pub fn site_static_context(busybox: &Path) -> Result<Vec<u8>> {
    let binary = std::fs::read(busybox).map_err(|e| {
        RuntimeError::Io(format!(
            "cannot read {} ({e}): install Debian's busybox-static package (apt-get install busybox-static)",
            busybox.display()
        ))
    })?;
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, mode: u32, data: &[u8]| -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, path, data).map_err(|e| RuntimeError::Io(format!("build context: {e}")))
    };
    add("Dockerfile", 0o644, DOCKERFILE.as_bytes())?;
    add("start.sh", 0o755, START_SH.as_bytes())?;
    add("busybox", 0o755, &binary)?;
    add("www/.keep", 0o644, b"")?;
    tar.into_inner().map_err(|e| RuntimeError::Io(format!("build context: {e}")))
}

/// Builds `berth/site-static:latest`; returns the image id. Each build log line goes to the
/// debug log; a failed step is the error.
pub async fn build_site_static(engine: &DockerEngine, busybox: &Path) -> Result<String> {
    let context = site_static_context(busybox)?;
    let options =
        BuildImageOptionsBuilder::default().dockerfile("Dockerfile").t(SITE_STATIC_TAG).rm(true).forcerm(true).build();
    let mut stream = engine.client().build_image(options, None, Some(bollard::body_full(context.into())));
    let mut image_id = None;
    while let Some(item) = stream.next().await {
        let info = item?;
        if let Some(detail) = info.error_detail {
            return Err(RuntimeError::Docker(format!(
                "building {SITE_STATIC_TAG} failed: {}",
                detail.message.unwrap_or_default().trim()
            )));
        }
        if let Some(line) = info.stream.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
            tracing::debug!(image = SITE_STATIC_TAG, "{line}");
        }
        if let Some(id) = info.aux.and_then(|a| a.id) {
            image_id = Some(id);
        }
    }
    match image_id {
        Some(id) => Ok(id),
        // The classic builder reports the id in a "Successfully built" line rather than aux.
        None => Ok(SITE_STATIC_TAG.to_owned()),
    }
}
