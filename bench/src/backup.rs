//! `berth-bench backup`: Berth's backup engine (`berth_backup::Repository` over a local
//! restic-format repository, what the backup jobs call) beside the stock `restic` CLI on the
//! same data, in the same run (docs/benchmarks.md, "Backups (issue 11)").
//!
//! For each data size (default 100 MB and 1 GB; a directory of files of mixed sizes, about 70 %
//! random bytes and 30 % compressible log-like text): a first backup, an unchanged re-run, a
//! re-run after 1 % of the data changed (whole files rewritten), and a restore of the last
//! snapshot into an empty directory; time, throughput over the data size, and the ratio Berth /
//! restic. Then 30 daily snapshots at 1 % daily change of the smaller set in a fresh repository
//! of each engine, and the repository sizes after them.
//!
//! Berth's restore reads every blob back and checks it before it writes anything
//! (`Repository::restore` = verify + restore), so it is also shown beside `restic restore
//! --verify`, which reads the restored files back; `restic restore` alone is the plain figure.
//!
//! Data and repositories live under `--dir` (default /work/tmp-bench, which has room; the
//! system's /tmp may not) in a directory of the run's own, removed at the end.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use berth_backup::{Repository, RusticRepository, SnapshotMeta, Source};
use rand::{Rng, RngCore, SeedableRng};

const USAGE: &str =
    "usage: berth-bench backup [--dir /work/tmp-bench] [--sizes-mb 100,1000] [--days 30] [--daily-mb 100]";

const PASSWORD: &str = "berth-bench-backup-password-0123456789";

struct Options {
    dir: PathBuf,
    sizes_mb: Vec<u64>,
    days: u32,
    daily_mb: u64,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options { dir: PathBuf::from("/work/tmp-bench"), sizes_mb: vec![100, 1000], days: 30, daily_mb: 100 };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| anyhow!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--dir" => o.dir = PathBuf::from(value()?),
            "--sizes-mb" => {
                o.sizes_mb = value()?
                    .split(',')
                    .map(|s| s.trim().parse::<u64>().map_err(|_| anyhow!("--sizes-mb takes numbers: 100,1000")))
                    .collect::<anyhow::Result<_>>()?
            }
            "--days" => o.days = value()?.parse().map_err(|_| anyhow!("--days takes a whole number"))?,
            "--daily-mb" => o.daily_mb = value()?.parse().map_err(|_| anyhow!("--daily-mb takes a whole number"))?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    if o.sizes_mb.contains(&0) || o.daily_mb == 0 {
        bail!("sizes must be at least 1 MB");
    }
    Ok(o)
}

/// The run's directory, removed on drop however the run ends.
struct Workdir(PathBuf);

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the group; `args` are the arguments after `backup`.
pub fn main(args: &[String]) -> anyhow::Result<()> {
    let opts = parse(args)?;
    let version =
        Command::new("restic").arg("version").output().context("cannot run restic (apt-get install restic)")?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    std::fs::create_dir_all(&opts.dir).with_context(|| format!("cannot create {}", opts.dir.display()))?;
    let work = Workdir(opts.dir.join(format!("backup-{:06x}", rand::random::<u32>() & 0xff_ffff)));
    std::fs::create_dir_all(&work.0)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    eprintln!("==> {version}; working in {}", work.0.display());
    let mut rows: Vec<[String; 5]> = Vec::new();
    for &mb in &opts.sizes_mb {
        rows.extend(rt.block_on(one_size(&work.0, mb))?);
    }
    let daily = rt.block_on(daily(&work.0, opts.daily_mb, opts.days))?;
    println!();
    println!("| data | operation | Berth | restic | Berth / restic |");
    println!("|---|---|---:|---:|---:|");
    for [data, op, berth, restic, ratio] in rows {
        println!("| {data} | {op} | {berth} | {restic} | {ratio} |");
    }
    println!();
    println!("{daily}");
    println!("({version})");
    Ok(())
}

/// Writes `mb` megabytes of files into `dir`: files of 4 KiB to 8 MiB, about 70 % random bytes
/// (as images and archives are) and 30 % compressible text. Deterministic per `seed`.
fn make_data(dir: &Path, mb: u64, seed: u64) -> anyhow::Result<Vec<(PathBuf, u64)>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let total = mb * 1_000_000;
    let (mut written, mut files) = (0u64, Vec::new());
    let mut i = 0u64;
    while written < total {
        let sub = dir.join(format!("d{:02}", i % 16));
        std::fs::create_dir_all(&sub)?;
        // Sizes spread over three orders of magnitude, as a site's files are.
        let size = match rng.gen_range(0..10) {
            0..=4 => rng.gen_range(4_096..65_536),
            5..=8 => rng.gen_range(65_536..1_048_576),
            _ => rng.gen_range(1_048_576..8_388_608),
        }
        .min(total - written)
        .max(1);
        let text = rng.gen_bool(0.3);
        let path = sub.join(format!("f{i:05}.{}", if text { "log" } else { "bin" }));
        write_file(&path, size, text, &mut rng)?;
        files.push((path, size));
        written += size;
        i += 1;
    }
    Ok(files)
}

fn write_file(path: &Path, size: u64, text: bool, rng: &mut impl RngCore) -> anyhow::Result<()> {
    let mut data = vec![0u8; size as usize];
    if text {
        let mut line = Vec::new();
        let mut at = 0usize;
        while at < data.len() {
            line.clear();
            let n = rng.next_u32();
            line.extend_from_slice(
                format!(
                    "2026-12-02T{:02}:{:02}:{:02}Z 10.0.{}.{} \"GET /shop/item/{} HTTP/1.1\" 200 {} \"Mozilla/5.0\"\n",
                    n % 24,
                    n % 60,
                    (n >> 8) % 60,
                    (n >> 16) % 256,
                    (n >> 24) % 256,
                    n % 5000,
                    n % 100_000
                )
                .as_bytes(),
            );
            let take = line.len().min(data.len() - at);
            data[at..at + take].copy_from_slice(&line[..take]);
            at += take;
        }
    } else {
        rng.fill_bytes(&mut data);
    }
    std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))
}

/// Rewrites whole files, chosen at random, until `share` of the bytes changed.
fn change(files: &[(PathBuf, u64)], share: f64, seed: u64) -> anyhow::Result<u64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let total: u64 = files.iter().map(|(_, s)| s).sum();
    let goal = (total as f64 * share) as u64;
    let mut changed = 0u64;
    while changed < goal {
        let (path, size) = &files[rng.gen_range(0..files.len())];
        let text = path.extension().is_some_and(|e| e == "log");
        write_file(path, *size, text, &mut rng)?;
        changed += size;
    }
    Ok(changed)
}

/// The bytes under `path` (apparent sizes of files).
fn du(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn restic(repo: &Path, cache: &Path, args: &[&str]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = Command::new("restic")
        .arg("-r")
        .arg(repo)
        .args(args)
        .args(["--quiet"])
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("RESTIC_CACHE_DIR", cache)
        .output()
        .context("cannot run restic")?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!("restic {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(took)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// "12.3 s (81 MB/s)" over `bytes` of data.
fn timed(d: Duration, bytes: u64) -> String {
    format!("{} ({:.0} MB/s)", secs(d), bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9))
}

fn ratio(berth: Duration, restic: Duration) -> String {
    format!("{:.2}", berth.as_secs_f64() / restic.as_secs_f64().max(1e-9))
}

fn meta(n: u32) -> SnapshotMeta {
    SnapshotMeta { label: "site-bench".into(), tags: vec![format!("run:{n}")] }
}

async fn berth_backup(repo: &RusticRepository, data: &Path, n: u32) -> anyhow::Result<(Duration, String)> {
    let started = Instant::now();
    let snap = repo.backup(Source::Dir(data.to_path_buf()), meta(n)).await?;
    Ok((started.elapsed(), snap.id))
}

async fn one_size(work: &Path, mb: u64) -> anyhow::Result<Vec<[String; 5]>> {
    let root = work.join(format!("{mb}mb"));
    let data = root.join("data");
    let (berth_repo, restic_repo, cache) =
        (root.join("berth-repo"), root.join("restic-repo"), root.join("restic-cache"));
    std::fs::create_dir_all(&data)?;
    eprintln!("==> {mb} MB: writing the data");
    let files = make_data(&data, mb, mb)?;
    let bytes: u64 = files.iter().map(|(_, s)| s).sum();
    let label = format!("{mb} MB, {} files", files.len());
    let repo = RusticRepository::local(berth_repo.clone(), PASSWORD.into(), root.join("staging"));
    repo.ensure().await?;
    restic(&restic_repo, &cache, &["init"])?;
    let data_arg = data.to_str().ok_or_else(|| anyhow!("the data path is not UTF-8"))?;
    let mut rows = Vec::new();
    let mut row = |op: &str, b: Duration, r: Duration, over: u64| {
        rows.push([label.clone(), op.to_owned(), timed(b, over), timed(r, over), ratio(b, r)]);
    };

    eprintln!("==> {mb} MB: first backup");
    let (b, _) = berth_backup(&repo, &data, 1).await?;
    let r = restic(&restic_repo, &cache, &["backup", data_arg])?;
    row("first backup", b, r, bytes);
    let sizes = (du(&berth_repo), du(&restic_repo));

    eprintln!("==> {mb} MB: unchanged re-run");
    let (b, _) = berth_backup(&repo, &data, 2).await?;
    let r = restic(&restic_repo, &cache, &["backup", data_arg])?;
    row("unchanged re-run", b, r, bytes);

    eprintln!("==> {mb} MB: 1 % changed");
    change(&files, 0.01, mb + 1)?;
    let (b, last) = berth_backup(&repo, &data, 3).await?;
    let r = restic(&restic_repo, &cache, &["backup", data_arg])?;
    row("1 % changed", b, r, bytes);

    eprintln!("==> {mb} MB: restore");
    let into = root.join("restored-berth");
    let started = Instant::now();
    let manifest = repo.restore(&last, &into).await?;
    let b = started.elapsed();
    let restored = manifest.entries.iter().filter(|e| matches!(e.kind, berth_backup::EntryKind::File { .. })).count();
    if restored != files.len() {
        bail!("Berth's restore of {mb} MB holds {restored} files, not {}", files.len());
    }
    std::fs::remove_dir_all(&into)?;
    let into = root.join("restored-restic");
    let into_arg = into.to_str().ok_or_else(|| anyhow!("the restore path is not UTF-8"))?;
    let r = restic(&restic_repo, &cache, &["restore", "latest", "--target", into_arg])?;
    std::fs::remove_dir_all(&into)?;
    row("restore (Berth: verify + restore)", b, r, bytes);
    let rv = restic(&restic_repo, &cache, &["restore", "latest", "--verify", "--target", into_arg])?;
    std::fs::remove_dir_all(&into)?;
    row("restore (restic with --verify)", b, rv, bytes);

    let after = (du(&berth_repo), du(&restic_repo));
    rows.push([
        label.clone(),
        "repository size after the first backup / after three".into(),
        format!("{:.1} / {:.1} MB", sizes.0 as f64 / 1e6, after.0 as f64 / 1e6),
        format!("{:.1} / {:.1} MB", sizes.1 as f64 / 1e6, after.1 as f64 / 1e6),
        format!("{:.2}", after.0 as f64 / after.1.max(1) as f64),
    ]);
    std::fs::remove_dir_all(&root)?;
    Ok(rows)
}

/// `days` daily snapshots at 1 % daily change in a fresh repository of each engine.
async fn daily(work: &Path, mb: u64, days: u32) -> anyhow::Result<String> {
    let root = work.join("daily");
    let data = root.join("data");
    let (berth_repo, restic_repo, cache) =
        (root.join("berth-repo"), root.join("restic-repo"), root.join("restic-cache"));
    std::fs::create_dir_all(&data)?;
    eprintln!("==> {days} daily snapshots of {mb} MB at 1 % daily change");
    let files = make_data(&data, mb, 7)?;
    let bytes: u64 = files.iter().map(|(_, s)| s).sum();
    let repo = RusticRepository::local(berth_repo.clone(), PASSWORD.into(), root.join("staging"));
    repo.ensure().await?;
    restic(&restic_repo, &cache, &["init"])?;
    let data_arg = data.to_str().ok_or_else(|| anyhow!("the data path is not UTF-8"))?;
    let (mut berth_time, mut restic_time, mut changed) = (Duration::ZERO, Duration::ZERO, 0u64);
    for day in 1..=days {
        if day > 1 {
            changed += change(&files, 0.01, 1_000 + u64::from(day))?;
        }
        berth_time += berth_backup(&repo, &data, day).await?.0;
        restic_time += restic(&restic_repo, &cache, &["backup", data_arg])?;
    }
    let snapshots = repo.snapshots().await?.len();
    let (b, r) = (du(&berth_repo), du(&restic_repo));
    let out = format!(
        "{days} daily snapshots of {:.0} MB ({} files) at 1 % daily change ({:.0} MB rewritten in all): \
         repository {:.1} MB with Berth ({snapshots} snapshots, {} of backups), {:.1} MB with restic ({} of backups); \
         Berth / restic size {:.2}",
        bytes as f64 / 1e6,
        files.len(),
        changed as f64 / 1e6,
        b as f64 / 1e6,
        secs(berth_time),
        r as f64 / 1e6,
        secs(restic_time),
        b as f64 / r.max(1) as f64
    );
    std::fs::remove_dir_all(&root)?;
    Ok(out)
}
