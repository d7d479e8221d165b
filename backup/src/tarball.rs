//! Writes a snapshot's nodes as a tar stream (GNU format, so long paths work), with the mode,
//! owner and modification time recorded in the snapshot.

use std::io::{self, Read, Write};

use rustic_core::repofile::Metadata;

pub(crate) struct Writer {
    builder: tar::Builder<Box<dyn Write + Send>>,
}

impl Writer {
    pub(crate) fn new(out: Box<dyn Write + Send>) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Complete);
        builder.follow_symlinks(false);
        Self { builder }
    }

    pub(crate) fn dir(&mut self, path: &str, meta: &Metadata) -> io::Result<()> {
        let mut header = header(meta, tar::EntryType::Directory, 0, 0o755);
        self.builder.append_data(&mut header, format!("{path}/"), io::empty())
    }

    pub(crate) fn file(&mut self, path: &str, meta: &Metadata, content: impl Read) -> io::Result<()> {
        let mut header = header(meta, tar::EntryType::Regular, meta.size, 0o644);
        // Exactly the recorded size, never more, so a header and its data cannot disagree.
        self.builder.append_data(&mut header, path, content.take(meta.size))
    }

    pub(crate) fn symlink(&mut self, path: &str, meta: &Metadata, target: &str) -> io::Result<()> {
        let mut header = header(meta, tar::EntryType::Symlink, 0, 0o777);
        self.builder.append_link(&mut header, path, target)
    }

    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.builder.finish()?;
        self.builder.get_mut().flush()
    }
}

fn header(meta: &Metadata, kind: tar::EntryType, size: u64, default_mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(meta.mode.map(|m| m & 0o7777).unwrap_or(default_mode));
    header.set_uid(u64::from(meta.uid.unwrap_or(0)));
    header.set_gid(u64::from(meta.gid.unwrap_or(0)));
    header.set_mtime(meta.mtime.map(|t| t.as_second().max(0) as u64).unwrap_or(0));
    header
}
