//! The TOML configuration file. Every key is optional; unknown keys and bad values are
//! errors that name the file, line and column.

use std::{ops::Range, path::Path, time::Duration};

use serde::{Deserialize, Deserializer};
use toml::Spanned;

pub mod error;
mod validate;

pub use error::ConfigError;

use crate::model::vocab::Criticality;

/// The whole configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[sensor]`.
    #[serde(default)]
    pub sensor: SensorConfig,
    /// `[output]`.
    #[serde(default)]
    pub output: OutputConfig,
    /// `[inventory]`.
    #[serde(default)]
    pub inventory: InventoryConfig,
    /// `[[device]]`: the declared inventory.
    #[serde(default, rename = "device")]
    pub devices: Vec<DeclaredDevice>,
    /// `[classify]`.
    #[serde(default)]
    pub classify: ClassifyConfig,
    /// `[baseline]`.
    #[serde(default)]
    pub baseline: BaselineConfig,
    /// `[[policy]]`: declared destination policies.
    #[serde(default, rename = "policy")]
    pub policies: Vec<PolicyConfig>,
    /// `[mud]`.
    #[serde(default)]
    pub mud: MudConfig,
    /// `[intel]` and its `[[intel.feed]]`s.
    #[serde(default)]
    pub intel: IntelConfig,
    /// `[canary]`.
    #[serde(default)]
    pub canary: CanaryConfig,
    /// `[vulns]` and its `[[vulns.feed]]`s: known-vulnerability feeds.
    #[serde(default)]
    pub vulns: VulnsConfig,
    /// `[anomaly]`: thresholds of the behaviour detectors.
    #[serde(default)]
    pub anomaly: AnomalyConfig,
    /// `[metrics]`: a Prometheus endpoint, off unless the section is there.
    pub metrics: Option<MetricsConfig>,
    /// `[console]`: the web console, off unless the section is there.
    pub console: Option<ConsoleConfig>,
    /// `[history]`: how much alert history the state directory keeps.
    #[serde(default)]
    pub history: HistoryConfig,
    /// `[states]`: the mode a device takes when an operator puts it in a state.
    #[serde(default)]
    pub states: StatesConfig,
    /// The directory of the file this came from: relative paths in it are relative to it.
    #[serde(skip)]
    pub base_dir: Option<std::path::PathBuf>,
}

/// A policy mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Record every destination; alert on none.
    Learn,
    /// Alert on unexpected destinations.
    Monitor,
    /// Alert on and drop unexpected destinations.
    Enforce,
}

impl Mode {
    /// The name in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Learn => "learn",
            Mode::Monitor => "monitor",
            Mode::Enforce => "enforce",
        }
    }
}

/// `[baseline]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// The mode of devices without a declared policy of their own.
    pub mode: Mode,
    /// In learn mode: how long each device learns, from its own first sight; then it is
    /// monitored.
    #[serde(deserialize_with = "duration")]
    pub learn_for: Spanned<Duration>,
    /// A name rule (learned or declared) allows every name of its registered domain
    /// (Public Suffix List). Off by default: it also allows whoever else holds names there.
    pub registered_domains: bool,
    /// Destinations every device may reach: the LAN's own prefixes. Empty: the sensor's
    /// interface prefixes (replay: the private ranges), with multicast and broadcast.
    pub local: Vec<Spanned<String>>,
    /// A resolved address stays allowed this long past its DNS TTL.
    #[serde(deserialize_with = "duration")]
    pub dns_grace: Spanned<Duration>,
    /// Allow-list entries in the kernel, over all devices.
    pub max_allow_entries: u32,
    /// The built-in services no device may learn (telnet, SMTP, IRC, Tor, mining
    /// stratum): alerted as `suspicious_service` while learning.
    pub suspicious_builtin: bool,
    /// More such services: `tcp:8333`, `udp:5000-5010`.
    pub suspicious_ports: Vec<Spanned<String>>,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Learn,
            learn_for: Spanned::new(0..0, Duration::from_secs(24 * 3600)),
            registered_domains: false,
            local: Vec::new(),
            dns_grace: Spanned::new(0..0, Duration::from_secs(300)),
            max_allow_entries: sensor_common::maps::DEFAULT_MAX_ALLOW,
            suspicious_builtin: true,
            suspicious_ports: Vec::new(),
        }
    }
}

/// One `[[policy]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Its name (referenced by `[[device]] policy`).
    pub name: Spanned<String>,
    /// Applies to devices of these categories ...
    #[serde(default)]
    pub categories: Vec<Spanned<String>>,
    /// ... and to these MACs.
    #[serde(default)]
    pub devices: Vec<Spanned<String>>,
    /// Allowed destinations.
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// A MUD file whose from-device rules it adds (relative to the config file).
    pub mud: Option<Spanned<String>>,
    /// Its mode. Unset: enforce when `[baseline] mode` is enforce, else monitor (a declared
    /// policy is meant to be checked, not learned).
    pub mode: Option<Mode>,
    /// With `mode = "learn"`: how long its devices learn, instead of `[baseline] learn_for`.
    #[serde(default, deserialize_with = "opt_duration")]
    pub learn_for: Option<Spanned<Duration>>,
    /// Its own `registered_domains`, instead of `[baseline]`'s.
    pub registered_domains: Option<bool>,
}

/// `[intel]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntelConfig {
    /// Drop traffic to listed destinations (XDP_DROP).
    pub block: bool,
    /// The feeds.
    #[serde(rename = "feed")]
    pub feeds: Vec<FeedConfig>,
}

/// One `[[intel.feed]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// The file (relative to the configuration file).
    pub path: Spanned<String>,
    /// Its format: one of `intel::formats::FORMATS`.
    pub format: Spanned<String>,
    /// Its name in alerts and stats (default: the file name without extension).
    pub name: Option<String>,
    /// Take private, loopback, link-local, multicast and very broad entries too.
    #[serde(default)]
    pub allow_broad: bool,
    /// For `suricata-iprep`: the categories file naming its category numbers.
    pub categories: Option<String>,
}

/// `[vulns]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VulnsConfig {
    /// The feeds: NVD CVE JSON 2.0 files and CISA's KEV catalog, local files only.
    #[serde(rename = "feed")]
    pub feeds: Vec<VulnFeedConfig>,
}

/// One `[[vulns.feed]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VulnFeedConfig {
    /// The file (relative to the configuration file), gzip or not.
    pub path: Spanned<String>,
    /// `nvd` (NVD CVE JSON 2.0) or `kev` (CISA Known Exploited Vulnerabilities JSON).
    pub format: Spanned<String>,
}

/// `[anomaly]`: every threshold of the behaviour detectors, each with its default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    /// Fan-out window.
    #[serde(deserialize_with = "duration")]
    pub window: Spanned<Duration>,
    /// Distinct destinations in a window that make a sweep.
    pub fanout_destinations: usize,
    /// Distinct ports of one destination in a window that make a port scan.
    pub fanout_ports: usize,
    /// Volume is judged per interval of this length.
    #[serde(deserialize_with = "duration")]
    pub volume_interval: Spanned<Duration>,
    /// Intervals before a device's rate is trusted.
    pub volume_warmup: u32,
    /// A spike is above the learned rate by this many deviations ...
    pub volume_k: f64,
    /// ... and this many times the learned rate ...
    pub volume_ratio: f64,
    /// ... and at least this many bytes in the interval ...
    pub volume_floor_bytes: u64,
    /// ... (or packets, for the packet series).
    pub volume_floor_packets: u64,
    /// TCP SYNs a device sends to one destination and port within a poll.
    pub syn_flood_packets: u64,
    /// Connections to one login service (by the device, or to it) in
    /// `brute_force_window` that make `brute_force`.
    pub brute_force_connections: u64,
    /// Its window.
    #[serde(deserialize_with = "duration")]
    pub brute_force_window: Spanned<Duration>,
    /// The login services (TCP ports) it watches.
    pub brute_force_ports: Vec<u16>,
    /// Short connections to one remote shell (SSH, telnet) in `brute_force_logins_window`
    /// that make `brute_force` too.
    pub brute_force_logins: u64,
    /// Its window.
    #[serde(deserialize_with = "duration")]
    pub brute_force_logins_window: Spanned<Duration>,
    /// Resolvers devices may use besides the LAN's own.
    pub dns_servers: Vec<Spanned<String>>,
    /// Time servers devices may use besides the LAN's own.
    pub ntp_servers: Vec<Spanned<String>>,
    /// One alert per device and rule at most this often; repeats are counted.
    #[serde(deserialize_with = "duration")]
    pub realert_after: Spanned<Duration>,
    /// The DNS detectors' window.
    #[serde(deserialize_with = "duration")]
    pub dns_window: Spanned<Duration>,
    /// Distinct encoded names under one registered domain in the window: `dns_tunnel`.
    pub dns_tunnel_names: usize,
    /// Characters left of the registered domain that make a name encoded ...
    pub dns_tunnel_chars: usize,
    /// ... with at least this entropy, bits per character.
    pub dns_tunnel_entropy: f64,
    /// Distinct random-looking registered domains answered NXDOMAIN in the window:
    /// `dga_activity`.
    pub dga_domains: usize,
    /// The entropy a generated domain's label has at least, bits per character.
    pub dga_entropy: f64,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        let d = |s| Spanned::new(0..0, Duration::from_secs(s));
        Self {
            window: d(10),
            fanout_destinations: 32,
            fanout_ports: 32,
            volume_interval: d(10),
            volume_warmup: 6,
            volume_k: 6.0,
            volume_ratio: 4.0,
            volume_floor_bytes: 1_000_000,
            volume_floor_packets: 1_000,
            syn_flood_packets: 200,
            brute_force_connections: 20,
            brute_force_window: d(60),
            // fail2ban's sshd jail: maxretry 5 within findtime 10m (jail.conf).
            brute_force_logins: 5,
            brute_force_logins_window: d(600),
            // FTP, SSH, telnet and their usual alternates, POP3/IMAP (plain and TLS), SMB,
            // MS SQL, MySQL, RDP, PostgreSQL, VNC, MikroTik Winbox: what password-guessing
            // tools and IoT botnets try (Mirai and its kin on 22, 23, 2323).
            brute_force_ports: vec![
                21, 22, 23, 110, 143, 445, 993, 995, 1433, 2222, 2323, 3306, 3389, 5432, 5900, 8291,
            ],
            dns_servers: Vec::new(),
            ntp_servers: Vec::new(),
            realert_after: d(600),
            dns_window: d(60),
            dns_tunnel_names: 30,
            dns_tunnel_chars: 20,
            dns_tunnel_entropy: 3.0,
            dga_domains: 10,
            dga_entropy: 2.5,
        }
    }
}

/// `[canary]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CanaryConfig {
    /// Addresses no legitimate device ever contacts.
    pub addresses: Vec<Spanned<String>>,
}

/// `[mud]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MudConfig {
    /// MUD files matched to devices by the MUD URL they announce.
    pub dir: Option<std::path::PathBuf>,
}

/// `[classify]`: where classification rules come from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifyConfig {
    /// A rules file in the format of the built-in `data/classify.toml`, read after it.
    pub rules: Option<std::path::PathBuf>,
    /// Whether the built-in rules apply (false: only the user's file).
    pub builtin: bool,
}

impl Default for ClassifyConfig {
    fn default() -> Self {
        Self {
            rules: None,
            builtin: true,
        }
    }
}

/// One `[[device]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredDevice {
    /// Its MAC.
    pub mac: Spanned<String>,
    /// What people call it.
    pub name: Option<String>,
    /// One of [`crate::model::vocab::CATEGORIES`].
    pub category: Option<Spanned<String>>,
    /// How much it matters.
    pub criticality: Option<Criticality>,
    /// The name of a `[[policy]]` for it.
    pub policy: Option<Spanned<String>>,
}

/// `[inventory]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryConfig {
    /// A declared device unseen this long raises `missing_device`.
    #[serde(deserialize_with = "duration")]
    pub missing_after: Spanned<Duration>,
    /// LAN devices depending on a device that raise its criticality a level.
    pub critical_dependents: u64,
    /// LAN devices a device reaches that raise its criticality a level.
    pub critical_peers: u64,
    /// External destinations a device reaches that raise its criticality a level.
    pub critical_destinations: u64,
    /// A locally administered (randomised) MAC that has said nothing to tie it to an
    /// earlier identity (DHCP client id, DUID, host name) waits this long for it before
    /// `new_device`.
    #[serde(deserialize_with = "duration")]
    pub identity_grace: Spanned<Duration>,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        Self {
            missing_after: Spanned::new(0..0, Duration::from_secs(3600)),
            critical_dependents: 3,
            critical_peers: 5,
            critical_destinations: 50,
            identity_grace: Spanned::new(0..0, Duration::from_secs(30)),
        }
    }
}

/// `[sensor]`: identity, timing and kernel table sizes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorConfig {
    /// The `host` field of every event (Suricata's name for it); defaults to the host name.
    pub name: String,
    /// How often the flow and device maps are read.
    #[serde(deserialize_with = "duration")]
    pub poll_interval: Spanned<Duration>,
    /// How often a `stats` event is written.
    #[serde(deserialize_with = "duration")]
    pub stats_interval: Spanned<Duration>,
    /// A flow with new traffic gets a `flow` record at most this often.
    #[serde(deserialize_with = "duration")]
    pub flow_report: Spanned<Duration>,
    /// How often a poll reads the whole flow map instead of only the flows that changed:
    /// flows the kernel evicted are found then.
    #[serde(deserialize_with = "duration")]
    pub flow_sweep_interval: Spanned<Duration>,
    /// Flow-table entries in the kernel (LRU beyond that).
    pub max_flows: Spanned<u32>,
    /// Device-table entries in the kernel (LRU beyond that).
    pub max_devices: Spanned<u32>,
    /// Ring-buffer size in bytes: a power of two, at least one page.
    pub ring_buffer_bytes: Spanned<u32>,
    /// Copy each flow's first payload from a device to the decoders (software inventory,
    /// service identity). Only decoded facts are kept; false turns the copy off in the
    /// kernel.
    pub payload_sampling: bool,
}

impl Default for SensorConfig {
    fn default() -> Self {
        let d = |v| Spanned::new(0..0, v);
        Self {
            name: hostname(),
            poll_interval: d(Duration::from_secs(1)),
            stats_interval: d(Duration::from_secs(60)),
            flow_report: d(Duration::from_secs(60)),
            flow_sweep_interval: d(Duration::from_secs(30)),
            max_flows: Spanned::new(0..0, sensor_common::maps::DEFAULT_MAX_FLOWS),
            max_devices: Spanned::new(0..0, sensor_common::maps::DEFAULT_MAX_DEVICES),
            ring_buffer_bytes: Spanned::new(0..0, sensor_common::maps::DEFAULT_RING_BYTES),
            payload_sampling: true,
        }
    }
}

/// `[output]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Where events go: a file path, or `-` for standard output.
    pub path: String,
    /// Lines queued for a sink that is slow; beyond that they are dropped and counted.
    pub queue_lines: usize,
    /// `[output.nats]`: also publish every line to NATS JetStream (a fleet's one place).
    pub nats: Option<NatsConfig>,
    /// What becomes of an alert an operator muted: `mark` writes it with
    /// `iot.rule.muted: true`; `history` keeps it only in the state directory's history.
    /// Counted (`alerts_muted`) either way.
    pub muted_alerts: MutedAlerts,
}

/// `[output] muted_alerts`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MutedAlerts {
    /// In the stream, marked.
    #[default]
    Mark,
    /// Only in the history.
    History,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            path: "-".into(),
            queue_lines: 65_536,
            nats: None,
            muted_alerts: MutedAlerts::Mark,
        }
    }
}

/// `[output.nats]`: JetStream publishing beside the file or standard output.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// One server or several (`nats://` or `tls://`); the client fails over between them.
    #[serde(deserialize_with = "one_or_many")]
    pub url: Spanned<Vec<String>>,
    /// A `.creds` file (JWT and NKey seed) for the account the sensor publishes as.
    pub creds: Option<std::path::PathBuf>,
    /// User name (with `password`), when the server uses plain accounts.
    pub user: Option<String>,
    /// The user's password.
    pub password: Option<String>,
    /// A token, when the server uses token authentication.
    pub token: Option<String>,
    /// Certificate authority (PEM) that signs the servers' certificates.
    pub tls_ca: Option<std::path::PathBuf>,
    /// Client certificate (PEM), for servers that verify clients; needs `tls_key`.
    pub tls_cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    pub tls_key: Option<std::path::PathBuf>,
    /// Refuse a connection that is not TLS.
    pub tls_required: bool,
    /// Subjects are `<subject_prefix>.<host>.<event_type>`.
    pub subject_prefix: Spanned<String>,
    /// The stream created when none covers the subjects.
    pub stream: Spanned<String>,
    /// How long the created stream keeps a line.
    #[serde(deserialize_with = "duration")]
    pub max_age: Spanned<Duration>,
    /// How many bytes the created stream keeps (oldest go first); 0 is no limit.
    pub max_bytes: u64,
    /// Copies of the created stream and bucket in a cluster (1 to 5).
    pub replicas: Spanned<usize>,
    /// The key-value bucket of device profiles (key `<host>.<mac-with-dashes>`).
    pub kv_bucket: Spanned<String>,
    /// Lines kept in the state directory while the broker is unreachable; beyond this the
    /// newest are dropped and counted.
    pub spool_bytes: Spanned<u64>,
    /// At exit, how long to wait for the broker to take what is spooled (the rest waits
    /// for the next start).
    #[serde(deserialize_with = "duration")]
    pub drain_timeout: Spanned<Duration>,
    /// Which event types go to the stream (all four by default); device records go to
    /// the bucket whatever this says.
    pub event_types: Spanned<Vec<String>>,
}

/// Every `event_type` the sensor writes (the EVE schema's `oneOf`).
pub const EVENT_TYPES: [&str; 4] = ["alert", "device", "flow", "stats"];

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: Spanned::new(0..0, vec!["nats://127.0.0.1:4222".into()]),
            creds: None,
            user: None,
            password: None,
            token: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            tls_required: false,
            subject_prefix: Spanned::new(0..0, "kettlewatch".into()),
            stream: Spanned::new(0..0, "KETTLEWATCH".into()),
            max_age: Spanned::new(0..0, Duration::from_secs(30 * 24 * 3600)),
            max_bytes: 0,
            replicas: Spanned::new(0..0, 1),
            kv_bucket: Spanned::new(0..0, "kettlewatch-devices".into()),
            spool_bytes: Spanned::new(0..0, 256 << 20),
            drain_timeout: Spanned::new(0..0, Duration::from_secs(10)),
            event_types: Spanned::new(0..0, EVENT_TYPES.map(String::from).to_vec()),
        }
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Spanned<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let v = Spanned::<OneOrMany>::deserialize(d)?;
    let span = v.span();
    Ok(Spanned::new(
        span,
        match v.into_inner() {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        },
    ))
}

/// `[metrics]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where the Prometheus endpoint listens (`/metrics`); loopback unless the user says
    /// otherwise, because the counters describe the network it watches.
    pub listen: std::net::SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9560)),
        }
    }
}

/// `[console]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Where the console listens; loopback unless the user says otherwise: its pages show
    /// every device on the network and where each goes.
    pub listen: Spanned<std::net::SocketAddr>,
    /// A file holding the token every request must carry (at least 32 characters, not
    /// readable by every user); required when `listen` is not loopback.
    pub token_file: Option<std::path::PathBuf>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            listen: Spanned::new(0..0, std::net::SocketAddr::from(([127, 0, 0, 1], 9561))),
            token_file: None,
        }
    }
}

/// `[states]`: what an operator's device state (`kettlewatch device state`) does to the
/// device's destination policy. A state left out changes nothing but the label.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatesConfig {
    /// The mode of a device an operator authorised (its baseline reviewed): `enforce`
    /// drops what the baseline does not allow.
    pub authorised: Option<Spanned<Mode>>,
    /// The mode of a device under investigation: `enforce` confines it to what it was
    /// allowed while it is looked at.
    pub investigating: Option<Spanned<Mode>>,
}

impl StatesConfig {
    /// The mode `state` asks for, if the configuration gives it one.
    pub fn mode_of(&self, state: &str) -> Option<Mode> {
        match state {
            "authorised" => self.authorised.as_ref(),
            "investigating" => self.investigating.as_ref(),
            _ => None,
        }
        .map(|m| *m.get_ref())
    }
}

/// `[history]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Alerts older than this leave the history.
    #[serde(deserialize_with = "duration")]
    pub keep_for: Spanned<Duration>,
    /// At most this many alerts are kept (the oldest go first).
    pub max_alerts: u64,
    /// At most this many destinations are kept per device (the least recently used go;
    /// unused for `keep_for`, they go too).
    pub max_destinations: u64,
}

impl Default for HistoryConfig {
    /// 30 days and 100,000 alerts (about 100 MB of lines at the very most).
    fn default() -> Self {
        Self {
            keep_for: Spanned::new(0..0, Duration::from_secs(30 * 24 * 3600)),
            max_alerts: 100_000,
            max_destinations: 256,
        }
    }
}

impl Config {
    /// Reads and parses a configuration file (relative paths are made relative to it).
    /// This checks the file on its own; `engine::check` adds the checks that need
    /// other stages (feed formats, allow entries, classification rules, MUD files).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::read(path).map(|(c, _)| c)
    }

    /// [`Config::load`], also returning the file's text, for errors that point into it.
    pub fn read(path: &Path) -> Result<(Self, String), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut c = Self::parse(&text, &path.display().to_string())?;
        if let Some(dir) = path.parent() {
            if let Some(r) = &c.classify.rules
                && r.is_relative()
            {
                c.classify.rules = Some(dir.join(r));
            }
            if let Some(m) = &c.mud.dir
                && m.is_relative()
            {
                c.mud.dir = Some(dir.join(m));
            }
            if let Some(t) = c.console.as_mut().and_then(|c| c.token_file.as_mut())
                && t.is_relative()
            {
                *t = dir.join(&*t);
            }
            c.base_dir = Some(dir.to_path_buf());
        }
        Ok((c, text))
    }

    /// Parses and validates configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let at = |span: Option<Range<usize>>, message| {
            ConfigError::at(origin, text, span.map_or(0, |s| s.start), message)
        };
        let config: Config =
            toml::from_str(text).map_err(|e| at(e.span(), e.message().to_string()))?;
        config
            .validate()
            .map_err(|(span, msg)| at(Some(span), msg))?;
        Ok(config)
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Spanned<Duration>, D::Error> {
    let s = Spanned::<String>::deserialize(d)?;
    let span = s.span();
    humantime::parse_duration(s.get_ref())
        .map(|v| Spanned::new(span, v))
        .map_err(|e| {
            serde::de::Error::custom(format!(
                "{:?} is not a duration such as \"500ms\", \"30s\" or \"24h\": {e}",
                s.get_ref()
            ))
        })
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Spanned<Duration>>, D::Error> {
    duration(d).map(Some)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "kettlewatch".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text, "kw.toml").unwrap_err().to_string()
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("", "kw.toml").unwrap();
        assert_eq!(*c.sensor.poll_interval.get_ref(), Duration::from_secs(1));
        assert_eq!(*c.sensor.max_flows.get_ref(), 65_536);
        assert_eq!(c.output.path, "-");
        assert!(!c.sensor.name.is_empty());
    }

    #[test]
    fn values_are_read() {
        let c = Config::parse(
            "[sensor]\nname = \"gw-lab-1\"\npoll_interval = \"500ms\"\nmax_flows = 1024\n[output]\npath = \"/tmp/x.json\"\n",
            "kw.toml",
        )
        .unwrap();
        assert_eq!(c.sensor.name, "gw-lab-1");
        assert_eq!(
            *c.sensor.poll_interval.get_ref(),
            Duration::from_millis(500)
        );
        assert_eq!(*c.sensor.max_flows.get_ref(), 1024);
        assert_eq!(c.output.path, "/tmp/x.json");
    }

    #[test]
    fn nats_takes_one_server_or_several_and_names_the_line_of_a_bad_one() {
        let c = Config::parse(
            "[output.nats]\nurl = \"nats://192.0.2.5:4222\"\n",
            "kw.toml",
        )
        .unwrap();
        let n = c.output.nats.unwrap();
        assert_eq!(n.url.get_ref(), &vec!["nats://192.0.2.5:4222".to_string()]);
        assert_eq!(n.stream.get_ref(), "KETTLEWATCH");
        let c = Config::parse(
            "[output.nats]\nurl = [\"nats://192.0.2.5:4222\", \"tls://192.0.2.6:4222\"]\nreplicas = 3\n",
            "kw.toml",
        )
        .unwrap();
        assert_eq!(c.output.nats.unwrap().url.get_ref().len(), 2);
        assert!(Config::parse("", "kw.toml").unwrap().output.nats.is_none());
        let e = err("[output.nats]\nurl = \"http://[::1\"\n");
        assert!(
            e.starts_with("kw.toml:2:7: ") && e.contains("not a NATS server"),
            "{e}"
        );
        let e = err("[output.nats]\nurl = \"nats://192.0.2.5\"\n\nstream = \"A.B\"\n");
        assert!(
            e.starts_with("kw.toml:4:10: ") && e.contains("stream"),
            "{e}"
        );
        let e = err("[output.nats]\nreplicas = 7\n");
        assert!(
            e.starts_with("kw.toml:2:12: ") && e.contains("1 to 5"),
            "{e}"
        );
        let e = err("[output.nats]\ntls_cert = \"c.pem\"\n");
        assert!(e.contains("tls_cert and tls_key go together"), "{e}");
        let n = Config::parse(
            "[output.nats]\nevent_types = [\"alert\", \"device\"]\n",
            "kw.toml",
        )
        .unwrap()
        .output
        .nats
        .unwrap();
        assert_eq!(n.event_types.get_ref(), &["alert", "device"]);
        let e = err("[output.nats]\nevent_types = [\"alert\", \"flows\"]\n");
        assert!(
            e.starts_with("kw.toml:2:15: ") && e.contains("\"flows\" is not an event type"),
            "{e}"
        );
    }

    #[test]
    fn a_console_off_loopback_needs_a_token_file() {
        let c = Config::parse("[console]\n", "kw.toml")
            .unwrap()
            .console
            .unwrap();
        assert!(c.listen.get_ref().ip().is_loopback() && c.token_file.is_none());
        let e = err("[console]\nlisten = \"0.0.0.0:9561\"\n");
        assert!(
            e.starts_with("kw.toml:2:10: ") && e.contains("token_file"),
            "{e}"
        );
        let c = Config::parse(
            "[console]\nlisten = \"[::]:9561\"\ntoken_file = \"t\"\n",
            "kw.toml",
        )
        .unwrap();
        assert_eq!(
            c.console.unwrap().token_file.unwrap(),
            std::path::Path::new("t")
        );
    }

    #[test]
    fn a_state_takes_monitor_or_enforce() {
        let c = Config::parse("[states]\ninvestigating = \"enforce\"\n", "kw.toml").unwrap();
        assert_eq!(c.states.mode_of("investigating"), Some(Mode::Enforce));
        assert_eq!(c.states.mode_of("authorised"), None);
        let e = err("[states]\nauthorised = \"learn\"\n");
        assert!(
            e.starts_with("kw.toml:2:14: ") && e.contains("monitor or enforce"),
            "{e}"
        );
        let e = err("[states]\nquarantined = \"enforce\"\n");
        assert!(e.contains("quarantined"), "{e}");
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let e = err("[sensor]\nname = \"a\"\npoll_intervall = \"1s\"\n");
        assert!(e.starts_with("kw.toml:3:1: "), "{e}");
        assert!(e.contains("poll_intervall"), "{e}");
    }

    #[test]
    fn unknown_section_names_file_and_line() {
        let e = err("\n\n[sensr]\nname = \"a\"\n");
        assert!(e.starts_with("kw.toml:3:"), "{e}");
        assert!(e.contains("sensr"), "{e}");
    }

    #[test]
    fn bad_duration_names_line_and_says_what_is_expected() {
        let e = err("[sensor]\n\npoll_interval = \"soon\"\n");
        assert!(e.starts_with("kw.toml:3:"), "{e}");
        assert!(e.contains("not a duration"), "{e}");
    }

    #[test]
    fn bad_ring_size_names_line() {
        let e = err("[sensor]\nring_buffer_bytes = 5000\n");
        assert!(e.starts_with("kw.toml:2:21: "), "{e}");
        assert!(e.contains("power of two"), "{e}");
    }

    #[test]
    fn zero_interval_is_refused() {
        let e = err("[sensor]\nstats_interval = \"0s\"\n");
        assert!(e.starts_with("kw.toml:2:"), "{e}");
    }

    #[test]
    fn declared_devices_are_read_and_checked() {
        let c = Config::parse(
            "[inventory]\nmissing_after = \"2s\"\n[[device]]\nmac = \"02:00:00:00:00:0A\"\nname = \"lobby-camera\"\ncategory = \"camera\"\ncriticality = \"high\"\n",
            "kw.toml",
        )
        .unwrap();
        assert_eq!(c.devices.len(), 1);
        assert_eq!(c.devices[0].criticality, Some(Criticality::High));
        assert_eq!(*c.inventory.missing_after.get_ref(), Duration::from_secs(2));
        let e = err("[[device]]\nmac = \"02:00:00:00:00\"\n");
        assert!(
            e.starts_with("kw.toml:2:7: ") && e.contains("not a MAC"),
            "{e}"
        );
        let e = err("[[device]]\nmac = \"02:00:00:00:00:01\"\ncategory = \"toaster\"\n");
        assert!(
            e.starts_with("kw.toml:3:12: ") && e.contains("unknown category"),
            "{e}"
        );
        let e = err(
            "[[device]]\nmac = \"02:00:00:00:00:01\"\n[[device]]\nmac = \"02:00:00:00:00:01\"\n",
        );
        assert!(
            e.starts_with("kw.toml:4:7: ") && e.contains("declared twice"),
            "{e}"
        );
        let e = err("[[device]]\nmac = \"02:00:00:00:00:01\"\ncriticality = \"extreme\"\n");
        assert!(e.starts_with("kw.toml:3:"), "{e}");
    }

    #[test]
    fn wrong_type_is_refused() {
        let e = err("[sensor]\nmax_flows = \"many\"\n");
        assert!(e.starts_with("kw.toml:2:"), "{e}");
    }
}
