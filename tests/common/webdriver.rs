//! A small WebDriver client over HTTP for Debian's `chromium` driven by `chromedriver`:
//! headless, a fresh profile per browser, and Chromium's performance log switched on so a test
//! can see every request a page made.

#![allow(
    dead_code,
    reason = "shared by several test binaries; each uses part of it"
)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use serde_json::{Value, json};

/// The key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How many times a wait looks again (every 100 ms) before it fails.
const WAIT_TRIES: u32 = 150;

/// A headless Chromium under `chromedriver`, stopped when dropped.
pub struct Browser {
    http: reqwest::Client,
    driver_url: String,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// A free loopback port (bound, then released for the driver to take).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Writes the base64 PNG a screenshot command answered to `path`.
fn save_png(value: &Value, path: &Path) -> Result<()> {
    let png =
        base64::engine::general_purpose::STANDARD.decode(value.as_str().context("screenshot")?)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, png)?;
    Ok(())
}

impl Browser {
    /// Starts `chromedriver` on a free port and a headless Chromium session with a fresh
    /// profile, `width`×`height` pixels.
    pub async fn start(width: u32, height: u32) -> Result<Browser> {
        ensure!(
            Path::new("/usr/bin/chromedriver").is_file(),
            "/usr/bin/chromedriver is missing: apt-get install chromium chromium-driver"
        );
        let port = free_port()?;
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start chromedriver")?;
        let profile = tempfile::tempdir()?;
        let mut browser = Browser {
            http: reqwest::Client::new(),
            driver_url: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            driver,
            _profile: profile,
        };
        browser.wait_for_driver().await?;
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", browser._profile.path().display()),
                ],
            },
            "goog:loggingPrefs": {"performance": "ALL"},
        }}});
        let answer = browser
            .command("POST", "/session", Some(capabilities))
            .await?;
        browser.session = answer["sessionId"]
            .as_str()
            .or_else(|| answer["value"]["sessionId"].as_str())
            .context("no session id")?
            .to_owned();
        // Chromium opens its own start page (chrome:// resources) before any test page:
        // leave it, and forget what it loaded, so the log holds only what tests open.
        browser.goto("about:blank").await?;
        browser.requested_urls().await?;
        Ok(browser)
    }

    /// Waits until the driver answers `/status`.
    async fn wait_for_driver(&self) -> Result<()> {
        for _ in 0..WAIT_TRIES {
            if let Ok(response) = self
                .http
                .get(format!("{}/status", self.driver_url))
                .send()
                .await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("chromedriver did not start")
    }

    /// Sends a WebDriver command and returns its answer (`value` and all).
    async fn command(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.driver_url);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let response = request.send().await?;
        let status = response.status();
        let value: Value = response.json().await?;
        ensure!(
            status.is_success(),
            "WebDriver {method} {path}: {status} {value}"
        );
        Ok(value)
    }

    /// A command on this session; returns its `value`.
    async fn session_command(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let answer = self
            .command(method, &format!("/session/{}{path}", self.session), body)
            .await?;
        Ok(answer["value"].clone())
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.session_command("POST", "/url", Some(json!({"url": url})))
            .await
            .map(drop)
    }

    /// The address of the page shown.
    pub async fn url(&self) -> Result<String> {
        let value = self.session_command("GET", "/url", None).await?;
        value.as_str().map(str::to_owned).context("url")
    }

    /// Waits until the address of the page ends with `suffix`.
    pub async fn wait_for_url(&self, suffix: &str) -> Result<()> {
        let mut last = String::new();
        for _ in 0..WAIT_TRIES {
            last = self.url().await?;
            if last.ends_with(suffix) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the address never ended with {suffix:?}; last: {last}")
    }

    /// The elements matching `css`.
    pub async fn find_all(&self, css: &str) -> Result<Vec<String>> {
        let value = self
            .session_command(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        Ok(value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT_KEY].as_str().map(str::to_owned))
            .collect())
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Result<String> {
        for _ in 0..WAIT_TRIES {
            if let Some(element) = self.find_all(css).await?.into_iter().next() {
                return Ok(element);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "no element matches {css:?} on {}",
            self.url().await.unwrap_or_default()
        )
    }

    /// Whether an element matches `css` now.
    pub async fn exists(&self, css: &str) -> Result<bool> {
        Ok(!self.find_all(css).await?.is_empty())
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) -> Result<()> {
        let element = self.find(css).await?;
        self.session_command("POST", &format!("/element/{element}/click"), None)
            .await
            .map(drop)
    }

    /// Types `text` into the first element matching `css` (a file path for a file input).
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let element = self.find(css).await?;
        self.session_command(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await
        .map(drop)
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> Result<String> {
        let element = self.find(css).await?;
        let value = self
            .session_command("GET", &format!("/element/{element}/text"), None)
            .await?;
        value.as_str().map(str::to_owned).context("text")
    }

    /// The visible text of the first element matching `css` now, if there is one.
    async fn text_now(&self, css: &str) -> Result<Option<String>> {
        let Some(element) = self.find_all(css).await?.into_iter().next() else {
            return Ok(None);
        };
        let value = self
            .session_command("GET", &format!("/element/{element}/text"), None)
            .await;
        // The page may have been replaced between finding and reading.
        Ok(value.ok().and_then(|v| v.as_str().map(str::to_owned)))
    }

    /// Waits until the text of `css` contains `wanted`; returns the text.
    pub async fn wait_for_text(&self, css: &str, wanted: &str) -> Result<String> {
        let mut last = String::new();
        for _ in 0..WAIT_TRIES {
            last = self.text_now(css).await?.unwrap_or_default();
            if last.contains(wanted) {
                return Ok(last);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("{css:?} never contained {wanted:?}; last: {last:?}")
    }

    /// The page's HTML as the browser holds it.
    pub async fn source(&self) -> Result<String> {
        let value = self.session_command("GET", "/source", None).await?;
        value.as_str().map(str::to_owned).context("source")
    }

    /// Runs `script` in the page and returns its value.
    pub async fn execute(&self, script: &str) -> Result<Value> {
        self.execute_with(script, json!([])).await
    }

    /// Runs `script` in the page with `args` (its `arguments`) and returns its value.
    pub async fn execute_with(&self, script: &str, args: Value) -> Result<Value> {
        self.session_command(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Resizes the window to `width`×`height`.
    pub async fn resize(&self, width: u32, height: u32) -> Result<()> {
        self.session_command(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await
        .map(drop)
    }

    /// Saves a PNG screenshot of the window to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let value = self.session_command("GET", "/screenshot", None).await?;
        save_png(&value, path)
    }

    /// Saves a PNG screenshot of the first element matching `css` to `path`.
    pub async fn element_screenshot(&self, css: &str, path: &Path) -> Result<()> {
        let element = self.find(css).await?;
        // Chromium crops to the viewport: start the element at its top so a tall one fits.
        self.execute_with(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'start'}); return true;",
            json!([css]),
        )
        .await?;
        let value = self
            .session_command("GET", &format!("/element/{element}/screenshot"), None)
            .await?;
        save_png(&value, path)
    }

    /// Every URL the browser requested since the last call (from Chromium's performance log).
    pub async fn requested_urls(&self) -> Result<Vec<String>> {
        let value = self
            .session_command("POST", "/se/log", Some(json!({"type": "performance"})))
            .await?;
        let mut urls = Vec::new();
        for entry in value.as_array().into_iter().flatten() {
            let Some(message) = entry["message"].as_str() else {
                continue;
            };
            let message: Value = serde_json::from_str(message)?;
            if message["message"]["method"] == "Network.requestWillBeSent"
                && let Some(url) = message["message"]["params"]["request"]["url"].as_str()
            {
                urls.push(url.to_owned());
            }
        }
        Ok(urls)
    }
}

impl Browser {
    /// Ends the session (Chromium exits) and stops the driver.
    pub async fn quit(mut self) -> Result<()> {
        let path = format!("/session/{}", self.session);
        self.session.clear();
        self.command("DELETE", &path, None).await.map(drop)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium; then the driver goes. A plain blocking request,
        // as drop cannot await.
        if !self.session.is_empty()
            && let Ok(mut stream) =
                std::net::TcpStream::connect(self.driver_url.trim_start_matches("http://"))
        {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
