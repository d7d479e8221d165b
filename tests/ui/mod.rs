//! Browser tests of the admin console and the customer portal: Debian's Chromium, headless,
//! driven through chromedriver (started here, on a free loopback port) with fantoccini.
//!
//! Every scenario runs twice, with JavaScript on and off, and saves a screenshot of each step
//! under `$CARGO_TARGET_DIR/test-artifacts/ui/<scenario>/NN-step.png`. Chromium and
//! chromedriver come from `scripts/test.sh`; without them the tests fail and say so.

mod admin;
mod auth;
mod autocomplete;
mod backups;
mod flows;
mod monitoring;
mod plans;
mod portal;
mod security;
mod site_ops;
mod totp;
mod usage;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

/// Generous: two cores are shared by parallel tests, each with its own browser.
const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Js {
    On,
    Off,
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/lib/chromium")])
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local addr").port()
}

/// Where this run keeps its screenshots.
pub fn artifacts_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("test-artifacts").join("ui")
}

/// One headless Chromium with its own profile, its chromedriver, and a screenshot folder.
pub struct Browser {
    pub client: Client,
    pub base: String,
    pub js: Js,
    driver: Child,
    _profile: tempfile::TempDir,
    artifacts: PathBuf,
    step: u32,
}

impl Browser {
    pub async fn start(app: &TestApp, scenario: &str, js: Js) -> Browser {
        let driver_bin = find_program(&["chromedriver"]).unwrap_or_else(|| {
            panic!("chromedriver is not installed: run the suite with `bash scripts/test.sh`, which installs chromium and chromium-driver")
        });
        let chromium = find_program(&["chromium", "chromium-browser"]).unwrap_or_else(|| {
            panic!("Chromium is not installed: run the suite with `bash scripts/test.sh`, which installs chromium and chromium-driver")
        });
        let port = free_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", driver_bin.display()));
        let profile = tempfile::tempdir().expect("browser profile dir");
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-background-networking".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        if js == Js::Off {
            args.push("--blink-settings=scriptEnabled=false".into());
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium.display().to_string(),
                "args": args,
                // JavaScript off for the profile too, so the setting holds whatever Blink does.
                "prefs": if js == Js::Off { json!({"profile.managed_default_content_settings.javascript": 2}) } else { json!({}) },
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if started.elapsed() < DEADLINE => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("chromedriver on {url} did not start a Chromium session within {DEADLINE:?}: {e}"),
            }
        };
        let suffix = if js == Js::Off { "no-js" } else { "js" };
        let artifacts = artifacts_root().join(format!("{scenario}-{suffix}"));
        let _ = std::fs::remove_dir_all(&artifacts);
        std::fs::create_dir_all(&artifacts).expect("artifact folder");
        Browser { client, base: app.base.clone(), js, driver, _profile: profile, artifacts, step: 0 }
    }

    pub async fn open(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// Saves a screenshot of the page as it is now: `NN-name.png`.
    pub async fn snap(&mut self, name: &str) -> PathBuf {
        self.step += 1;
        let png = self.client.screenshot().await.expect("screenshot");
        let path = self.artifacts.join(format!("{:02}-{name}.png", self.step));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    pub async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.map(|u| u.path().to_owned()).unwrap_or_default()
    }

    /// Waits until the page shows `needle` (pages load after clicks; never assume when).
    pub async fn wait_for_text(&self, needle: &str) {
        let started = Instant::now();
        loop {
            let text = self.body_text().await;
            if text.contains(needle) {
                return;
            }
            if started.elapsed() > DEADLINE {
                panic!("the page at {} never showed {needle:?}; it shows:\n{text}", self.path().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types into the field named `name`, replacing what it held.
    pub async fn fill(&self, name: &str, value: &str) {
        let field = self
            .client
            .find(Locator::Css(&format!("[name=\"{name}\"]")))
            .await
            .unwrap_or_else(|e| panic!("no field {name}: {e}"));
        field.clear().await.unwrap_or_else(|e| panic!("clear {name}: {e}"));
        if !value.is_empty() {
            field.send_keys(value).await.unwrap_or_else(|e| panic!("type into {name}: {e}"));
        }
    }

    pub async fn select(&self, name: &str, value: &str) {
        let field = self
            .client
            .find(Locator::Css(&format!("select[name=\"{name}\"]")))
            .await
            .unwrap_or_else(|e| panic!("no select {name}: {e}"));
        field.select_by_value(value).await.unwrap_or_else(|e| panic!("select {value} in {name}: {e}"));
    }

    /// Clicks the button labelled `label` (exactly, ignoring surrounding space).
    pub async fn press(&self, label: &str) {
        let xpath = format!("//button[normalize-space()='{label}']");
        let button =
            self.client.find(Locator::XPath(&xpath)).await.unwrap_or_else(|e| panic!("no button {label:?}: {e}"));
        button.click().await.unwrap_or_else(|e| panic!("click {label:?}: {e}"));
    }

    pub async fn follow_link(&self, text: &str) {
        let link = self.client.find(Locator::LinkText(text)).await.unwrap_or_else(|e| panic!("no link {text:?}: {e}"));
        link.click().await.unwrap_or_else(|e| panic!("click link {text:?}: {e}"));
    }

    /// The text of an element, visible or not (a collapsed `<details>` hides its content).
    pub async fn text_of(&self, css: &str) -> String {
        let el = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no element {css}: {e}"));
        el.prop("textContent").await.ok().flatten().unwrap_or_default().trim().to_owned()
    }

    pub async fn exists(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// Proves the browser runs the page with JavaScript as asked. WebDriver's own scripts run
    /// whatever the page's setting, so the proof is the `scripting` media feature, which
    /// Chromium evaluates from the page's real setting.
    pub async fn assert_js_state(&self) {
        let off = self
            .client
            .execute("return window.matchMedia('(scripting: none)').matches;", vec![])
            .await
            .expect("query the scripting media feature");
        assert_eq!(off, json!(self.js == Js::Off), "page scripting is not as the test asked (js: {:?})", self.js);
    }

    pub async fn sign_in(&mut self, login_path: &str, email: &str, password: &str, totp: Option<&str>) {
        self.open(login_path).await;
        self.fill("email", email).await;
        self.fill("password", password).await;
        if let Some(code) = totp {
            self.fill("totp", code).await;
        }
        self.press("Sign in").await;
    }

    pub async fn sign_in_as_admin(&mut self) {
        self.sign_in("/admin/login", ADMIN_EMAIL, ADMIN_PASSWORD, None).await;
        self.wait_for_text("Recent activity").await;
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test still must not leave chromedriver (and its Chromium) running.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
