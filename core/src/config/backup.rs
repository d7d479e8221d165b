//! Backups: where site backups are stored (a local directory or S3-compatible object storage).
//! docs/backups.md describes the repositories, their keys and how to read them with `restic`.

use std::path::{Path, PathBuf};

use url::Url;

use super::{Mask, Raw, Secret, Setting};

/// This area's settings, in the order `config check` prints them.
pub const SETTINGS: &[Setting] = &[
    BACKUP_TARGET,
    BACKUP_DIR,
    BACKUP_S3_ENDPOINT,
    BACKUP_S3_BUCKET,
    BACKUP_S3_REGION,
    BACKUP_S3_PREFIX,
    BACKUP_S3_ACCESS_KEY_ID,
    BACKUP_S3_SECRET_ACCESS_KEY,
    BACKUP_SCHEDULES,
    BACKUP_DRILL_CRON,
    BACKUP_DRILL_SITES,
];

const BACKUP_DRILL_CRON: Setting = Setting {
    key: "backup_drill_cron",
    default: "30 4 * * 0",
    mask: Mask::Plain,
    about: "when the restore drill runs (five-field cron, UTC; default Sundays 04:30); off with BERTH_BACKUP_SCHEDULES=false",
    value: |c| Some(c.backup.drill_cron.clone()),
};

const BACKUP_DRILL_SITES: Setting = Setting {
    key: "backup_drill_sites",
    default: "3",
    mask: Mask::Plain,
    about: "how many sites, picked at random among those with a verified backup, each drill restores",
    value: |c| Some(c.backup.drill_sites.to_string()),
};

const BACKUP_SCHEDULES: Setting = Setting {
    key: "backup_schedules",
    default: "true",
    mask: Mask::Plain,
    about: "whether sites are backed up on their plan's (or their own) schedules, and repositories pruned and checked daily; `false` leaves only backups asked for",
    value: |c| Some(c.backup.schedules.to_string()),
};

const BACKUP_TARGET: Setting = Setting {
    key: "backup_target",
    default: "local",
    mask: Mask::Plain,
    about: "where backup repositories live: `local` (under BERTH_BACKUP_DIR) or `s3`",
    value: |c| Some(c.backup.target.as_str().into()),
};
const BACKUP_DIR: Setting = Setting {
    key: "backup_dir",
    default: "$BERTH_DATA_DIR/backups",
    mask: Mask::Plain,
    about: "local repositories (target `local`), the repository cache and staging area, and platform backups (its `platform/` folder)",
    value: |c| Some(c.backup.dir.display().to_string()),
};
const BACKUP_S3_ENDPOINT: Setting = Setting {
    key: "backup_s3_endpoint",
    default: "(none; required for target `s3`)",
    mask: Mask::Plain,
    about: "the S3 endpoint URL, e.g. `https://s3.eu-central-1.amazonaws.com` or `http://minio:9000`",
    value: |c| c.backup.s3.as_ref().map(|s| s.endpoint.to_string()),
};
const BACKUP_S3_BUCKET: Setting = Setting {
    key: "backup_s3_bucket",
    default: "(none; required for target `s3`)",
    mask: Mask::Plain,
    about: "the bucket that holds the repositories (it must exist)",
    value: |c| c.backup.s3.as_ref().map(|s| s.bucket.clone()),
};
const BACKUP_S3_REGION: Setting = Setting {
    key: "backup_s3_region",
    default: "us-east-1",
    mask: Mask::Plain,
    about: "the bucket's region",
    value: |c| c.backup.s3.as_ref().map(|s| s.region.clone()),
};
const BACKUP_S3_PREFIX: Setting = Setting {
    key: "backup_s3_prefix",
    default: "berth",
    mask: Mask::Plain,
    about: "the key prefix in the bucket under which each customer's repository lies",
    value: |c| c.backup.s3.as_ref().map(|s| s.prefix.clone()),
};
const BACKUP_S3_ACCESS_KEY_ID: Setting = Setting {
    key: "backup_s3_access_key_id",
    default: "(none; required for target `s3`)",
    mask: Mask::Plain,
    about: "the S3 access key id",
    value: |c| c.backup.s3.as_ref().map(|s| s.access_key_id.clone()),
};
const BACKUP_S3_SECRET_ACCESS_KEY: Setting = Setting {
    key: "backup_s3_secret_access_key",
    default: "(none; required for target `s3`)",
    mask: Mask::Secret,
    about: "the S3 secret access key",
    value: |c| c.backup.s3.as_ref().map(|s| s.secret_access_key.expose().to_owned()),
};

/// Where repositories are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupTarget {
    Local,
    S3,
}

impl BackupTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::S3 => "s3",
        }
    }
}

/// An S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    pub endpoint: Url,
    pub bucket: String,
    pub region: String,
    /// Customer repositories lie at `<prefix>/customer-<id>/` in the bucket.
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

#[derive(Debug, Clone)]
pub struct BackupConfig {
    pub target: BackupTarget,
    /// Local repositories (target `local`), the repository cache and the staging area.
    pub dir: PathBuf,
    /// Set exactly when `target` is [`BackupTarget::S3`].
    pub s3: Option<S3Config>,
    /// Whether the `backup.schedule` job queues sites' scheduled backups (`BERTH_BACKUP_SCHEDULES`).
    pub schedules: bool,
    /// When the `backup.drill` job runs: five-field cron, UTC (`BERTH_BACKUP_DRILL_CRON`).
    pub drill_cron: String,
    /// How many sites a drill samples (`BERTH_BACKUP_DRILL_SITES`, 1 to 100).
    pub drill_sites: u32,
}

impl BackupConfig {
    /// Where platform backups (Berth's own database) are written, one folder each.
    pub fn platform_dir(&self) -> PathBuf {
        self.dir.join("platform")
    }

    pub(super) fn load(raw: &mut Raw, data_dir: &Path) -> Self {
        let target = match raw.get_or_default(&BACKUP_TARGET).as_str() {
            "local" => BackupTarget::Local,
            "s3" => BackupTarget::S3,
            other => {
                raw.problem(&BACKUP_TARGET, format_args!("`{other}` must be `local` or `s3`"));
                BackupTarget::Local
            }
        };
        let dir = raw.get(&BACKUP_DIR).map(PathBuf::from).unwrap_or_else(|| data_dir.join("backups"));
        let s3 = (target == BackupTarget::S3).then(|| load_s3(raw)).flatten();
        let schedules = raw.flag(&BACKUP_SCHEDULES);
        let drill_cron = raw.get_or_default(&BACKUP_DRILL_CRON);
        let drill_cron = match crate::schedule::validate_backup_cron(&drill_cron) {
            Ok(expr) => expr,
            Err(e) => {
                raw.problem(&BACKUP_DRILL_CRON, format_args!("`{drill_cron}` {e}"));
                BACKUP_DRILL_CRON.default.to_owned()
            }
        };
        // At most 100: each site is restored in full, one after another.
        let drill_sites = raw.number(&BACKUP_DRILL_SITES, 1, 100) as u32;
        BackupConfig {
            target: if s3.is_some() { target } else { BackupTarget::Local },
            dir,
            s3,
            schedules,
            drill_cron,
            drill_sites,
        }
    }
}

fn load_s3(raw: &mut Raw) -> Option<S3Config> {
    fn required(raw: &mut Raw, setting: &Setting) -> Option<String> {
        let value = raw.get(setting);
        if value.is_none() {
            raw.problem(setting, "required when BERTH_BACKUP_TARGET is `s3`");
        }
        value
    }
    let endpoint = required(raw, &BACKUP_S3_ENDPOINT);
    let bucket = required(raw, &BACKUP_S3_BUCKET);
    let access_key_id = required(raw, &BACKUP_S3_ACCESS_KEY_ID);
    let secret_access_key = required(raw, &BACKUP_S3_SECRET_ACCESS_KEY);
    let endpoint = endpoint.and_then(|e| match Url::parse(&e) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
        _ => {
            raw.problem(&BACKUP_S3_ENDPOINT, format_args!("`{e}` is not an http:// or https:// URL"));
            None
        }
    });
    let bucket = bucket.filter(|b| {
        // S3's bucket naming rules, which also keep the value safe in a `s3:` repository URL.
        let ok = (3..=63).contains(&b.len())
            && b.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !ok {
            raw.problem(&BACKUP_S3_BUCKET, format_args!("`{b}` is not a bucket name (3-63 of a-z, 0-9, `-`, `.`)"));
        }
        ok
    });
    let region = raw.get_or_default(&BACKUP_S3_REGION);
    let prefix = raw.get_or_default(&BACKUP_S3_PREFIX).trim_matches('/').to_owned();
    let prefix_ok = !prefix.is_empty()
        && prefix.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if !prefix_ok {
        raw.problem(&BACKUP_S3_PREFIX, format_args!("`{prefix}` must be path segments of a-z, 0-9, `-`, `_`, `.`"));
    }
    Some(S3Config {
        endpoint: endpoint?,
        bucket: bucket?,
        region,
        prefix: if prefix_ok { prefix } else { return None },
        access_key_id: access_key_id?,
        secret_access_key: Secret(secret_access_key?),
    })
}
