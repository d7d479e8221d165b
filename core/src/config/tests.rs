use std::path::Path;

use super::*;

fn load(vars: &[(&str, &str)]) -> Result<Config, Vec<String>> {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::load(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

#[test]
fn defaults_are_the_embedded_setup() {
    let cfg = load(&[]).expect("defaults are valid");
    assert!(cfg.server.is_embedded());
    assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(cfg.server.public_url.as_str(), "http://127.0.0.1:8080/");
    assert!(cfg.server.effective_database_url().starts_with("sqlite://./data/berth.db"));
    assert!(!cfg.server.cookie_secure());
    assert_eq!(cfg.server.session_ttl_minutes, 720);
    assert_eq!(cfg.dns.target.to_string(), "127.0.0.1");
    assert_eq!(cfg.runtime.ingress_listen.to_string(), "127.0.0.1:8081");
    assert_eq!(cfg.runtime.site_subnets.to_string(), "10.213.0.0/16");
    assert_eq!(cfg.workers.metrics_listen, None, "no worker metrics unless asked for");
}

#[test]
fn every_problem_is_reported_once() {
    let problems = load(&[
        ("BERTH_LISTEN", "nowhere"),
        ("BERTH_DATABASE_URL", "mysql://x"),
        ("BERTH_SECRET_KEY", "short"),
        ("BERTH_TRUSTED_PROXIES", "192.168.0.0/16, banana"),
        ("BERTH_LOGIN_LIMIT_PER_IP", "-3"),
    ])
    .expect_err("bad config");
    assert_eq!(problems.len(), 5, "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("BERTH_LISTEN:")));
    assert!(problems.iter().any(|p| p.contains("banana")));
}

#[test]
fn trusted_proxies_must_not_overlap_the_site_networks() {
    // The README's old example: 10.0.0.0/8 holds the default site pool 10.213.0.0/16.
    let problems = load(&[("BERTH_TRUSTED_PROXIES", "10.0.0.0/8")]).expect_err("overlap");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("BERTH_TRUSTED_PROXIES: 10.0.0.0/8 overlaps BERTH_SITE_SUBNETS (10.213.0.0/16)"));
    // Inside the pool, one address of it, IPv4-mapped, or a moved pool under a wide range.
    for (proxies, sites) in [
        ("10.213.4.0/24", "10.213.0.0/16"),
        ("127.0.0.1, 10.213.0.9", "10.213.0.0/16"),
        ("::ffff:10.213.0.0/120", "10.213.0.0/16"),
        ("172.16.0.0/12", "172.30.0.0/16"),
    ] {
        let problems = load(&[("BERTH_TRUSTED_PROXIES", proxies), ("BERTH_SITE_SUBNETS", sites)]).expect_err(proxies);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("BERTH_TRUSTED_PROXIES:"), "{problems:?}");
    }
    // Next to it, or IPv6 only, is fine.
    for proxies in ["10.212.255.1, 10.214.0.0/16", "127.0.0.1/32, 192.168.1.0/24", "fd00::/8", "::1"] {
        let cfg = load(&[("BERTH_TRUSTED_PROXIES", proxies)]).unwrap_or_else(|p| panic!("{proxies}: {p:?}"));
        assert!(!cfg.server.trusted_proxies.is_empty());
    }
}

#[test]
fn http_limits_have_sane_defaults_and_bounds() {
    let cfg = load(&[]).expect("defaults");
    assert_eq!(cfg.server.http.header_timeout.as_secs(), 10);
    assert_eq!(cfg.server.http.body_timeout.as_secs(), 30);
    assert_eq!(cfg.server.http.idle_timeout.as_secs(), 75);
    assert_eq!(cfg.server.http.max_connections, 512);
    let problems = load(&[("BERTH_HTTP_HEADER_TIMEOUT_SECONDS", "0"), ("BERTH_HTTP_MAX_CONNECTIONS", "lots")])
        .expect_err("bad limits");
    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[test]
fn external_database_needs_a_secret_key() {
    let problems = load(&[("BERTH_DATABASE_URL", "postgres://u:pw@db/berth")]).expect_err("no key");
    assert!(problems[0].starts_with("BERTH_SECRET_KEY:"));
}

#[test]
fn describe_masks_secrets() {
    let cfg = load(&[
        ("BERTH_DATABASE_URL", "postgres://u:hunter2hunter2@db/berth"),
        ("BERTH_SECRET_KEY", "0123456789abcdef0123456789abcdef"),
        ("BERTH_SMTP_URL", "smtp://mailer:mailpassword1@mail.example.com:587"),
        ("BERTH_WEBHOOK_SECRET", "webhook-secret-0123456789"),
        ("BERTH_DNS_PROVIDER", "powerdns"),
        ("BERTH_PDNS_API_URL", "http://127.0.0.1:8081"),
        ("BERTH_PDNS_API_KEY", "pdns-api-key-0123456789"),
    ])
    .expect("valid");
    let text = cfg.describe().join("\n");
    for secret in ["hunter2", "0123456789abcdef", "mailpassword1", "webhook-secret", "pdns-api-key"] {
        assert!(!text.contains(secret), "{secret} in {text}");
        assert!(!format!("{cfg:?}").contains(secret), "{secret} in Debug");
    }
    assert!(text.contains("BERTH_SECRET_KEY = ********"));
    assert!(text.contains("BERTH_DATABASE_URL = postgres://u:********@db/berth"), "{text}");
    assert!(text.contains("BERTH_PDNS_API_KEY = ********"), "{text}");
}

#[test]
fn describe_has_one_line_per_setting_in_declared_order() {
    let cfg = load(&[("BERTH_DATA_DIR", "/srv/berth/")]).expect("valid");
    let lines = cfg.describe();
    let names: Vec<String> = lines.iter().map(|l| l.split(" = ").next().unwrap_or_default().to_owned()).collect();
    let declared: Vec<String> = settings().map(|s| env_name(s.key)).collect();
    assert_eq!(names, declared);
    for expected in [
        "BERTH_DATABASE_URL = sqlite:///srv/berth/berth.db?mode=rwc (embedded default)",
        "BERTH_SECRET_KEY = (generated, kept in /srv/berth/secret.key)",
        "BERTH_SMTP_URL = (none: mail goes to /srv/berth/outbox)",
        "BERTH_BOOTSTRAP_ADMIN_PASSWORD = (random, printed once)",
        "BERTH_PDNS_API_KEY = (unused)",
        "BERTH_PDNS_SERVER_ID = (unused)",
        "BERTH_WORKER_QUEUES = default=8,short=8,long=2",
        "BERTH_WORKER_METRICS_LISTEN = (off)",
        "BERTH_INGRESS_TLS_LISTEN = (none: HTTP only)",
    ] {
        assert!(lines.iter().any(|l| l == expected), "no `{expected}` in {lines:#?}");
    }
}

#[test]
fn every_setting_is_declared_once_and_documented() {
    let mut keys: Vec<&str> = settings().map(|s| s.key).collect();
    keys.sort_unstable();
    let before = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), before, "a key is declared twice");

    let docs = include_str!("../../../docs/configuration.md");
    for setting in settings() {
        let row = format!("| `{}` | `{}` |", env_name(setting.key), setting.key);
        assert!(docs.lines().any(|l| l.starts_with(&row)), "docs/configuration.md has no row `{row} …`");
        assert!(!setting.about.is_empty() && !setting.default.is_empty(), "{} is half declared", setting.key);
    }
    // And no row for a setting that does not exist (any more).
    for line in docs.lines().filter(|l| l.starts_with("| `BERTH_")) {
        let name = line.trim_start_matches("| `").split('`').next().unwrap_or_default();
        assert!(
            name == "BERTH_CONFIG" || settings().any(|s| env_name(s.key) == name),
            "docs/configuration.md documents {name}, which is not declared"
        );
    }
}

#[test]
fn toml_file_is_read_and_environment_wins() {
    let path = std::env::temp_dir().join(format!("berth-config-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(
        &path,
        "listen = \"0.0.0.0:9000\"\nlog = \"debug\"\ntrusted_proxies = [\"10.0.0.2\", \"192.168.1.1\"]\n\
         worker_metrics_listen = \"127.0.0.1:9187\"\n",
    )
    .expect("write temp config");
    let file = path.display().to_string();
    let cfg = load(&[("BERTH_CONFIG", &file), ("BERTH_LOG", "warn")]).expect("valid");
    assert_eq!(cfg.server.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(cfg.server.log, "warn");
    assert_eq!(cfg.server.trusted_proxies.len(), 2);
    assert_eq!(cfg.workers.metrics_listen, Some("127.0.0.1:9187".parse().expect("addr")));

    std::fs::write(&path, "listen = \"0.0.0.0:9000\"\ncolour = \"blue\"\n").expect("write temp config");
    let problems = load(&[("BERTH_CONFIG", &file)]).expect_err("unknown key");
    assert!(problems[0].contains("unknown setting `colour`"), "{problems:?}");
    std::fs::write(&path, "listen = ").expect("write temp config");
    assert!(load(&[("BERTH_CONFIG", &file)]).expect_err("bad toml")[0].contains("not valid TOML"));
    std::fs::remove_file(&path).ok();
    let missing = load(&[("BERTH_CONFIG", "/nonexistent/berth.toml")]).expect_err("missing file");
    assert!(missing[0].starts_with("BERTH_CONFIG: cannot read"));
}

#[test]
fn worker_queues_parse_and_reject_nonsense() {
    let cfg = load(&[]).expect("defaults");
    assert_eq!(cfg.workers.queues, vec![("default".into(), 8), ("short".into(), 8), ("long".into(), 2)]);
    let cfg = load(&[("BERTH_WORKER_QUEUES", " default=3 , mail=1")]).expect("valid");
    assert_eq!(cfg.workers.queues, vec![("default".into(), 3), ("mail".into(), 1)]);
    for bad in ["default", "default=0", "Default=1", "a=1,a=2", ",", "x=9999"] {
        let problems = load(&[("BERTH_WORKER_QUEUES", bad)]).expect_err(bad);
        assert!(problems[0].starts_with("BERTH_WORKER_QUEUES"), "{bad}: {problems:?}");
    }
}

#[test]
fn worker_metrics_listen_is_an_address_or_nothing() {
    let cfg = load(&[("BERTH_WORKER_METRICS_LISTEN", "0.0.0.0:9187")]).expect("valid");
    assert_eq!(cfg.workers.metrics_listen, Some("0.0.0.0:9187".parse().expect("addr")));
    assert!(cfg.describe().contains(&"BERTH_WORKER_METRICS_LISTEN = 0.0.0.0:9187".to_owned()));
    let problems = load(&[("BERTH_WORKER_METRICS_LISTEN", "metrics.local")]).expect_err("not an address");
    assert_eq!(problems, vec!["BERTH_WORKER_METRICS_LISTEN: `metrics.local` is not an address like 0.0.0.0:9187"]);
}

#[test]
fn runtime_settings_are_checked() {
    let problems = load(&[
        ("BERTH_DOCKER_PREFIX", "Berth-1"),
        ("BERTH_INGRESS_MODE", "external"),
        ("BERTH_DOCKER_HOST", "ftp://x"),
        ("BERTH_INGRESS_LISTEN", "port 80"),
    ])
    .expect_err("bad runtime config");
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("BERTH_INGRESS_DIR:")), "external needs a dir: {problems:?}");
    let cfg = load(&[("BERTH_DOCKER_HOST", "off"), ("BERTH_INGRESS_MODE", "off")]).expect("valid");
    assert!(cfg.runtime.docker_host.is_none());
    assert_eq!(cfg.runtime.ingress_mode, IngressMode::Off);
    assert_eq!(cfg.runtime.docker_prefix, "berth");
    assert_eq!(cfg.runtime.ingress_tls_listen, None, "no HTTPS unless asked for");
}

#[test]
fn ingress_tls_listen_is_an_address_of_its_own() {
    let cfg = load(&[("BERTH_INGRESS_TLS_LISTEN", "0.0.0.0:443")]).expect("valid");
    assert_eq!(cfg.runtime.ingress_tls_listen, Some("0.0.0.0:443".parse().expect("addr")));
    assert!(cfg.describe().contains(&"BERTH_INGRESS_TLS_LISTEN = 0.0.0.0:443".to_owned()));
    for bad in ["port 443", "127.0.0.1:8081"] {
        let problems = load(&[("BERTH_INGRESS_TLS_LISTEN", bad)]).expect_err(bad);
        assert!(problems[0].starts_with("BERTH_INGRESS_TLS_LISTEN"), "{bad}: {problems:?}");
    }
    let cfg = load(&[("BERTH_DATA_DIR", "/srv/berth")]).expect("valid");
    assert_eq!(cfg.tls_dir(), Path::new("/srv/berth/tls"));
    assert_eq!(cfg.acme_challenge_dir(), Path::new("/srv/berth/acme-challenges"));
}

#[test]
fn public_links_ignore_trailing_slash() {
    let cfg = load(&[("BERTH_PUBLIC_URL", "https://panel.example.com/")]).expect("valid");
    assert_eq!(cfg.server.public_link("/set-password?token=x"), "https://panel.example.com/set-password?token=x");
    assert!(cfg.server.cookie_secure());
}

#[test]
fn backups_default_to_a_local_directory_and_s3_needs_its_settings() {
    let cfg = load(&[("BERTH_DATA_DIR", "/var/lib/berth")]).expect("defaults are valid");
    assert_eq!(cfg.backup.target, BackupTarget::Local);
    assert_eq!(cfg.backup.dir, Path::new("/var/lib/berth/backups"));
    assert!(cfg.backup.s3.is_none());

    let problems = load(&[("BERTH_BACKUP_TARGET", "s3")]).expect_err("incomplete");
    for name in [
        "BERTH_BACKUP_S3_ENDPOINT",
        "BERTH_BACKUP_S3_BUCKET",
        "BERTH_BACKUP_S3_ACCESS_KEY_ID",
        "BERTH_BACKUP_S3_SECRET_ACCESS_KEY",
    ] {
        assert!(problems.iter().any(|p| p.starts_with(name)), "{name}: {problems:?}");
    }
    let s3 = [
        ("BERTH_BACKUP_TARGET", "s3"),
        ("BERTH_BACKUP_S3_ENDPOINT", "http://127.0.0.1:9000"),
        ("BERTH_BACKUP_S3_BUCKET", "backups"),
        ("BERTH_BACKUP_S3_ACCESS_KEY_ID", "key"),
        ("BERTH_BACKUP_S3_SECRET_ACCESS_KEY", "very-secret"),
    ];
    let cfg = load(&s3).expect("complete");
    assert_eq!(cfg.backup.target, BackupTarget::S3);
    let bucket = cfg.backup.s3.as_ref().expect("s3");
    assert_eq!((bucket.region.as_str(), bucket.prefix.as_str()), ("us-east-1", "berth"));
    assert!(cfg.describe().iter().any(|l| l == "BERTH_BACKUP_S3_SECRET_ACCESS_KEY = ********"), "masked");

    // The first value of a name wins in `load`'s lookup: the bad ones go first.
    let mut bad = vec![
        ("BERTH_BACKUP_S3_BUCKET", "Not_A_Bucket"),
        ("BERTH_BACKUP_S3_ENDPOINT", "ftp://x"),
        ("BERTH_BACKUP_S3_PREFIX", "a/../b"),
    ];
    bad.extend(s3);
    let problems = load(&bad).expect_err("bad values");
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(load(&[("BERTH_BACKUP_TARGET", "tape")]).is_err());
}

#[test]
fn restore_drills_run_weekly_on_a_few_sites_and_bad_values_are_refused() {
    let cfg = load(&[]).expect("defaults");
    assert_eq!(cfg.backup.drill_cron, "30 4 * * 0");
    assert_eq!(cfg.backup.drill_sites, 3);
    let cfg = load(&[("BERTH_BACKUP_DRILL_CRON", " 0  5 * * 1 "), ("BERTH_BACKUP_DRILL_SITES", "10")]).expect("valid");
    assert_eq!((cfg.backup.drill_cron.as_str(), cfg.backup.drill_sites), ("0 5 * * 1", 10));
    let problems = load(&[("BERTH_BACKUP_DRILL_CRON", "0 0 31 2 *"), ("BERTH_BACKUP_DRILL_SITES", "0")])
        .expect_err("a cron that never fires, no sites");
    assert!(problems.iter().any(|p| p.starts_with("BERTH_BACKUP_DRILL_CRON:")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("BERTH_BACKUP_DRILL_SITES:")), "{problems:?}");
    assert!(load(&[("BERTH_BACKUP_DRILL_CRON", "*/5 * * * * *")]).is_err(), "five fields only");
}
