//! A `kettlewatch` process inside a namespace, killed and reaped when dropped.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::netns::Netns;

/// A running sensor with its stdout and stderr collected line by line.
pub struct Sensor {
    child: Child,
    /// The state directory when the caller gave none (removed with the guard).
    _state: Option<crate::env::TempDir>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// What a stopped sensor left.
pub struct Stopped {
    /// How it exited.
    pub status: ExitStatus,
    /// Its stdout lines.
    pub stdout: Vec<String>,
    /// Its stderr, joined.
    pub stderr: String,
}

fn collect(
    r: impl std::io::Read + Send + 'static,
    echo: bool,
) -> (Arc<Mutex<Vec<String>>>, std::thread::JoinHandle<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    let h = std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if echo {
                println!("{line}");
            }
            l.lock().unwrap().push(line);
        }
    });
    (lines, h)
}

impl Sensor {
    /// Starts `kettlewatch run --iface <iface> <extra...>` inside `ns`. With `echo`, stdout
    /// lines are printed as they come (the demo). Without `--state-dir` in `extra`, the
    /// state goes to a fresh directory of its own, never the system's.
    pub fn start(ns: &Netns, iface: &str, extra: &[&str], echo: bool) -> Self {
        Self::start_under(ns, &[], iface, extra, echo)
    }

    /// [`Sensor::start`] with `wrapper` before the binary (e.g. `setpriv` and its options,
    /// to run it with the privileges a service manager would give it).
    pub fn start_under(
        ns: &Netns,
        wrapper: &[&str],
        iface: &str,
        extra: &[&str],
        echo: bool,
    ) -> Self {
        let bin = crate::env::kettlewatch();
        let bin = bin.to_str().expect("utf-8 path");
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = ns.cmd(first);
                c.args(rest).arg(bin);
                c
            }
            None => ns.cmd(bin),
        };
        cmd.args(["run", "--iface", iface]).args(extra);
        let state = (!extra.contains(&"--state-dir")).then(crate::env::TempDir::new);
        if let Some(s) = &state {
            cmd.arg("--state-dir").arg(s.join("state"));
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("start kettlewatch");
        let (stdout, h1) = collect(child.stdout.take().unwrap(), echo);
        let (stderr, h2) = collect(child.stderr.take().unwrap(), false);
        Self {
            child,
            _state: state,
            stdout,
            stderr,
            readers: vec![h1, h2],
        }
    }

    /// Waits until stderr has a line containing `needle`; panics with stderr on timeout or
    /// if the process exits first.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) {
        let timeout = crate::env::slow(timeout);
        let start = Instant::now();
        loop {
            if self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "kettlewatch exited ({status}) before logging {needle:?}:\n{}",
                    self.stderr.lock().unwrap().join("\n")
                );
            }
            assert!(
                start.elapsed() < timeout,
                "no {needle:?} from kettlewatch within {timeout:?}:\n{}",
                self.stderr.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until some stdout line satisfies `pred`; returns it, or None on timeout.
    pub fn wait_for_line(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(l) = self.stdout.lock().unwrap().iter().find(|l| pred(l)) {
                return Some(l.clone());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits up to `timeout` for the process to exit on its own; whether it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// SIGTERM, then waits (SIGKILL after 20 s) and returns what it wrote.
    pub fn stop(mut self) -> Stopped {
        self.signal(libc::SIGTERM);
        self.finish(crate::env::slow(Duration::from_secs(20)))
    }

    /// SIGKILL, and returns what it wrote.
    pub fn kill9(mut self) -> Stopped {
        self.signal(libc::SIGKILL);
        self.finish(Duration::from_secs(10))
    }

    fn finish(&mut self, timeout: Duration) -> Stopped {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                break self.child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for h in self.readers.drain(..) {
            let _ = h.join();
        }
        Stopped {
            status,
            stdout: std::mem::take(&mut *self.stdout.lock().unwrap()),
            stderr: self.stderr.lock().unwrap().join("\n"),
        }
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
