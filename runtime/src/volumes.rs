//! Filling a fresh data volume from a directory: what a restore does after the backup engine
//! restored a snapshot into a temporary directory.
//!
//! On a local engine (a `unix://` socket) a volume is a directory on this machine (its
//! `Mountpoint`), and [`fill_dir`] copies the tree into it, keeping what the site relies on:
//! file modes, owners (uid/gid, also of symlinks), symlinks as symlinks (never followed),
//! modification times, and the mode and owner of the top directory itself. Hard links become
//! separate files; sockets, FIFOs and device files are skipped and counted. It blocks: run it on
//! a blocking thread.
//!
//! A remote engine's volumes are not reachable from here; filling one is refused (see
//! docs/backups.md, "Restore").

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{lchown, symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::SystemTime;

/// What a fill copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FillStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// Sockets, FIFOs and device files, which a site's data has no use for.
    pub skipped: u64,
}

/// Makes `dst` (an existing directory) hold exactly what `src` holds: whatever `dst` held is
/// removed first (so a fill that ran before, then crashed, runs again cleanly), then the tree
/// is copied. `dst` itself takes `src`'s mode, owner and time.
pub fn fill_dir(src: &Path, dst: &Path) -> io::Result<FillStats> {
    let top = fs::symlink_metadata(src)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", src.display())))?;
    if !top.is_dir() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a directory", src.display())));
    }
    if !fs::symlink_metadata(dst)?.is_dir() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a directory", dst.display())));
    }
    clear_dir(dst)?;
    let mut stats = FillStats::default();
    copy_children(src, dst, &mut stats)?;
    apply_meta(dst, &top)?;
    Ok(stats)
}

/// Removes everything inside `dir`, never following a symlink out of it.
fn clear_dir(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

fn copy_children(src: &Path, dst: &Path, stats: &mut FillStats) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from)?;
        let kind = meta.file_type();
        let context = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", from.display()));
        if kind.is_symlink() {
            symlink(fs::read_link(&from).map_err(context)?, &to).map_err(context)?;
            lchown(&to, Some(meta.uid()), Some(meta.gid())).map_err(context)?;
            stats.symlinks += 1;
        } else if kind.is_dir() {
            fs::create_dir(&to).map_err(context)?;
            copy_children(&from, &to, stats)?;
            // After the children: writing them changed the directory's time.
            apply_meta(&to, &meta).map_err(context)?;
            stats.dirs += 1;
        } else if kind.is_file() {
            let mut reader = File::open(&from).map_err(context)?;
            // A new file only: `create_new` refuses to write through anything already there.
            let mut writer = File::options().write(true).create_new(true).open(&to).map_err(context)?;
            stats.bytes += io::copy(&mut reader, &mut writer).map_err(context)?;
            drop(writer);
            apply_meta(&to, &meta).map_err(context)?;
            stats.files += 1;
        } else {
            stats.skipped += 1;
        }
    }
    Ok(())
}

/// Owner first (changing it clears set-id bits), then the mode, then the modification time.
fn apply_meta(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    lchown(path, Some(meta.uid()), Some(meta.gid()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    let modified = meta.modified().unwrap_or_else(|_| SystemTime::now());
    File::open(path)?.set_modified(modified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_modes_symlinks_and_times_and_replaces_what_was_there() {
        let src = tempfile::tempdir().expect("src");
        let dst = tempfile::tempdir().expect("dst");
        let s = src.path();
        fs::write(s.join("index.html"), b"hello").expect("write");
        fs::set_permissions(s.join("index.html"), fs::Permissions::from_mode(0o640)).expect("chmod");
        fs::create_dir(s.join("sub")).expect("mkdir");
        fs::write(s.join("sub/run.sh"), b"#!/bin/sh\n").expect("write");
        fs::set_permissions(s.join("sub/run.sh"), fs::Permissions::from_mode(0o750)).expect("chmod");
        symlink("../index.html", s.join("sub/link")).expect("symlink");
        symlink("/etc/passwd", s.join("outside")).expect("symlink");
        fs::set_permissions(s, fs::Permissions::from_mode(0o711)).expect("chmod top");
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        File::open(s.join("index.html")).expect("open").set_modified(old).expect("mtime");
        // As root (the tests' setup), owners other than our own are copied too.
        let root = fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
        if root {
            lchown(s.join("index.html"), Some(1234), Some(5678)).expect("chown");
            lchown(s.join("sub/link"), Some(4321), Some(8765)).expect("chown link");
        }
        fs::write(dst.path().join("stale.txt"), b"old").expect("stale");
        fs::create_dir(dst.path().join("stale-dir")).expect("stale dir");

        let stats = fill_dir(s, dst.path()).expect("fill");
        let d = dst.path();
        assert_eq!(stats, FillStats { files: 2, dirs: 1, symlinks: 2, bytes: 15, skipped: 0 });
        assert!(!d.join("stale.txt").exists() && !d.join("stale-dir").exists(), "what was there is gone");
        assert_eq!(fs::read(d.join("index.html")).expect("read"), b"hello");
        let mode = |p: &Path| fs::symlink_metadata(p).expect("meta").mode() & 0o7777;
        assert_eq!(mode(&d.join("index.html")), 0o640);
        assert_eq!(mode(&d.join("sub/run.sh")), 0o750);
        assert_eq!(mode(d), 0o711, "the top directory takes the source's mode");
        assert_eq!(fs::read_link(d.join("sub/link")).expect("link"), Path::new("../index.html"));
        assert_eq!(fs::read_link(d.join("outside")).expect("link"), Path::new("/etc/passwd"), "never followed");
        assert_eq!(fs::metadata(d.join("index.html")).expect("meta").modified().expect("mtime"), old);
        let owner = |p: &Path| {
            let m = fs::symlink_metadata(p).expect("meta");
            (m.uid(), m.gid())
        };
        assert_eq!(owner(&d.join("index.html")), owner(&s.join("index.html")));
        assert_eq!(owner(&d.join("sub/link")), owner(&s.join("sub/link")));
        if root {
            assert_eq!(owner(&d.join("index.html")), (1234, 5678));
            assert_eq!(owner(&d.join("sub/link")), (4321, 8765), "a symlink's own owner");
        }
    }

    #[test]
    fn refuses_a_source_that_is_not_a_directory() {
        let dst = tempfile::tempdir().expect("dst");
        let err = fill_dir(Path::new("/nonexistent/berth-fill"), dst.path()).expect_err("missing source");
        assert!(err.to_string().contains("/nonexistent/berth-fill"), "{err}");
    }
}
