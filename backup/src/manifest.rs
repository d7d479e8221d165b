//! What a snapshot or a directory holds: every directory, file (size and SHA-256) and symlink,
//! by path relative to the volume's root, sorted, with one SHA-256 digest over the list. A
//! snapshot's manifest is computed by reading all of its data back ([`crate::Repository::verify`]);
//! [`Manifest::of_dir`] computes the same for a directory, so a restore (or a test) can prove the
//! data it wrote is the data that was backed up.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{BackupError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File { size: u64, sha256: String },
    Symlink { target: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the volume's root, `/`-separated, without a leading `/`.
    pub path: String,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// Sorted by path.
    pub entries: Vec<Entry>,
}

impl Manifest {
    pub fn new(mut entries: Vec<Entry>) -> Self {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Self { entries }
    }

    /// SHA-256 (hex) over one line per entry: `d <path>`, `f <path> <size> <sha256>` or
    /// `l <path> <target>`.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for entry in &self.entries {
            let line = match &entry.kind {
                EntryKind::Dir => format!("d {}\n", entry.path),
                EntryKind::File { size, sha256 } => format!("f {} {size} {sha256}\n", entry.path),
                EntryKind::Symlink { target } => format!("l {} {target}\n", entry.path),
            };
            hasher.update(line.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    pub fn file_count(&self) -> u64 {
        self.entries.iter().filter(|e| matches!(e.kind, EntryKind::File { .. })).count() as u64
    }

    pub fn total_bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| match e.kind {
                EntryKind::File { size, .. } => size,
                _ => 0,
            })
            .sum()
    }

    /// The manifest of a directory on disk (blocking: call from a blocking thread). Other kinds
    /// of files (sockets, devices) are left out, as backups leave them out.
    pub fn of_dir(root: &Path) -> Result<Self> {
        let mut entries = Vec::new();
        walk(root, "", &mut entries)?;
        Ok(Self::new(entries))
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<Entry>) -> Result<()> {
    let read = std::fs::read_dir(dir).map_err(|e| BackupError::io(format!("cannot list {}", dir.display()), e))?;
    for item in read {
        let item = item.map_err(|e| BackupError::io(format!("cannot list {}", dir.display()), e))?;
        let name = item.file_name().to_string_lossy().into_owned();
        let path = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let full = item.path();
        let meta = std::fs::symlink_metadata(&full)
            .map_err(|e| BackupError::io(format!("cannot stat {}", full.display()), e))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            out.push(Entry { path: path.clone(), kind: EntryKind::Dir });
            walk(&full, &path, out)?;
        } else if kind.is_file() {
            let file = std::fs::File::open(&full)
                .map_err(|e| BackupError::io(format!("cannot open {}", full.display()), e))?;
            let (size, sha256) =
                hash_reader(file).map_err(|e| BackupError::io(format!("cannot read {}", full.display()), e))?;
            out.push(Entry { path, kind: EntryKind::File { size, sha256 } });
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&full)
                .map_err(|e| BackupError::io(format!("cannot read link {}", full.display()), e))?;
            out.push(Entry { path, kind: EntryKind::Symlink { target: target.to_string_lossy().into_owned() } });
        }
    }
    Ok(())
}

/// Bytes read and their SHA-256 (hex).
pub fn hash_reader(mut reader: impl Read) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_manifest_lists_every_file_with_its_hash() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("a/b")).expect("mkdir");
        std::fs::write(dir.path().join("a/b/x.txt"), b"hello").expect("write");
        std::fs::write(dir.path().join("top"), b"").expect("write");
        let m = Manifest::of_dir(dir.path()).expect("manifest");
        let paths: Vec<&str> = m.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a", "a/b", "a/b/x.txt", "top"]);
        assert_eq!(
            m.entries[2].kind,
            EntryKind::File {
                size: 5,
                sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".into()
            }
        );
        assert_eq!((m.file_count(), m.total_bytes()), (2, 5));
        let before = m.digest();
        std::fs::write(dir.path().join("a/b/x.txt"), b"hellO").expect("write");
        assert_ne!(Manifest::of_dir(dir.path()).expect("manifest").digest(), before, "one byte changes the digest");
    }
}
