//! A real browser driven as a user drives it: Debian's chromedriver and chromium, over
//! the W3C WebDriver protocol (plain HTTP and JSON on loopback, so no client library):
//! open a page, type into a field, pick an option, press a button, read the page.

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

/// The element reference key WebDriver answers with.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one headless chromium session; both end on drop.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    /// The network namespace the browser runs in, if not this process's.
    netns: Option<String>,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless session with a profile
    /// in `profile`, background networking off.
    pub fn start(profile: &std::path::Path) -> Self {
        Self::start_in(profile, None)
    }

    /// [`Browser::start`] inside the network namespace `netns` (a lab's gateway, where a
    /// running sensor's console listens on loopback).
    pub fn start_in(profile: &std::path::Path, netns: Option<&crate::netns::Netns>) -> Self {
        let netns = netns.map(|n| n.name.clone());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut cmd = match &netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "chromedriver"]);
                c
            }
            None => Command::new("chromedriver"),
        };
        let driver = cmd
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs");
        let mut b = Self {
            driver,
            port,
            session: String::new(),
            netns,
        };
        let end = std::time::Instant::now() + crate::env::slow(Duration::from_secs(20));
        while b.connect().is_err() {
            assert!(
                std::time::Instant::now() < end,
                "chromedriver never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps", "--no-first-run",
                "--window-size=1280,860", "--hide-scrollbars",
                format!("--user-data-dir={}", profile.display()),
            ]
        }}}});
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut s = self.connect().expect("chromedriver listens");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .unwrap();
        // chromedriver keeps the connection open: read the head, then Content-Length bytes.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut chunk).expect("an answer");
            assert!(n > 0, "chromedriver closed without an answer");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("a Content-Length");
        while buf.len() < head_end + len {
            let n = s.read(&mut chunk).expect("the body");
            assert!(n > 0, "chromedriver closed mid-answer");
            buf.extend_from_slice(&chunk[..n]);
        }
        let json = &buf[head_end..head_end + len];
        let v: Value = serde_json::from_slice(json)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(json)));
        assert!(
            v["value"].get("error").is_none(),
            "{method} {path}: {}",
            v["value"]
        );
        v["value"].clone()
    }

    /// A connection to chromedriver, made in its namespace (a socket stays in the
    /// namespace it was made in).
    fn connect(&self) -> std::io::Result<TcpStream> {
        let port = self.port;
        match &self.netns {
            Some(ns) => crate::netns::run_in(ns, move || TcpStream::connect(("127.0.0.1", port))),
            None => TcpStream::connect(("127.0.0.1", port)),
        }
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url`.
    pub fn open(&self, url: &str) {
        self.call("POST", &self.at("/url"), Some(json!({ "url": url })));
    }

    fn element(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            &self.at("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().expect("an element").to_string()
    }

    /// Types `text` into the field `css` selects.
    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.call(
            "POST",
            &self.at(&format!("/element/{e}/value")),
            Some(json!({ "text": text })),
        );
    }

    /// Clicks what `css` selects (a button, a link, an option of a list).
    pub fn click(&self, css: &str) {
        let e = self.element(css);
        self.call(
            "POST",
            &self.at(&format!("/element/{e}/click")),
            Some(json!({})),
        );
    }

    /// The page as the browser holds it now.
    pub fn source(&self) -> String {
        self.call("GET", &self.at("/source"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The page once it satisfies `pred` (a form's answer may still be loading when the
    /// click returns); panics with the page after `timeout`.
    pub fn wait_for(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let end = std::time::Instant::now() + crate::env::slow(timeout);
        loop {
            let src = self.source();
            if pred(&src) {
                return src;
            }
            assert!(
                std::time::Instant::now() < end,
                "the page never got there: {src}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What `script` (a function body) returns, run in the page.
    pub fn execute(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.at("/execute/sync"),
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Saves what the window shows as a PNG at `path`.
    pub fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let v = self.call("GET", &self.at("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .expect("valid base64");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// The address the browser is at.
    pub fn url(&self) -> String {
        self.call("GET", &self.at("/url"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.call("DELETE", &format!("/session/{}", self.session), None)
            }));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
