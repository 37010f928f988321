//! A real Prometheus (Debian's package) in a lab namespace, scraping targets there every
//! second, with its own storage directory; stopped and removed when dropped.

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{env::TempDir, netns::Netns};

/// Where Prometheus listens inside the namespace (each lab has its own loopback).
const LISTEN: &str = "127.0.0.1:9090";

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    ns_name: String,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus in `ns`, scraping `targets` (host:port, in `ns`) as job `job`
    /// every second.
    pub fn start(ns: &Netns, job: &str, targets: &[&str]) -> Self {
        let dir = TempDir::new();
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: '{job}'\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        );
        let path = dir.join("prometheus.yml");
        std::fs::write(&path, config).expect("write prometheus.yml");
        let child = ns
            .cmd("prometheus")
            .arg(format!("--config.file={}", path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={LISTEN}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        Self {
            child,
            ns_name: ns.name.clone(),
            _dir: dir,
        }
    }

    /// The API's answer to an instant query, parsed.
    pub fn query(&self, promql: &str) -> Value {
        let path = format!("/api/v1/query?query={}", encode(promql));
        let body = http_get(&self.ns_name, LISTEN, &path).unwrap_or_default();
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    /// The value of a query that has one series, when it has one.
    pub fn value(&self, promql: &str) -> Option<f64> {
        let v = self.query(promql);
        let r = v["data"]["result"].as_array()?;
        if r.len() != 1 {
            return None;
        }
        r[0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `promql` has one series and `pred` holds for its value; the last value
    /// seen, or None on timeout.
    pub fn wait_for(
        &self,
        promql: &str,
        pred: impl Fn(f64) -> bool,
        timeout: Duration,
    ) -> Option<f64> {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < timeout {
            last = self.value(promql);
            if last.is_some_and(&pred) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        last.filter(|v| pred(*v))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET from inside the namespace named `ns`; the body of a 200 answer.
pub fn http_get(ns: &str, addr: &str, path: &str) -> Option<String> {
    let (ns, addr, path) = (ns.to_string(), addr.to_string(), path.to_string());
    crate::netns::run_in(&ns, move || {
        let mut s = TcpStream::connect(&addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_string())
    })
}

/// Percent-encodes a query for a URL.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
