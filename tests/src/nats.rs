//! Real NATS servers (Debian's `nats-server`) with JetStream, one or a cluster, on the
//! loopback of a namespace the guard owns; every server is killed and its storage
//! removed when the guard drops. A JetStream client runs inside the namespace to read
//! back what the sensor published.

use std::{
    collections::BTreeMap,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use async_nats::jetstream;
use futures_util::StreamExt;

use crate::{env::TempDir, netns::Netns};

/// Client port of server `i`.
fn client_port(i: usize) -> u16 {
    4222 + i as u16
}

/// One running server, or none while it is stopped.
struct Node {
    name: String,
    config: std::path::PathBuf,
    child: Option<Child>,
}

/// Certificates and a password for a broker that wants TLS and authentication.
pub struct Secure {
    /// The test CA (PEM) that signed both certificates.
    pub ca: std::path::PathBuf,
    /// The client's certificate and key (PEM).
    pub client: (std::path::PathBuf, std::path::PathBuf),
    server: (std::path::PathBuf, std::path::PathBuf),
    /// The one account: user and password.
    pub user: (String, String),
}

impl Secure {
    /// A fresh CA, a server certificate for 127.0.0.1 and a client certificate, made with
    /// openssl in `dir`.
    pub fn make(dir: &TempDir) -> Self {
        let p = |n: &str| dir.join(n);
        let sh = |args: &[&str]| {
            let o = std::process::Command::new("openssl")
                .args(args)
                .output()
                .expect("run openssl");
            assert!(
                o.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        let s = |p: std::path::PathBuf| p.display().to_string();
        sh(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &s(p("ca.key")),
            "-out",
            &s(p("ca.pem")),
            "-days",
            "2",
            "-subj",
            "/CN=kettlewatch test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
            let ext = p(&format!("{name}.ext"));
            std::fs::write(
                &ext,
                format!("subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n"),
            )
            .expect("write extensions");
            sh(&[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &s(p(&format!("{name}.key"))),
                "-out",
                &s(p(&format!("{name}.csr"))),
                "-subj",
                &format!("/CN=kettlewatch test {name}"),
            ]);
            sh(&[
                "x509",
                "-req",
                "-in",
                &s(p(&format!("{name}.csr"))),
                "-CA",
                &s(p("ca.pem")),
                "-CAkey",
                &s(p("ca.key")),
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &s(p(&format!("{name}.pem"))),
                "-extfile",
                &s(ext),
            ]);
        }
        Self {
            ca: p("ca.pem"),
            client: (p("client.pem"), p("client.key")),
            server: (p("server.pem"), p("server.key")),
            user: ("kw-sensor".into(), "s3cret-for-tests".into()),
        }
    }
}

/// The servers, their namespace and storage.
pub struct Nats {
    /// The namespace they listen in: run the sensor there.
    pub ns: Netns,
    nodes: Vec<Node>,
    dir: TempDir,
    secure: Option<Secure>,
}

impl Nats {
    /// `n` servers; with more than one, a cluster (routes between them on loopback).
    /// None is started: call [`Nats::start`].
    pub fn new(tag: &str, n: usize) -> Self {
        let ns = Netns::new(&crate::env::unique(tag));
        let dir = TempDir::new();
        let routes: Vec<String> = (0..n)
            .map(|i| format!("nats-route://127.0.0.1:{}", 6222 + i))
            .collect();
        let nodes = (0..n)
            .map(|i| {
                let name = format!("n{i}");
                let store = dir.join(&format!("{name}-js"));
                let mut c = format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{}\njetstream {{ store_dir: \"{}\" }}\n",
                    client_port(i),
                    store.display()
                );
                if n > 1 {
                    c.push_str(&format!(
                        "cluster {{ name: kw, listen: 127.0.0.1:{}, routes: [{}] }}\n",
                        6222 + i,
                        routes.join(", ")
                    ));
                }
                let config = dir.join(&format!("{name}.conf"));
                std::fs::write(&config, c).expect("write nats-server config");
                Node {
                    name,
                    config,
                    child: None,
                }
            })
            .collect();
        Self {
            ns,
            nodes,
            dir,
            secure: None,
        }
    }

    /// Every server wants TLS with a client certificate, and the password (set before
    /// [`Nats::start`]); the test's own client uses them too.
    pub fn secure(&mut self, secure: Secure) {
        let extra = format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true }}\nauthorization {{ user: \"{}\", password: \"{}\" }}\n",
            secure.server.0.display(),
            secure.server.1.display(),
            secure.ca.display(),
            secure.user.0,
            secure.user.1
        );
        for n in &self.nodes {
            let mut c = std::fs::read_to_string(&n.config).expect("read server config");
            c.push_str(&extra);
            std::fs::write(&n.config, c).expect("write server config");
        }
        self.secure = Some(secure);
    }

    /// Starts server `i`.
    pub fn start(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "{} already runs", node.name);
        let log = std::fs::File::create(self.dir.join(&format!("{}.log", node.name)))
            .expect("create server log");
        node.child = Some(
            self.ns
                .cmd("nats-server")
                .arg("-c")
                .arg(&node.config)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start nats-server"),
        );
    }

    /// Starts every server.
    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
    }

    /// Kills server `i` with SIGKILL: no goodbye to the cluster.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The running servers' process ids (for their CPU time).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter_map(|n| n.child.as_ref().map(|c| c.id()))
            .collect()
    }

    /// Bytes the servers keep on disk: every JetStream store directory together.
    pub fn store_bytes(&self) -> u64 {
        fn du(dir: &std::path::Path) -> u64 {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .flatten()
                    .map(|e| match e.metadata() {
                        Ok(m) if m.is_dir() => du(&e.path()),
                        Ok(m) => m.len(),
                        Err(_) => 0,
                    })
                    .sum()
            })
        }
        self.nodes
            .iter()
            .map(|n| du(&self.dir.join(&format!("{}-js", n.name))))
            .sum()
    }

    /// Server `i` by name (`n0`, ...).
    pub fn index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Every server's URL, for `[output.nats] url`.
    pub fn urls(&self) -> Vec<String> {
        (0..self.nodes.len())
            .map(|i| format!("nats://127.0.0.1:{}", client_port(i)))
            .collect()
    }

    /// What the servers logged (for a failing test's message).
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let l = std::fs::read_to_string(self.dir.join(&format!("{}.log", n.name)))
                    .unwrap_or_default();
                let tail: Vec<&str> = l.lines().rev().take(15).collect();
                format!(
                    "--- {} ---\n{}",
                    n.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Runs `f` with a JetStream client connected to the running servers, inside the
    /// namespace, on its own runtime.
    pub fn with_client<R: Send + 'static, F>(&self, f: F) -> R
    where
        F: FnOnce(jetstream::Context) -> std::pin::Pin<Box<dyn Future<Output = R> + Send>>
            + Send
            + 'static,
    {
        let urls: Vec<async_nats::ServerAddr> =
            self.urls().iter().map(|u| u.parse().unwrap()).collect();
        let mut options = async_nats::ConnectOptions::new().retry_on_initial_connect();
        if let Some(s) = &self.secure {
            options = options
                .add_root_certificates(s.ca.clone())
                .add_client_certificate(s.client.0.clone(), s.client.1.clone())
                .require_tls(true)
                .user_and_password(s.user.0.clone(), s.user.1.clone());
        }
        self.ns.run(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let client = options
                    .connect(urls)
                    .await
                    .expect("connect to the test's NATS servers");
                let js = jetstream::ContextBuilder::new()
                    .timeout(Duration::from_secs(5))
                    .build(client);
                f(js).await
            })
        })
    }

    /// Waits until JetStream answers (a cluster has elected its meta leader).
    pub fn wait_ready(&self, timeout: Duration) {
        let ok = self.with_client(move |js| {
            Box::pin(async move {
                let end = Instant::now() + timeout;
                let mut last = String::new();
                while Instant::now() < end {
                    // The JetStream API's own info request: answered once a meta leader
                    // is elected and this server is part of the cluster.
                    match js.client().request("$JS.API.INFO", "".into()).await {
                        Ok(m) if !String::from_utf8_lossy(&m.payload).contains("\"error\"") => {
                            return Ok(());
                        }
                        Ok(m) => last = String::from_utf8_lossy(&m.payload).into_owned(),
                        Err(e) => last = e.to_string(),
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(last)
            })
        });
        if let Err(e) = ok {
            panic!(
                "JetStream did not answer within {timeout:?} ({e}):\n{}",
                self.logs()
            );
        }
    }

    /// Every message of `stream`, in stream order: (subject, payload).
    pub fn messages(&self, stream: &str) -> Vec<(String, String)> {
        let stream = stream.to_string();
        self.with_client(move |js| {
            Box::pin(async move {
                let mut s = js.get_stream(&stream).await.expect("stream exists");
                let last = s.info().await.expect("stream info").state.last_sequence;
                let mut out = Vec::new();
                for seq in 1..=last {
                    if let Ok(m) = s.get_raw_message(seq).await {
                        out.push((
                            m.subject.to_string(),
                            String::from_utf8_lossy(&m.payload).into_owned(),
                        ));
                    }
                }
                out
            })
        })
    }

    /// How many messages `stream` holds now (0 while it does not exist).
    pub fn count(&self, stream: &str) -> u64 {
        let stream = stream.to_string();
        self.with_client(move |js| {
            Box::pin(async move {
                match js.get_stream(&stream).await {
                    Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
                    Err(_) => 0,
                }
            })
        })
    }

    /// The server leading `stream` now, if any.
    pub fn leader(&self, stream: &str) -> Option<String> {
        let stream = stream.to_string();
        self.with_client(move |js| {
            Box::pin(async move {
                let mut s = js.get_stream(&stream).await.ok()?;
                s.info().await.ok()?.cluster.as_ref()?.leader.clone()
            })
        })
    }

    /// Whether `stream` has a leader and every other replica is current: only then can
    /// the group elect a new leader when one is lost (a replica still joining counts
    /// toward no quorum).
    pub fn settled(&self, stream: &str) -> bool {
        let stream = stream.to_string();
        let want = self.nodes.len().saturating_sub(1);
        self.with_client(move |js| {
            Box::pin(async move {
                let Ok(mut s) = js.get_stream(&stream).await else {
                    return false;
                };
                let Ok(info) = s.info().await else {
                    return false;
                };
                info.cluster.as_ref().is_some_and(|c| {
                    c.leader.is_some()
                        && c.replicas.len() == want
                        && c.replicas.iter().all(|r| r.current && !r.offline)
                })
            })
        })
    }

    /// Every key of `bucket` with its value.
    pub fn bucket(&self, bucket: &str) -> BTreeMap<String, String> {
        let bucket = bucket.to_string();
        self.with_client(move |js| {
            Box::pin(async move {
                let kv = js.get_key_value(bucket).await.expect("bucket exists");
                let mut keys = kv.keys().await.expect("keys");
                let mut out = BTreeMap::new();
                while let Some(k) = keys.next().await {
                    let k = k.expect("key");
                    if let Some(v) = kv.get(k.clone()).await.expect("get") {
                        out.insert(k, String::from_utf8_lossy(&v).into_owned());
                    }
                }
                out
            })
        })
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
