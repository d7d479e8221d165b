//! `berth-bench reconcile`: the idle reconcile pass of issue 12, measured on the release
//! binary as it runs. It starts a durable PostgreSQL, `berth serve` with the container runtime
//! and a managed nginx (its own Docker prefix, ingress port and data directory), makes N sites
//! through the API (customers of the `pro` plan, 20 sites each) and waits until every one runs.
//! Then, with the reconciler passing every second (`BERTH_RECONCILE_INTERVAL_SECONDS=1`), it
//! reads Berth's own `/metrics` before and after a measuring window: the passes made, their
//! durations (`berth_reconciler_pass_duration_seconds`, the whole pass with its ingress
//! renders), how many used a kept container listing, and that no drift was found.
//!
//! Everything it made is removed at the end, also when the run fails: Berth is stopped, its
//! nginx stopped (`berth ingress stop`), and every container, network and volume labelled
//! `berth.instance=<prefix>` removed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use super::{berth_env, free_port, http, wait_healthy, Scratch, BASE_DOMAIN};

const USAGE: &str = "usage: berth-bench reconcile [--sites N] [--seconds N] [--database-url postgres://user@host:port/postgres] [--berth PATH]";

const METRICS_TOKEN: &str = "bench-metrics-token-0123456789abcdef";
/// Sites per customer (the `pro` plan allows 20).
const SITES_PER_CUSTOMER: usize = 20;

struct Options {
    sites: usize,
    seconds: u64,
    database_url: Option<String>,
    berth: PathBuf,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let exe = std::env::current_exe()?;
    let mut o = Options { sites: 200, seconds: 60, database_url: None, berth: exe.with_file_name("berth") };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| anyhow!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--sites" => o.sites = value()?.parse().map_err(|_| anyhow!("--sites takes a whole number"))?,
            "--seconds" => o.seconds = value()?.parse().map_err(|_| anyhow!("--seconds takes a whole number"))?,
            "--database-url" => o.database_url = Some(value()?.clone()),
            "--berth" => o.berth = PathBuf::from(value()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    if o.sites == 0 || o.seconds == 0 {
        bail!("--sites and --seconds must be at least 1");
    }
    if !o.berth.exists() {
        bail!("no berth binary at {} (cargo build --release -p berth-server, or pass --berth)", o.berth.display());
    }
    Ok(o)
}

/// The Berth under test and what it made in Docker; on drop Berth is stopped first (so its
/// reconciler makes nothing again), then its nginx, then its containers, networks and volumes.
struct Installation {
    berth: PathBuf,
    env: Vec<(&'static str, String)>,
    prefix: String,
    child: Option<Child>,
}

impl Drop for Installation {
    fn drop(&mut self) {
        eprintln!("==> removing the bench's Berth, nginx and Docker objects ({})", self.prefix);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new(&self.berth)
            .args(["ingress", "stop"])
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("BERTH_LOG", "warn")
            .stdout(Stdio::null())
            .output();
        let label = format!("label=berth.instance={}", self.prefix);
        for (list, remove) in [
            (["ps", "-aq", "--no-trunc"].as_slice(), ["rm", "-f", "-v"].as_slice()),
            (["network", "ls", "-q"].as_slice(), ["network", "rm"].as_slice()),
            (["volume", "ls", "-q"].as_slice(), ["volume", "rm", "-f"].as_slice()),
        ] {
            let Ok(out) = Command::new("docker").args(list).args(["--filter", &label]).output() else { continue };
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
            for chunk in ids.chunks(50) {
                let _ = Command::new("docker").args(remove).args(chunk).output();
            }
        }
    }
}

/// Runs the group; `args` are the arguments after `reconcile`.
pub fn main(args: &[String]) -> anyhow::Result<()> {
    let opts = parse(args)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(opts))
}

async fn run(opts: Options) -> anyhow::Result<()> {
    let tag = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let dir = std::env::temp_dir().join(format!("berth-bench-reconcile-{tag}"));
    std::fs::create_dir_all(&dir)?;
    let mut scratch = Scratch { dir: dir.clone(), children: vec![], postgres: None };
    let name = format!("berth_bench_reconcile_{tag}");
    let database_url = super::fresh_database(&mut scratch, opts.database_url.as_deref(), &name).await?;
    super::monitoring::ensure_site_image().await?;

    let data = dir.join("berth");
    std::fs::create_dir_all(&data)?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let prefix = format!("bb{tag}");
    let mut env = berth_env(&data, &addr, Some(&database_url));
    env.retain(|(k, _)| !matches!(*k, "BERTH_DOCKER_HOST" | "BERTH_INGRESS_MODE"));
    env.extend([
        ("BERTH_DOCKER_HOST", "unix:///var/run/docker.sock".to_owned()),
        ("BERTH_DOCKER_PREFIX", prefix.clone()),
        ("BERTH_INGRESS_MODE", "managed".to_owned()),
        ("BERTH_INGRESS_LISTEN", format!("127.0.0.1:{}", free_port()?)),
        ("BERTH_RECONCILE_INTERVAL_SECONDS", "1".to_owned()),
        ("BERTH_METRICS_TOKEN", METRICS_TOKEN.to_owned()),
    ]);
    let log = dir.join("berth.log");
    eprintln!("==> starting Berth (Docker prefix {prefix}, managed nginx)");
    let child = Command::new(&opts.berth)
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("BERTH_REDIS_URL")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("berth.out"))?)
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("cannot start {}", opts.berth.display()))?;
    let mut berth = Installation { berth: opts.berth.clone(), env: env.clone(), prefix, child: Some(child) };
    let res = measure(&opts, &mut berth, &addr, &log).await;
    drop(berth);
    drop(scratch);
    res
}

async fn measure(opts: &Options, berth: &mut Installation, addr: &str, log: &Path) -> anyhow::Result<()> {
    let child = berth.child.as_mut().ok_or_else(|| anyhow!("Berth is not running"))?;
    wait_healthy(addr, child, log).await?;
    let token = super::create_token(&berth.berth, &berth.env, &format!("admin@{BASE_DOMAIN}"))?;
    let auth = [("Authorization", format!("Bearer {token}")), ("Content-Type", "application/json".to_owned())];

    eprintln!("==> making {} sites", opts.sites);
    let started = Instant::now();
    let mut customer = String::new();
    let mut ids = Vec::with_capacity(opts.sites);
    for i in 0..opts.sites {
        if i % SITES_PER_CUSTOMER == 0 {
            let body = serde_json::json!({
                "company_name": format!("Reconcile bench {i}"),
                "email": format!("c{i}@reconcile.{BASE_DOMAIN}"),
                "plan": "pro",
            });
            let (status, answer) = http(addr, "POST", "/api/v1/customers", &auth, &body.to_string()).await?;
            if status != 201 {
                bail!("creating a customer answered {status}: {answer}");
            }
            customer = id_of(&answer)?;
        }
        let body = serde_json::json!({
            "customer_id": customer,
            "name": format!("idle-{i}"),
            "domains": [format!("idle-{i}.{BASE_DOMAIN}")],
        });
        let (status, answer) = http(addr, "POST", "/api/v1/sites", &auth, &body.to_string()).await?;
        if status != 201 {
            bail!("creating a site answered {status}: {answer}");
        }
        ids.push(id_of(&answer)?);
    }
    let mut waiting = ids.clone();
    while !waiting.is_empty() {
        if started.elapsed() > Duration::from_secs(60 + 5 * opts.sites as u64) {
            bail!("{} sites never ran (Berth's log: {})", waiting.len(), log.display());
        }
        let mut still = Vec::new();
        for id in waiting {
            let (status, answer) = http(addr, "GET", &format!("/api/v1/sites/{id}"), &auth, "").await?;
            let json: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
            if status != 200 || json["status"] != "running" {
                still.push(id);
            }
        }
        waiting = still;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!("    {} sites running after {:.0} s", opts.sites, started.elapsed().as_secs_f64());

    // Each container's first health reports are news to the reconciler; the steady state of a
    // running installation starts after a round of them (every 10 s).
    eprintln!("==> settling for 20 s, then measuring for {} s", opts.seconds);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let before = scrape(addr).await?;
    tokio::time::sleep(Duration::from_secs(opts.seconds)).await;
    let after = scrape(addr).await?;
    let delta = |name: &str| after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0);
    let passes = delta("berth_reconciler_pass_duration_seconds_count");
    if passes < 1.0 {
        bail!("no reconcile pass in {} s (Berth's log: {})", opts.seconds, log.display());
    }
    let ok = delta(r#"berth_reconciler_passes_total{outcome="ok"}"#);
    let kept = delta("berth_reconciler_kept_listings_total");
    // Counters are whole numbers; summing them as such prints 0, never -0.
    let drift: i64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("berth_reconciler_drift_total"))
        .map(|(k, v)| (v - before.get(k).copied().unwrap_or(0.0)).round() as i64)
        .sum();
    let mean_ms = delta("berth_reconciler_pass_duration_seconds_sum") / passes * 1000.0;
    let mut buckets: Vec<(f64, f64)> = after
        .keys()
        .filter_map(|k| {
            let le = k.strip_prefix(r#"berth_reconciler_pass_duration_seconds_bucket{le=""#)?.strip_suffix(r#""}"#)?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, delta(k)))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let within = |limit: f64| buckets.iter().find(|(le, _)| *le >= limit).map_or(0.0, |(_, n)| n / passes * 100.0);

    println!();
    println!("| idle reconcile pass, {} sites, {} s | value |", opts.sites, opts.seconds);
    println!("|---|---:|");
    println!("| passes (ok) | {passes:.0} ({ok:.0}) |");
    println!("| passes that used a kept listing (no engine call) | {kept:.0} |");
    println!("| mean pass | {mean_ms:.1} ms |");
    println!(
        "| p50 pass (interpolated in the histogram's buckets) | {:.1} ms |",
        quantile(&buckets, passes, 0.5) * 1000.0
    );
    println!("| p95 pass (interpolated) | {:.1} ms |", quantile(&buckets, passes, 0.95) * 1000.0);
    println!("| passes under 50 ms / 100 ms | {:.0} % / {:.0} % |", within(0.05), within(0.1));
    println!("| drift found | {drift} |");
    if drift > 0 {
        bail!("the installation drifted while idle: see {}", log.display());
    }
    Ok(())
}

fn id_of(answer: &str) -> anyhow::Result<String> {
    let json: serde_json::Value = serde_json::from_str(answer).with_context(|| format!("not JSON: {answer}"))?;
    json["id"].as_str().map(str::to_owned).ok_or_else(|| anyhow!("no id in {answer}"))
}

/// Berth's own metrics (series name with labels → value).
async fn scrape(addr: &str) -> anyhow::Result<HashMap<String, f64>> {
    let (status, text) =
        http(addr, "GET", "/metrics", &[("Authorization", format!("Bearer {METRICS_TOKEN}"))], "").await?;
    if status != 200 {
        bail!("/metrics answered {status}: {text}");
    }
    Ok(text
        .lines()
        .filter(|l| l.starts_with("berth_reconciler_"))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect())
}

/// A quantile from cumulative bucket counts, interpolated linearly inside its bucket (as
/// Prometheus's `histogram_quantile` does).
fn quantile(buckets: &[(f64, f64)], total: f64, q: f64) -> f64 {
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return lower.0;
            }
            let inside = count - lower.1;
            return if inside <= 0.0 { le } else { lower.0 + (le - lower.0) * (rank - lower.1) / inside };
        }
        lower = (le, count);
    }
    lower.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn quantiles_interpolate_inside_their_bucket() {
        let buckets = [(0.01, 0.0), (0.025, 10.0), (0.05, 20.0), (f64::INFINITY, 20.0)];
        assert!((super::quantile(&buckets, 20.0, 0.5) - 0.025).abs() < 1e-9);
        assert!((super::quantile(&buckets, 20.0, 0.25) - 0.0175).abs() < 1e-9);
        assert!((super::quantile(&buckets, 20.0, 0.75) - 0.0375).abs() < 1e-9);
    }
}
