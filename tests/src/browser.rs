//! A real browser for the console's pages: Debian's chromium, headless, printing the DOM
//! it built from a page, with everything that would reach beyond the page switched off
//! (no background networking, updates, sync or metrics), and a profile of its own.

use std::{path::Path, process::Command, time::Duration};

/// The DOM chromium built from `url`, as HTML.
pub fn dom(url: &str, profile: &Path) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            // Root in a test: chromium's sandbox needs an unprivileged user.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--no-first-run",
            "--metrics-recording-only",
            "--timeout=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits for `addr` to accept connections.
pub fn wait_listening(addr: &str, timeout: Duration) {
    let end = std::time::Instant::now() + timeout;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(std::time::Instant::now() < end, "{addr} never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
}
