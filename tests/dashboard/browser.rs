//! A headless Chromium driven over WebDriver: Debian's `chromedriver` on 127.0.0.1 (a port of
//! its own choosing), a fresh profile per session, and waits for what the page shows.
//!
//! Without `chromedriver` and `chromium` a test skips with a message, unless
//! `REQUIRE_BROWSER` is set (`scripts/test.sh` sets it): then it fails.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long a page may take to show what a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// The browser's time zone: not UTC, and without daylight saving time, so that local times
/// on the page differ from the stored UTC times by a fixed 5 h 30 min.
pub const TIME_ZONE: &str = "Asia/Kolkata";

/// [`TIME_ZONE`]'s offset from UTC.
pub const UTC_OFFSET_MINUTES: i64 = 5 * 60 + 30;

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// The browser binary: `CHROME_BIN`, else Debian's.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROME_BIN") {
        return Some(PathBuf::from(path));
    }
    ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

fn chromedriver_runs() -> bool {
    Command::new("chromedriver")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

impl Browser {
    /// A fresh headless session with a window of `width` x `height`, or `None` (test
    /// skipped) when no browser is installed and `REQUIRE_BROWSER` is unset.
    pub async fn start(test: &str, width: u32, height: u32) -> Option<Browser> {
        let binary = chromium();
        if binary.is_none() || !chromedriver_runs() {
            assert!(
                std::env::var_os("REQUIRE_BROWSER").is_none(),
                "REQUIRE_BROWSER is set but chromium or chromedriver is missing \
                 (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "SKIPPED {test}: chromium or chromedriver not installed \
                 (apt-get install chromium chromium-driver)"
            );
            return None;
        }
        let binary = binary.unwrap_or_default();
        let (mut driver, port) = spawn_chromedriver();
        let profile = tempfile::tempdir().expect("a profile directory");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--lang=en-US",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = match ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => client,
            Err(error) => {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("chromedriver did not open a Chromium session: {error}");
            }
        };
        Some(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("the page opens");
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("{css} is on the page: {error}"))
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|found| found.len())
            .unwrap_or(0)
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|error| panic!("{css} takes a click: {error}"));
    }

    /// Types `keys` into `css`, as a person would (key events and all).
    pub async fn type_into(&self, css: &str, keys: &str) {
        self.find(css)
            .await
            .send_keys(keys)
            .await
            .unwrap_or_else(|error| panic!("{css} takes keys: {error}"));
    }

    /// Picks the option of value `value` in the `<select>` at `css`.
    pub async fn pick(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|error| panic!("{css} offers {value}: {error}"));
    }

    /// Moves the mouse pointer to the centre of `element`.
    pub async fn point_at(&self, element: Element) {
        let mouse = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
            element,
            duration: None,
            x: 0.0,
            y: 0.0,
        });
        self.client
            .perform_actions(mouse)
            .await
            .expect("the pointer moves");
    }

    /// The rendered text of `css` (what a person sees), or "" while it is not there.
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The text of every element matching `css`, in document order.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        if let Ok(elements) = self.client.find_all(Locator::Css(css)).await {
            for element in elements {
                texts.push(element.text().await.unwrap_or_default());
            }
        }
        texts
    }

    /// Waits until `read` gives a value `accept` takes, and returns it; panics after
    /// [`PATIENCE`] with the last value seen.
    pub async fn until<T, R, F>(&self, what: &str, mut read: R, accept: impl Fn(&T) -> bool) -> T
    where
        T: std::fmt::Debug,
        R: FnMut() -> F,
        F: std::future::Future<Output = T>,
    {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = read().await;
            if accept(&value) {
                return value;
            }
            if Instant::now() > deadline {
                let banner = self.text("#error").await;
                panic!(
                    "waited {PATIENCE:?} for {what}; the page shows {value:?} \
                     (error banner: {banner:?})"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of `css` satisfies `accept`.
    pub async fn until_text(&self, css: &str, accept: impl Fn(&str) -> bool) -> String {
        self.until(css, || self.text(css), |text: &String| accept(text))
            .await
    }

    /// Saves a PNG of the window.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(path, png).expect("the screenshot is saved");
        eprintln!("screenshot: {}", path.display());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Starts chromedriver on 127.0.0.1 with a port of its choosing; returns it and the port.
fn spawn_chromedriver() -> (Child, u16) {
    let mut driver = Command::new("chromedriver")
        .arg("--port=0")
        .env("TZ", TIME_ZONE)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let stdout = driver.stdout.take().expect("chromedriver's stdout");
    let (port_tx, port_rx) = mpsc::channel();
    // Reads the port from the start-up line, then drains the rest so the pipe never fills.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(port) = line
                .split("started successfully on port ")
                .nth(1)
                .and_then(|rest| rest.trim_end_matches('.').trim().parse::<u16>().ok())
            {
                let _ = port_tx.send(port);
            }
        }
    });
    match port_rx.recv_timeout(Duration::from_secs(20)) {
        Ok(port) => (driver, port),
        Err(_) => {
            let _ = driver.kill();
            let _ = driver.wait();
            panic!("chromedriver did not report its port within 20 s");
        }
    }
}
