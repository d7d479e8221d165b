//! The one [`Repository`] implementation: `rustic_core` on a local directory or on S3 (OpenDAL's
//! S3 service through `rustic_backend`). rustic's API is blocking; each call here runs on a
//! blocking thread.
//!
//! Reading back (verify, restore, check, download) never uses the local cache: a damaged
//! repository must be seen as damaged, not hidden by a good cached copy.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use berth_core::config::S3Config;
use rustic_backend::BackendOptions;
use rustic_core::repofile::{Node, SnapshotFile};
use rustic_core::vfs::OpenFile;
use rustic_core::{
    BackupOptions, CheckOptions, ConfigOptions, Credentials, IndexedFullStatus, KeyOptions, LocalDestination,
    LsOptions, OpenStatus, PathList, PruneOptions, ReadSubsetOption, Repository as Rustic, RepositoryBackends,
    RepositoryOptions, RestoreOptions, SnapshotOptions,
};

use crate::error::{one_line, BackupError, Result};
use crate::manifest::{hash_reader, Entry, EntryKind, Manifest};
use crate::repository::{ReadData, Repository, SnapshotInfo, SnapshotMeta, Source};
use crate::tarball;

/// The snapshot path of the data, relative (see [`crate::SNAPSHOT_ROOT`]).
const DATA: &str = "data";
/// The host name recorded on Berth's snapshots.
const HOST: &str = "berth";

/// Serialises "does the repository exist? then create it" within this process, so two first
/// backups of one customer do not both try to initialise the repository.
static INIT: Mutex<()> = Mutex::new(());

#[derive(Clone)]
enum Location {
    Local(PathBuf),
    /// OpenDAL S3 options (bucket, root, endpoint, region, keys).
    S3(BTreeMap<String, String>),
}

/// A restic-format repository through rustic_core.
#[derive(Clone)]
pub struct RusticRepository {
    inner: Arc<Inner>,
}

struct Inner {
    location: Location,
    password: String,
    /// The cache of index and tree data (S3 only; local repositories are read directly).
    cache_dir: Option<PathBuf>,
    /// Where tar sources are unpacked before they are backed up.
    staging: PathBuf,
}

impl RusticRepository {
    /// A repository in the local directory `path` (created with mode 0700 when missing).
    pub fn local(path: PathBuf, password: String, staging: PathBuf) -> Self {
        Self { inner: Arc::new(Inner { location: Location::Local(path), password, cache_dir: None, staging }) }
    }

    /// A repository at `root` (a key prefix) in the bucket of `s3`.
    pub fn s3(s3: &S3Config, root: &str, password: String, cache_dir: Option<PathBuf>, staging: PathBuf) -> Self {
        let options = BTreeMap::from([
            ("bucket".to_owned(), s3.bucket.clone()),
            ("root".to_owned(), format!("/{}", root.trim_matches('/'))),
            ("endpoint".to_owned(), s3.endpoint.as_str().trim_end_matches('/').to_owned()),
            ("region".to_owned(), s3.region.clone()),
            ("access_key_id".to_owned(), s3.access_key_id.clone()),
            ("secret_access_key".to_owned(), s3.secret_access_key.expose().to_owned()),
            // Only these settings: never the machine's ~/.aws files or environment.
            ("disable_config_load".to_owned(), "true".to_owned()),
        ]);
        Self { inner: Arc::new(Inner { location: Location::S3(options), password, cache_dir, staging }) }
    }

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Inner) -> Result<T> + Send + 'static) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await.map_err(|e| BackupError::Task(e.to_string()))?
    }
}

#[async_trait]
impl Repository for RusticRepository {
    async fn ensure(&self) -> Result<()> {
        self.blocking(|inner| inner.open_or_init().map(drop)).await
    }

    async fn backup(&self, source: Source, meta: SnapshotMeta) -> Result<SnapshotInfo> {
        self.blocking(move |inner| inner.backup(source, meta)).await
    }

    async fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        self.blocking(|inner| {
            let Some(repo) = inner.open_existing(true)? else { return Ok(Vec::new()) };
            let mut snaps: Vec<SnapshotInfo> = repo.get_all_snapshots()?.iter().map(info).collect();
            snaps.sort_by_key(|s| s.time);
            Ok(snaps)
        })
        .await
    }

    async fn verify(&self, snapshot: &str) -> Result<Manifest> {
        let snapshot = snapshot.to_owned();
        self.blocking(move |inner| inner.verify(&snapshot)).await
    }

    async fn restore(&self, snapshot: &str, into: &Path) -> Result<Manifest> {
        let (snapshot, into) = (snapshot.to_owned(), into.to_owned());
        self.blocking(move |inner| inner.restore(&snapshot, &into)).await
    }

    async fn check(&self, read: ReadData) -> Result<()> {
        self.blocking(move |inner| inner.check(read)).await
    }

    async fn forget(&self, snapshots: &[String]) -> Result<()> {
        let ids = snapshots.to_vec();
        self.blocking(move |inner| {
            let repo = inner.open_existing(false)?.ok_or_else(|| BackupError::SnapshotNotFound(ids.join(",")))?;
            let snaps = repo.get_snapshots_from_strs(&ids, |_| true).map_err(|e| not_found(&ids.join(","), e))?;
            let ids: Vec<_> = snaps.iter().map(|s| s.id).collect();
            repo.delete_snapshots(&ids)?;
            Ok(())
        })
        .await
    }

    async fn prune(&self) -> Result<()> {
        self.blocking(|inner| {
            let Some(repo) = inner.open_existing(false)? else { return Ok(()) };
            let opts = PruneOptions::default();
            let plan = repo.prune_plan(&opts)?;
            repo.prune(&opts, plan)?;
            Ok(())
        })
        .await
    }

    async fn dump_tar(&self, snapshot: &str, out: Box<dyn Write + Send>) -> Result<()> {
        let snapshot = snapshot.to_owned();
        self.blocking(move |inner| inner.dump_tar(&snapshot, out)).await
    }
}

impl Inner {
    fn backends(&self) -> Result<RepositoryBackends> {
        let options = match &self.location {
            Location::Local(path) => BackendOptions::default().repository(format!("local:{}", path.display())),
            Location::S3(options) => BackendOptions::default().repository("opendal:s3").options(options.clone()),
        };
        Ok(options.to_backends()?)
    }

    fn repository(&self, cached: bool) -> Result<Rustic<()>> {
        let options = match (&self.cache_dir, cached) {
            (Some(dir), true) => RepositoryOptions::default().cache_dir(dir.clone()),
            _ => RepositoryOptions::default().no_cache(true),
        };
        Ok(Rustic::new(&options, &self.backends()?)?)
    }

    fn credentials(&self) -> Credentials {
        Credentials::password(&self.password)
    }

    /// The repository opened, or `None` when it was never created.
    fn open_existing(&self, cached: bool) -> Result<Option<Rustic<OpenStatus>>> {
        let repo = self.repository(cached)?;
        if repo.config_id()?.is_none() {
            return Ok(None);
        }
        Ok(Some(repo.open(&self.credentials())?))
    }

    /// Opens the repository, creating it first when it does not exist.
    fn open_or_init(&self) -> Result<Rustic<OpenStatus>> {
        if let Some(repo) = self.open_existing(true)? {
            return Ok(repo);
        }
        let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(repo) = self.open_existing(true)? {
            return Ok(repo);
        }
        if let Location::Local(path) = &self.location {
            private_dir(path)?;
        }
        let repo = self.repository(true)?;
        Ok(repo.init(&self.credentials(), &KeyOptions::default(), &ConfigOptions::default())?)
    }

    fn backup(&self, source: Source, meta: SnapshotMeta) -> Result<SnapshotInfo> {
        let (dir, _staged) = match source {
            Source::Dir(dir) => (dir, None),
            Source::Tar { archive, root } => {
                let plain = Path::new(&root).components().count() == 1
                    && matches!(Path::new(&root).components().next(), Some(std::path::Component::Normal(_)));
                if !plain {
                    return Err(BackupError::Source(format!("`{root}` is not a directory name")));
                }
                let staged = Staged::unpack(&self.staging, archive)?;
                (staged.0.join(&root), Some(staged))
            }
        };
        let readable = std::fs::metadata(&dir).map_err(|e| BackupError::Source(format!("{}: {e}", dir.display())))?;
        if !readable.is_dir() {
            return Err(BackupError::Source(format!("{} is not a directory", dir.display())));
        }
        let repo = self.open_or_init()?.to_indexed_ids()?;
        let options = BackupOptions::default().as_path(Some(PathBuf::from(crate::SNAPSHOT_ROOT)));
        let mut snap = SnapshotOptions::default().label(Some(meta.label)).host(Some(HOST.to_owned()));
        for tag in &meta.tags {
            snap = snap.add_tags(tag)?;
        }
        let source = PathList::from_iter([dir]);
        let snap = repo.backup(&options, &source, snap.to_snapshot()?)?;
        Ok(info(&snap))
    }

    /// The snapshot and the node of its data, from a repository opened without cache.
    fn open_snapshot(&self, snapshot: &str) -> Result<(Rustic<IndexedFullStatus>, SnapshotFile, Node)> {
        let repo = self.open_existing(false)?.ok_or_else(|| BackupError::SnapshotNotFound(snapshot.to_owned()))?;
        let snap = repo.get_snapshot_from_str(snapshot, |_| true).map_err(|e| not_found(snapshot, e))?;
        let repo = repo.to_indexed().map_err(|e| corrupt(snapshot, &e))?;
        let node = repo.node_from_snapshot_and_path(&snap, DATA).map_err(|e| corrupt(snapshot, &e))?;
        Ok((repo, snap, node))
    }

    fn verify(&self, snapshot: &str) -> Result<Manifest> {
        let (repo, snap, node) = self.open_snapshot(snapshot)?;
        let id = snap.id.to_string();
        let mut entries = Vec::new();
        let nodes = repo.ls(&node, &LsOptions::default()).map_err(|e| corrupt(&id, &e))?;
        for item in nodes {
            let (path, node) = item.map_err(|e| corrupt(&id, &e))?;
            let path = relative(&path);
            let kind = if node.is_dir() {
                EntryKind::Dir
            } else if node.is_file() {
                let reader = NodeReader::new(&repo, &node).map_err(|e| corrupt(&id, &e))?;
                let (size, sha256) = hash_reader(reader)
                    .map_err(|e| BackupError::Corrupt { snapshot: id.clone(), detail: format!("{path}: {e}") })?;
                if size != node.meta.size {
                    return Err(BackupError::Corrupt {
                        snapshot: id,
                        detail: format!("{path}: read {size} bytes, the snapshot records {}", node.meta.size),
                    });
                }
                EntryKind::File { size, sha256 }
            } else if node.is_symlink() {
                EntryKind::Symlink { target: node.node_type.to_link().to_string_lossy().into_owned() }
            } else {
                continue;
            };
            entries.push(Entry { path, kind });
        }
        Ok(Manifest::new(entries))
    }

    fn restore(&self, snapshot: &str, into: &Path) -> Result<Manifest> {
        // Nothing is written before every blob has been read back intact.
        let manifest = self.verify(snapshot)?;
        let (repo, _, node) = self.open_snapshot(snapshot)?;
        let into_str = into.to_str().ok_or_else(|| BackupError::Engine(format!("{} is not UTF-8", into.display())))?;
        let dest = LocalDestination::new(into_str, true, !node.is_dir())?;
        // Numeric owners: the site's users exist in its image, not on this host.
        let options = RestoreOptions::default().numeric_id(true);
        let nodes = repo.ls(&node, &LsOptions::default())?;
        let plan = repo.prepare_restore(&options, nodes.clone(), &dest, false)?;
        repo.restore(plan, &options, nodes, &dest)?;
        // Prove it: what is on disk now holds every entry of the snapshot, byte for byte.
        let written = Manifest::of_dir(into)?;
        let written: std::collections::HashMap<&str, &EntryKind> =
            written.entries.iter().map(|e| (e.path.as_str(), &e.kind)).collect();
        for entry in &manifest.entries {
            if written.get(entry.path.as_str()) != Some(&&entry.kind) {
                return Err(BackupError::Engine(format!(
                    "the restored {} does not match the snapshot",
                    if entry.path.is_empty() { "data" } else { &entry.path }
                )));
            }
        }
        Ok(manifest)
    }

    fn check(&self, read: ReadData) -> Result<()> {
        let Some(repo) = self.open_existing(false)? else { return Ok(()) };
        let options = match read {
            ReadData::None => CheckOptions::default(),
            ReadData::All => CheckOptions::default().read_data(true),
            ReadData::Percent(p) => {
                CheckOptions::default().read_data(true).read_data_subset(ReadSubsetOption::Percentage(p))
            }
            ReadData::Part(n, m) => {
                CheckOptions::default().read_data(true).read_data_subset(ReadSubsetOption::IdSubSet((n, m)))
            }
        };
        let results = repo.check(options)?;
        if results.is_ok().is_err() {
            let errors: Vec<String> = results
                .0
                .iter()
                .filter(|(level, _)| format!("{level:?}") == "Error")
                .take(5)
                .map(|(_, e)| e.to_string())
                .collect();
            return Err(BackupError::Corrupt { snapshot: "(repository)".into(), detail: errors.join("; ") });
        }
        Ok(())
    }

    fn dump_tar(&self, snapshot: &str, out: Box<dyn Write + Send>) -> Result<()> {
        let (repo, snap, node) = self.open_snapshot(snapshot)?;
        let id = snap.id.to_string();
        let nodes = repo.ls(&node, &LsOptions::default()).map_err(|e| corrupt(&id, &e))?;
        let mut tar = tarball::Writer::new(out);
        for item in nodes {
            let (path, node) = item.map_err(|e| corrupt(&id, &e))?;
            let path = relative(&path);
            let result = if node.is_dir() {
                tar.dir(&path, &node.meta)
            } else if node.is_file() {
                let reader = NodeReader::new(&repo, &node).map_err(|e| corrupt(&id, &e))?;
                tar.file(&path, &node.meta, reader)
            } else if node.is_symlink() {
                tar.symlink(&path, &node.meta, &node.node_type.to_link().to_string_lossy())
            } else {
                continue;
            };
            result.map_err(|e| BackupError::io(format!("writing {path} to the tar stream"), e))?;
        }
        tar.finish().map_err(|e| BackupError::io("finishing the tar stream", e))
    }
}

/// A path from `ls` (relative to the data node) as a manifest path.
fn relative(path: &Path) -> String {
    path.components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn info(snap: &SnapshotFile) -> SnapshotInfo {
    let ts = snap.time.timestamp();
    let time =
        chrono::DateTime::from_timestamp(ts.as_second(), ts.subsec_nanosecond().max(0) as u32).unwrap_or_default();
    let summary = snap.summary.clone().unwrap_or_default();
    SnapshotInfo {
        id: snap.id.to_string(),
        time,
        label: snap.label.clone(),
        tags: snap.tags.iter().cloned().collect(),
        paths: snap.paths.iter().cloned().collect(),
        total_bytes: summary.total_bytes_processed,
        added_bytes: summary.data_added_packed,
        file_count: summary.total_files_processed,
    }
}

fn not_found(snapshot: &str, err: Box<rustic_core::RusticError>) -> BackupError {
    if err.is_incorrect_password() {
        return BackupError::WrongKey;
    }
    tracing::debug!(snapshot, error = %one_line(&err), "Snapshot lookup failed");
    BackupError::SnapshotNotFound(snapshot.to_owned())
}

fn corrupt(snapshot: &str, err: &rustic_core::RusticError) -> BackupError {
    BackupError::Corrupt { snapshot: snapshot.to_owned(), detail: one_line(err) }
}

/// Reads a file node's content from the repository, blob by blob (each decrypted and checked).
struct NodeReader<'a> {
    repo: &'a Rustic<IndexedFullStatus>,
    file: OpenFile,
    offset: usize,
    buf: bytes::Bytes,
    pos: usize,
}

impl<'a> NodeReader<'a> {
    fn new(repo: &'a Rustic<IndexedFullStatus>, node: &Node) -> rustic_core::RusticResult<Self> {
        Ok(Self { repo, file: repo.open_file(node)?, offset: 0, buf: Default::default(), pos: 0 })
    }
}

impl Read for NodeReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        const CHUNK: usize = 4 << 20;
        if self.pos == self.buf.len() {
            self.buf = self
                .repo
                .read_file_at(&self.file, self.offset, CHUNK)
                .map_err(|e| std::io::Error::other(one_line(&e)))?;
            self.pos = 0;
            self.offset += self.buf.len();
            if self.buf.is_empty() {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A tar source unpacked into the staging area; removed when dropped.
struct Staged(PathBuf);

impl Staged {
    fn unpack(staging: &Path, reader: Box<dyn Read + Send>) -> Result<Self> {
        private_dir(staging)?;
        let dir = staging.join(uuid::Uuid::new_v4().to_string());
        std::fs::create_dir(&dir).map_err(|e| BackupError::io(format!("cannot create {}", dir.display()), e))?;
        let staged = Staged(dir);
        let mut archive = tar::Archive::new(reader);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(true);
        archive.set_overwrite(true);
        archive
            .unpack(&staged.0)
            .map_err(|e| BackupError::Source(format!("cannot unpack the volume's archive: {e}")))?;
        Ok(staged)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(path = %self.0.display(), error = %e, "Could not remove a staged backup source");
        }
    }
}

/// Creates `path` (and its parents) with mode 0700: repositories and staged data are private.
fn private_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| BackupError::io(format!("cannot create {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, data: &[u8]) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, data).expect("write");
    }

    /// A real repository in a temporary directory: back up, read back, restore, tar, and a
    /// flipped byte refused.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_directory_round_trips_and_a_damaged_pack_is_refused() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let (src, repo_dir) = (tmp.path().join("src"), tmp.path().join("repo"));
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        write(&src, "a/big.bin", &big);
        write(&src, "a/b/small.txt", b"hello");
        write(&src, "empty", b"");
        std::os::unix::fs::symlink("a/b/small.txt", src.join("link")).expect("symlink");
        let original = Manifest::of_dir(&src).expect("manifest");

        let repo = RusticRepository::local(repo_dir.clone(), "pw".into(), tmp.path().join("staging"));
        let meta = SnapshotMeta { label: "site-x".into(), tags: vec!["backup:1".into()] };
        let snap = repo.backup(Source::Dir(src.clone()), meta.clone()).await.expect("backup");
        assert!(snap.file_count >= 3, "{snap:?}");
        assert_eq!(snap.paths, vec![crate::SNAPSHOT_ROOT.to_owned()]);
        assert!(snap.tags.contains(&"backup:1".to_owned()));
        assert_eq!(repo.snapshots().await.expect("list").len(), 1);
        assert_eq!(repo.verify(&snap.id).await.expect("verify"), original);

        let into = tmp.path().join("restored");
        repo.restore(&snap.id, &into).await.expect("restore");
        assert_eq!(Manifest::of_dir(&into).expect("manifest"), original);

        // The tar stream holds the same files.
        struct Shared(std::sync::Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = std::sync::Arc::new(Mutex::new(Vec::new()));
        repo.dump_tar(&snap.id, Box::new(Shared(buf.clone()))).await.expect("tar");
        let tar_bytes = buf.lock().expect("lock").clone();
        let untarred = tmp.path().join("untarred");
        tar::Archive::new(&tar_bytes[..]).unpack(&untarred).expect("untar");
        assert_eq!(Manifest::of_dir(&untarred).expect("manifest"), original);

        // The same data again adds (almost) nothing; a tar source gives the same tree.
        let mut archive = tar::Builder::new(Vec::new());
        archive.follow_symlinks(false);
        archive.append_dir_all("data", &src).expect("tar src");
        let tar_src = archive.into_inner().expect("tar");
        let again = repo
            .backup(Source::Tar { archive: Box::new(std::io::Cursor::new(tar_src)), root: "data".into() }, meta)
            .await
            .expect("backup of a tar");
        assert!(again.added_bytes < 10_000, "de-duplicated: {again:?}");
        assert_eq!(repo.verify(&again.id).await.expect("verify"), original);

        // Another password does not open it.
        let wrong = RusticRepository::local(repo_dir.clone(), "other".into(), tmp.path().join("staging"));
        assert!(matches!(wrong.verify(&snap.id).await, Err(BackupError::WrongKey)));

        // One flipped byte in the biggest pack: verify and restore refuse, nothing is written.
        let mut packs: Vec<PathBuf> = Vec::new();
        let mut dirs = vec![repo_dir.join("data")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(d).expect("ls") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    dirs.push(p)
                } else {
                    packs.push(p)
                }
            }
        }
        let pack = packs.into_iter().max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).expect("pack");
        let mut bytes = std::fs::read(&pack).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&pack, bytes).expect("write");
        let err = repo.verify(&snap.id).await.expect_err("damaged");
        assert!(err.is_corrupt(), "{err}");
        let refused = tmp.path().join("refused");
        assert!(repo.restore(&snap.id, &refused).await.expect_err("refused").is_corrupt());
        assert!(!refused.exists() || std::fs::read_dir(&refused).expect("ls").count() == 0);
        assert!(repo.check(ReadData::All).await.is_err(), "check --read-data sees it too");
        assert!(matches!(repo.verify("ffffffff").await, Err(BackupError::SnapshotNotFound(_))));
    }
}
