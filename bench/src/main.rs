//! `berth-bench`: Berth and a minimal reference service (axum + tokio-postgres, `reference.rs`)
//! side by side on one PostgreSQL, driven by Debian's `wrk`, alternating per point; prints
//! req/s, p50, p99 and the ratio Berth / reference. docs/benchmarks.md has the command and the
//! results.
//!
//! ```sh
//! cargo build --release -p berth-server -p berth-bench
//! target/release/berth-bench                 # 15 s per point
//! target/release/berth-bench --seconds 3     # quick
//! ```
//!
//! It starts its own durable PostgreSQL (fsync on: what production runs) on a free loopback
//! port unless `--database-url` names a server (its `postgres` database is used to create a
//! fresh one), a Berth on it (`berth serve --no-workers`: the request path only, no Docker, no
//! nginx), the reference on the same database, and a Berth on the embedded default (SQLite in a
//! fresh data directory). Every signup sent is a new one: bodies are generated and signed before
//! each point, one per request, never reused (the run fails if a point runs out of them).

mod backup;
mod monitoring;
mod reconcile;
mod reference;

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WEBHOOK_SECRET: &str = "bench-webhook-secret-0123456789abcdef";
const SECRET_KEY: &str = "bench-secret-key-0123456789abcdef0123456789abcdef";
const BASE_DOMAIN: &str = "bench.test";
/// Signed bodies generated per second of a point and target: above any rate reached here (the
/// reference's one INSERT reached ~2,000/s on one connection on a quiet machine).
const BODIES_PER_SECOND: usize = 8_000;

const USAGE: &str = "usage: berth-bench [--seconds N] [--database-url postgres://user@host:port/postgres] [--berth PATH] [--only NAME]
       berth-bench monitoring [--help]   (issue 10: ingest, collector CPU, 30-day query; monitoring.rs)
       berth-bench backup [--help]       (issue 11: Berth's backup engine beside restic; backup.rs)
       berth-bench reconcile [--help]    (issue 12: the idle reconcile pass over 200 running sites; reconcile.rs)
       berth-bench reference   (internal: the reference service; BENCH_REF_DATABASE_URL, BENCH_REF_LISTEN, BENCH_REF_SECRET)";

struct Options {
    seconds: u64,
    database_url: Option<String>,
    berth: PathBuf,
    only: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("reference") {
        let url = std::env::var("BENCH_REF_DATABASE_URL").context("BENCH_REF_DATABASE_URL")?;
        let listen = std::env::var("BENCH_REF_LISTEN").context("BENCH_REF_LISTEN")?;
        let secret = std::env::var("BENCH_REF_SECRET").context("BENCH_REF_SECRET")?;
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        return rt.block_on(reference::run(&url, &listen, secret));
    }
    match args.first().map(String::as_str) {
        Some("monitoring") => return monitoring::main(&args[1..]),
        Some("backup") => return backup::main(&args[1..]),
        Some("reconcile") => return reconcile::main(&args[1..]),
        _ => {}
    }
    let opts = parse(&args)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(opts))
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let exe = std::env::current_exe()?;
    let mut opts = Options { seconds: 15, database_url: None, berth: exe.with_file_name("berth"), only: None };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| anyhow!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--seconds" => opts.seconds = value()?.parse().map_err(|_| anyhow!("--seconds takes a whole number"))?,
            "--database-url" => opts.database_url = Some(value()?.clone()),
            "--berth" => opts.berth = PathBuf::from(value()?),
            "--only" => opts.only = Some(value()?.clone()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    if opts.seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    if !opts.berth.exists() {
        bail!(
            "no berth binary at {} (build it: cargo build --release -p berth-server -p berth-bench, or pass --berth)",
            opts.berth.display()
        );
    }
    Ok(opts)
}

/// Processes the run started; killed (and the scratch directory removed) on drop.
struct Scratch {
    dir: PathBuf,
    children: Vec<(&'static str, Child)>,
    postgres: Option<(PathBuf, PathBuf, Option<String>)>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some((bin, data, user)) = &self.postgres {
            let mut cmd = as_user(user.as_deref(), &bin.join("pg_ctl"));
            let _ = cmd.args(["stop", "-D"]).arg(data).args(["-m", "immediate", "-s"]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn as_user(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(u) => {
            let mut c = Command::new("runuser");
            c.args(["-u", u, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A durable PostgreSQL of our own (default configuration: fsync, synchronous_commit and
/// full_page_writes on), like scripts/test.sh starts but without its speed-over-safety settings.
fn start_postgres(scratch: &mut Scratch) -> anyhow::Result<String> {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .context("no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)")?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .max_by_key(|p| {
            p.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        })
        .ok_or_else(|| anyhow!("no initdb under /usr/lib/postgresql/*/bin"))?;
    let root = unsafe_is_root();
    let user = root.then(|| "postgres".to_owned());
    let pg = scratch.dir.join("pg");
    let data = pg.join("data");
    let sockets = pg.join("sockets");
    std::fs::create_dir_all(&sockets)?;
    if root {
        let ok = Command::new("chown").args(["-R", "postgres:"]).arg(&pg).status()?.success()
            && Command::new("chmod").arg("755").arg(&scratch.dir).status()?.success();
        if !ok {
            bail!("cannot hand {} to the postgres user", pg.display());
        }
    }
    let out = as_user(user.as_deref(), &bin.join("initdb"))
        .current_dir(&scratch.dir)
        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "-D"])
        .arg(&data)
        .output()?;
    if !out.status.success() {
        bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let port = free_port()?;
    let mut conf = std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf"))?;
    writeln!(
        conf,
        "\n# berth-bench\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nmax_connections = 200",
        sockets.display()
    )?;
    let ok = as_user(user.as_deref(), &bin.join("pg_ctl"))
        .current_dir(&scratch.dir)
        .args(["start", "-W", "-s", "-D"])
        .arg(&data)
        .arg("-l")
        .arg(pg.join("postgresql.log"))
        .status()?
        .success();
    scratch.postgres = Some((bin.clone(), data, user));
    if !ok {
        bail!("pg_ctl start failed (log: {})", pg.join("postgresql.log").display());
    }
    for _ in 0..300 {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .status()?
            .success();
        if ready {
            return Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("PostgreSQL did not become ready within 30 s")
}

/// A new database named `name` on the server `given` names (its `postgres` database), or on a
/// durable PostgreSQL of our own started in `scratch`; its URL.
async fn fresh_database(scratch: &mut Scratch, given: Option<&str>, name: &str) -> anyhow::Result<String> {
    let admin_url = match given {
        Some(url) => url.to_owned(),
        None => {
            eprintln!("==> starting a durable PostgreSQL");
            start_postgres(scratch)?
        }
    };
    let (client, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await?;
    let task = tokio::spawn(conn);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
    drop(client);
    let _ = task.await;
    match admin_url.rsplit_once('/') {
        Some((base, _)) => Ok(format!("{base}/{name}")),
        None => bail!("--database-url must end in /<database>"),
    }
}

fn unsafe_is_root() -> bool {
    // `id -u` rather than libc: this crate needs nothing unsafe.
    Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false)
}

/// A tiny HTTP/1.1 client for the few set-up requests (wrk does the measuring).
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("not an HTTP answer from {addr}: {text}"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

async fn wait_healthy(addr: &str, child: &mut Child, log: &Path) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok((200, _)) = http(addr, "GET", "/healthz", &[], "").await {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("the process on {addr} exited ({status}); log: {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("nothing answered /healthz on {addr} within 60 s; log: {}", log.display())
}

fn sign(body: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn signup_body(tag: &str, i: usize) -> String {
    format!(
        r#"{{"id":"evt-{tag}-{i}","email":"u{i}@{tag}.{BASE_DOMAIN}","company_name":"Bench {i}","plan":"starter","subdomain":"s-{tag}-{i}"}}"#
    )
}

struct Berth {
    addr: String,
    env: Vec<(&'static str, String)>,
}

fn berth_env(data_dir: &Path, listen: &str, database_url: Option<&str>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("BERTH_LISTEN", listen.to_owned()),
        ("BERTH_PUBLIC_URL", format!("http://{listen}")),
        ("BERTH_DATA_DIR", data_dir.display().to_string()),
        ("BERTH_SECRET_KEY", SECRET_KEY.to_owned()),
        ("BERTH_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("BERTH_BASE_DOMAIN", BASE_DOMAIN.to_owned()),
        ("BERTH_DOCKER_HOST", "off".to_owned()),
        ("BERTH_INGRESS_MODE", "off".to_owned()),
        ("BERTH_BOOTSTRAP_ADMIN_EMAIL", format!("admin@{BASE_DOMAIN}")),
        ("BERTH_BOOTSTRAP_ADMIN_PASSWORD", "bench-admin-password-0123456789".to_owned()),
    ];
    if let Some(url) = database_url {
        env.push(("BERTH_DATABASE_URL", url.to_owned()));
    }
    env
}

fn start_berth(
    scratch: &mut Scratch,
    opts: &Options,
    name: &'static str,
    database_url: Option<&str>,
) -> anyhow::Result<(Berth, PathBuf)> {
    let data = scratch.dir.join(name);
    std::fs::create_dir_all(&data)?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let env = berth_env(&data, &addr, database_url);
    let log = scratch.dir.join(format!("{name}.log"));
    let child = Command::new(&opts.berth)
        .args(["serve", "--no-workers"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("BERTH_REDIS_URL")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(scratch.dir.join(format!("{name}.out")))?)
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("cannot start {}", opts.berth.display()))?;
    scratch.children.push((name, child));
    Ok((Berth { addr, env }, log))
}

/// An API token for the user `email`, from `berth token create` run against the Berth that
/// `env` configures.
fn create_token(berth: &Path, env: &[(&'static str, String)], email: &str) -> anyhow::Result<String> {
    let out = Command::new(berth)
        .args(["token", "create", "--email", email, "--name", "bench"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("BERTH_LOG", "warn")
        .output()?;
    if !out.status.success() {
        bail!("berth token create failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// One measured point against one target.
#[derive(Debug, Clone, Copy, Default)]
struct Measured {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
}

#[derive(Clone, Copy)]
enum Work {
    Healthz,
    GetSite,
    Signup,
}

struct Point {
    name: &'static str,
    work: Work,
    connections: u32,
    sqlite: bool,
}

const POINTS: &[Point] = &[
    Point { name: "GET /api/v1/sites/{id}, 1 conn", work: Work::GetSite, connections: 1, sqlite: false },
    Point { name: "GET /api/v1/sites/{id}, 16 conns", work: Work::GetSite, connections: 16, sqlite: false },
    Point { name: "GET /healthz, 64 conns", work: Work::Healthz, connections: 64, sqlite: false },
    Point { name: "signup webhook, 1 conn", work: Work::Signup, connections: 1, sqlite: false },
    Point { name: "signup webhook, 16 conns", work: Work::Signup, connections: 16, sqlite: false },
    Point { name: "signup, embedded SQLite, 1 conn", work: Work::Signup, connections: 1, sqlite: true },
    Point { name: "signup, embedded SQLite, 16 conns", work: Work::Signup, connections: 16, sqlite: true },
];

const LUA: &str = r#"
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  reqs = {}
  idx = 0
  wrapped = 0
  local file = os.getenv("BENCH_BODIES") or ""
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  signed = file ~= ""
  if signed then
    local i = 0
    for line in io.lines(file) do
      if i % nthreads == tid then
        local tab = string.find(line, "\t", 1, true)
        local sig = string.sub(line, 1, tab - 1)
        local body = string.sub(line, tab + 1)
        reqs[#reqs + 1] = wrk.format("POST", wrk.path, {["Content-Type"] = "application/json", ["Berth-Signature"] = sig}, body)
      end
      i = i + 1
    end
  else
    reqs[1] = wrk.format("GET", wrk.path)
  end
end
function request()
  idx = idx + 1
  if idx > #reqs then
    idx = 1
    if signed then
      wrapped = wrapped + 1
    end
  end
  return reqs[idx]
end
function done(summary, latency, requests)
  local wrapped = 0
  for _, t in ipairs(threads) do
    wrapped = wrapped + (t:get("wrapped") or 0)
  end
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout, wrapped))
end
"#;

struct Run {
    seconds: u64,
    script: PathBuf,
    dir: PathBuf,
    tag: String,
    token: String,
    site_id: String,
    counter: usize,
}

impl Run {
    async fn measure(&mut self, point: &Point, addr: &str, who: &str) -> anyhow::Result<Measured> {
        let threads = point.connections.min(2);
        let mut cmd = tokio::process::Command::new("wrk");
        cmd.arg(format!("-t{threads}"))
            .arg(format!("-c{}", point.connections))
            .arg(format!("-d{}s", self.seconds))
            .args(["--timeout", "5s", "-s"])
            .arg(&self.script)
            .env("BENCH_THREADS", threads.to_string());
        let bodies = self.dir.join("bodies.txt");
        let path = match point.work {
            Work::Healthz => "/healthz".to_owned(),
            Work::GetSite => {
                cmd.arg("-H").arg(format!("Authorization: Bearer {}", self.token));
                format!("/api/v1/sites/{}", self.site_id)
            }
            Work::Signup => {
                let n = BODIES_PER_SECOND * self.seconds as usize + 1_000;
                let t = chrono::Utc::now().timestamp();
                let mut out = std::io::BufWriter::new(std::fs::File::create(&bodies)?);
                self.counter += 1;
                let tag = format!("{}{}", self.tag, self.counter);
                for i in 0..n {
                    let body = signup_body(&tag, i);
                    writeln!(out, "{}\t{body}", sign(&body, t))?;
                }
                out.flush()?;
                cmd.env("BENCH_BODIES", &bodies);
                "/api/v1/webhooks/signup".to_owned()
            }
        };
        cmd.arg(format!("http://{addr}{path}"));
        let out = cmd.output().await.context("cannot run wrk (apt-get install wrk)")?;
        let _ = std::fs::remove_file(&bodies);
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("BENCH "))
            .ok_or_else(|| anyhow!("wrk printed no result: {text}{}", String::from_utf8_lossy(&out.stderr)))?;
        let v: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        let [requests, duration_us, p50, p99, non2xx, errors, wrapped] = v[..] else {
            bail!("unexpected wrk result line: {line}");
        };
        if non2xx > 0 || errors > 0 {
            bail!(
                "{who} on `{}`: {non2xx} non-2xx answers and {errors} socket errors in {requests} requests",
                point.name
            );
        }
        if wrapped > 0 {
            bail!("{who} on `{}` used up the signed signups generated for it: raise BODIES_PER_SECOND", point.name);
        }
        Ok(Measured { rps: requests as f64 / (duration_us as f64 / 1e6), p50_us: p50 as f64, p99_us: p99 as f64 })
    }
}

fn ms(us: f64) -> String {
    format!("{:.2} ms", us / 1000.0)
}

async fn run(opts: Options) -> anyhow::Result<()> {
    let tag: String = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let dir = std::env::temp_dir().join(format!("berth-bench-{tag}"));
    std::fs::create_dir_all(&dir)?;
    let mut scratch = Scratch { dir: dir.clone(), children: vec![], postgres: None };
    let database_url =
        fresh_database(&mut scratch, opts.database_url.as_deref(), &format!("berth_bench_{tag}")).await?;

    eprintln!("==> starting Berth on PostgreSQL and on the embedded default (SQLite)");
    let (berth, berth_log) = start_berth(&mut scratch, &opts, "berth-pg", Some(&database_url))?;
    let (sqlite, sqlite_log) = start_berth(&mut scratch, &opts, "berth-sqlite", None)?;
    let idx = scratch.children.len();
    wait_healthy(&berth.addr, &mut scratch.children[idx - 2].1, &berth_log).await?;
    wait_healthy(&sqlite.addr, &mut scratch.children[idx - 1].1, &sqlite_log).await?;

    // A customer with a site (through the signup webhook itself) and their API token.
    let body = signup_body(&format!("setup{tag}"), 0);
    let sig = sign(&body, chrono::Utc::now().timestamp());
    let (status, answer) = http(
        &berth.addr,
        "POST",
        "/api/v1/webhooks/signup",
        &[("Content-Type", "application/json".into()), ("Berth-Signature", sig)],
        &body,
    )
    .await?;
    if status != 202 {
        bail!("the set-up signup answered {status}: {answer}");
    }
    let answer: serde_json::Value = serde_json::from_str(&answer)?;
    let site_id = answer["site_id"].as_str().ok_or_else(|| anyhow!("no site_id in {answer}"))?.to_owned();
    let token = create_token(&opts.berth, &berth.env, &format!("u0@setup{tag}.{BASE_DOMAIN}"))?;

    eprintln!("==> starting the reference service");
    let ref_addr = format!("127.0.0.1:{}", free_port()?);
    let ref_log = dir.join("reference.log");
    let child = Command::new(std::env::current_exe()?)
        .arg("reference")
        .env("BENCH_REF_DATABASE_URL", &database_url)
        .env("BENCH_REF_LISTEN", &ref_addr)
        .env("BENCH_REF_SECRET", WEBHOOK_SECRET)
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&ref_log)?)
        .spawn()?;
    scratch.children.push(("reference", child));
    let idx = scratch.children.len() - 1;
    wait_healthy(&ref_addr, &mut scratch.children[idx].1, &ref_log).await?;
    for addr in [&berth.addr, &ref_addr] {
        let (status, answer) =
            http(addr, "GET", &format!("/api/v1/sites/{site_id}"), &[("Authorization", format!("Bearer {token}"))], "")
                .await?;
        if status != 200 {
            bail!("GET site on {addr} answered {status}: {answer}");
        }
    }

    let script = dir.join("bench.lua");
    std::fs::write(&script, LUA)?;
    let mut run = Run { seconds: opts.seconds, script, dir: dir.clone(), tag: tag.clone(), token, site_id, counter: 0 };
    let started = Instant::now();
    let mut rows = Vec::new();
    for point in POINTS {
        if let Some(only) = &opts.only {
            if !point.name.contains(only.as_str()) {
                continue;
            }
        }
        let (b, r) = if point.sqlite {
            eprintln!("==> {}: Berth (SQLite)", point.name);
            (run.measure(point, &sqlite.addr, "Berth (SQLite)").await?, None)
        } else {
            eprintln!("==> {}: Berth", point.name);
            let b = run.measure(point, &berth.addr, "Berth").await?;
            eprintln!("==> {}: reference", point.name);
            let r = run.measure(point, &ref_addr, "reference").await?;
            (b, Some(r))
        };
        // Each point as it is measured, so an aborted run still shows what it measured.
        match &r {
            Some(r) => eprintln!(
                "    Berth {:.0} req/s (p50 {}, p99 {}), reference {:.0} req/s: ratio {:.2}",
                b.rps,
                ms(b.p50_us),
                ms(b.p99_us),
                r.rps,
                b.rps / r.rps
            ),
            None => eprintln!("    Berth {:.0} req/s (p50 {}, p99 {})", b.rps, ms(b.p50_us), ms(b.p99_us)),
        }
        rows.push((point.name, b, r));
    }

    println!();
    println!(
        "| work | Berth req/s | Berth p50 | Berth p99 | reference req/s | reference p50 | reference p99 | ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, b, r) in rows {
        match r {
            Some(r) => println!(
                "| {name} | {:.0} | {} | {} | {:.0} | {} | {} | {:.2} |",
                b.rps,
                ms(b.p50_us),
                ms(b.p99_us),
                r.rps,
                ms(r.p50_us),
                ms(r.p99_us),
                b.rps / r.rps
            ),
            None => println!("| {name} | {:.0} | {} | {} | — | — | — | — |", b.rps, ms(b.p50_us), ms(b.p99_us)),
        }
    }
    println!();
    println!(
        "{} s per point, {:.0} s in all; logs were in {}",
        opts.seconds,
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}
