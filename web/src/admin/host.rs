//! The host Berth runs on, for the dashboard: load against the CPU count (`/proc/loadavg`),
//! memory in use (`/proc/meminfo`: total less available) and the disk holding the data
//! directory (`statvfs`). Pure reading, a few microseconds; a figure that cannot be read (not
//! Linux, a restricted `/proc`) is left out rather than guessed.

use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Host {
    /// The 1-minute load average and the number of CPUs it compares with.
    pub load: Option<(f64, usize)>,
    /// Bytes in use and in total.
    pub memory: Option<(u64, u64)>,
    /// Bytes in use and in total on the data directory's file system.
    pub disk: Option<(u64, u64)>,
}

impl Host {
    pub fn read(data_dir: &Path) -> Host {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Host {
            load: std::fs::read_to_string("/proc/loadavg").ok().and_then(|t| parse_loadavg(&t)).map(|l| (l, cpus)),
            memory: std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| parse_meminfo(&t)),
            disk: disk_usage(data_dir),
        }
    }
}

/// The 1-minute load average: the first field of `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// (used, total) bytes from `/proc/meminfo`: `MemTotal` less `MemAvailable`.
pub fn parse_meminfo(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with(':'))?;
        let kib: u64 = line[name.len() + 1..].split_whitespace().next()?.parse().ok()?;
        Some(kib * 1024)
    };
    let total = field("MemTotal")?;
    let available = field("MemAvailable")?;
    Some((total.saturating_sub(available), total))
}

/// (used, total) bytes of the file system holding `path`, as `df` counts them.
fn disk_usage(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` a valid, writable statvfs
    // that outlives the call; statvfs only writes into it.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    if rc != 0 {
        return None;
    }
    let block = stat.f_frsize as u64;
    let total = stat.f_blocks as u64 * block;
    let free = stat.f_bfree as u64 * block;
    Some((total.saturating_sub(free), total))
}

/// Bytes for people: "512 MiB", "3.2 GiB".
pub fn bytes(n: u64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    let n = n as f64;
    if n >= GIB {
        format!("{:.1} GiB", n / GIB)
    } else {
        format!("{:.0} MiB", n / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        assert_eq!(parse_loadavg("0.52 0.61 0.70 2/345 6789\n"), Some(0.52));
        assert_eq!(parse_loadavg(""), None);
        let meminfo = "MemTotal:        8000000 kB\nMemFree:          100000 kB\nMemAvailable:    6000000 kB\n";
        assert_eq!(parse_meminfo(meminfo), Some((2_000_000 * 1024, 8_000_000 * 1024)));
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None, "without MemAvailable there is no figure");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024 + 200 * 1024 * 1024), "3.2 GiB");
        assert_eq!(bytes(512 * 1024 * 1024), "512 MiB");
    }

    #[test]
    fn the_disk_of_a_real_directory_is_read() {
        let (used, total) = disk_usage(Path::new("/")).expect("statvfs of /");
        assert!(total > 0 && used <= total);
        assert_eq!(disk_usage(Path::new("/no/such/dir")), None);
    }
}
