//! The publisher: two tasks on the fleet thread's own runtime, so neither a slow broker
//! nor a leader election ever reaches the sensor's loop. One takes lines from the queue
//! into the spool as they come, whatever the broker does (a line in the spool survives
//! `kill -9`; one in the queue would not); the other sends the spool's oldest lines in
//! windows, forgetting each only once JetStream has acknowledged it and everything
//! before it.

use std::{
    sync::{Arc, Mutex, atomic::Ordering},
    time::Duration,
};

use async_nats::jetstream::{self, context::Context, message::PublishMessage};
use tokio::sync::mpsc::Receiver;

use super::{Shared, spool::Spool};

/// Most lines in flight at once: enough to fill a WAN round trip, few enough that a
/// failure resends little.
const WINDOW: usize = 256;
/// A window not acknowledged whole halves, down to this; each one acknowledged whole
/// grows it by [`WINDOW_STEP`]. A cluster falling behind otherwise gets every gateway's
/// backlog at once, its acknowledgements time out, and the resent lines are more work:
/// at twice the load it could carry, a fixed window left it taking a third of it.
const WINDOW_MIN: usize = 8;
const WINDOW_STEP: usize = 16;
/// Lines taken from the queue into the spool per transaction.
const BATCH: usize = 4096;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What the publisher creates when it is missing.
pub(super) struct Plan {
    /// The stream's name.
    pub stream: String,
    /// `<prefix>.>`: what the created stream covers.
    pub stream_subjects: String,
    /// One of our subjects, to ask which stream covers it.
    pub probe_subject: String,
    pub max_age: Duration,
    pub max_bytes: u64,
    pub replicas: usize,
    pub bucket: String,
}

pub(super) struct Publisher {
    pub js: Context,
    pub client: async_nats::Client,
    pub plan: Plan,
    pub spool: Arc<Mutex<Spool>>,
    pub shared: Arc<Shared>,
    ready: bool,
    /// The stream last said to be published to: a failover sets the publisher up again
    /// once per retry, and saying the same stream each time filled logs.
    announced: Option<String>,
    failing: bool,
    backoff: Duration,
    /// Lines sent before waiting for their acknowledgements.
    window: usize,
}

impl Publisher {
    pub fn new(
        client: async_nats::Client,
        plan: Plan,
        spool: Arc<Mutex<Spool>>,
        shared: Arc<Shared>,
    ) -> Self {
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .build(client.clone());
        Self {
            js,
            client,
            plan,
            spool,
            shared,
            ready: false,
            announced: None,
            failing: false,
            backoff: BACKOFF_MIN,
            window: WINDOW,
        }
    }

    /// Runs until the queue is closed and the spool is empty, or until told to stop.
    pub async fn run(mut self) {
        loop {
            self.publish_state();
            if self.shared.stop.load(Ordering::Relaxed) {
                break;
            }
            let intake_done = self.shared.intake_done.load(Ordering::Acquire);
            if intake_done && self.lines() == 0 {
                break;
            }
            if !self.ready {
                match self.setup().await {
                    Ok(()) => self.ready = true,
                    Err(e) => {
                        self.fail(&e);
                        self.idle(self.backoff).await;
                        continue;
                    }
                }
            }
            let peeked = self.spool.lock().expect("spool lock").peek(self.window);
            let window = match peeked {
                Ok(w) => w,
                Err(e) => {
                    self.fail(&e);
                    self.idle(BACKOFF_MAX).await;
                    continue;
                }
            };
            if window.is_empty() {
                self.idle(Duration::from_secs(1)).await;
                continue;
            }
            let sent = self.send(&window).await;
            if sent > 0 {
                let removed = self
                    .spool
                    .lock()
                    .expect("spool lock")
                    .remove(&window[..sent]);
                if let Err(e) = removed {
                    self.fail(&e);
                }
                self.shared
                    .published
                    .fetch_add(sent as u64, Ordering::Relaxed);
            }
            if sent < window.len() {
                self.window = (self.window / 2).max(WINDOW_MIN);
                self.idle(self.backoff).await;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            } else {
                self.window = (self.window + WINDOW_STEP).min(WINDOW);
                if self.failing {
                    tracing::info!(
                        spooled = self.lines(),
                        "NATS publishing works again; sending what was spooled, in order"
                    );
                    self.failing = false;
                }
                self.backoff = BACKOFF_MIN;
            }
        }
        self.publish_state();
        // Whatever was handed to the client is flushed before the thread ends.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.client.flush()).await;
    }

    fn lines(&self) -> u64 {
        self.spool.lock().expect("spool lock").lines()
    }

    /// Sends a window and waits for its acknowledgements; returns how many of the oldest
    /// lines were acknowledged without a gap.
    async fn send(&mut self, window: &[super::spool::Spooled]) -> usize {
        let mut acks = Vec::with_capacity(window.len());
        let spool_id = self.spool.lock().expect("spool lock").id.clone();
        for line in window {
            // The same id for the same line however often it is resent: JetStream keeps
            // one copy within its duplicate window.
            let id = format!("{spool_id}-{}", line.seq);
            let msg = PublishMessage::build()
                .payload(line.payload.clone().into())
                .message_id(id);
            match self.js.send_publish(line.subject.clone(), msg).await {
                Ok(ack) => acks.push(ack),
                Err(e) => {
                    self.fail(&e);
                    break;
                }
            }
        }
        let mut good = 0;
        let mut gap = false;
        let mut waited = Vec::with_capacity(acks.len());
        for (ack, line) in acks.into_iter().zip(window) {
            match ack.await {
                Ok(_) if !gap => {
                    good += 1;
                    if line.queued_ns > 0 {
                        let now = crate::model::clock::realtime_ns();
                        waited.push(now.saturating_sub(line.queued_ns) / 1_000);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if matches!(
                        e.kind(),
                        jetstream::context::PublishErrorKind::StreamNotFound
                    ) {
                        // Deleted under us: make it again.
                        self.ready = false;
                    }
                    if !gap {
                        self.fail(&e);
                    }
                    gap = true;
                }
            }
        }
        let mut h = self.shared.latency.lock().expect("latency lock");
        for us in waited {
            h.saturating_record(us.max(1));
        }
        good
    }

    /// The stream that covers our subjects (made when there is none) and the bucket.
    async fn setup(&mut self) -> Result<(), async_nats::Error> {
        let p = &self.plan;
        match self.js.stream_by_subject(p.probe_subject.clone()).await {
            Ok(name) if self.announced.as_deref() == Some(name.as_str()) => {
                tracing::debug!(stream = %name, "publishing to the same JetStream stream again");
            }
            Ok(name) => {
                tracing::info!(stream = %name, subject = %p.probe_subject, "publishing to the JetStream stream that covers our subjects");
                self.announced = Some(name);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    jetstream::context::GetStreamByNameErrorKind::NotFound
                ) =>
            {
                self.js
                    .create_stream(jetstream::stream::Config {
                        name: p.stream.clone(),
                        subjects: vec![p.stream_subjects.clone()],
                        max_age: p.max_age,
                        max_bytes: if p.max_bytes == 0 {
                            -1
                        } else {
                            p.max_bytes as i64
                        },
                        num_replicas: p.replicas,
                        storage: jetstream::stream::StorageType::File,
                        duplicate_window: Duration::from_secs(120),
                        ..Default::default()
                    })
                    .await?;
                tracing::info!(stream = %p.stream, subjects = %p.stream_subjects, replicas = p.replicas, "created the JetStream stream");
                self.announced = Some(p.stream.clone());
            }
            Err(e) => return Err(e.into()),
        }
        if self.js.get_key_value(p.bucket.clone()).await.is_err() {
            // The bucket's stream as the client library would make it (`KV_<bucket>`,
            // one value per key, roll-ups allowed, direct gets), created directly:
            // `create_key_value` first asks for account details in a shape Debian's
            // nats-server 2.9 does not answer in.
            self.js
                .create_stream(jetstream::stream::Config {
                    name: format!("KV_{}", p.bucket),
                    description: Some("kettlewatch: each sensor's devices, latest profile".into()),
                    subjects: vec![format!("$KV.{}.>", p.bucket)],
                    max_messages_per_subject: 1,
                    max_bytes: -1,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: p.replicas,
                    allow_rollup: true,
                    deny_delete: true,
                    allow_direct: true,
                    discard: jetstream::stream::DiscardPolicy::New,
                    duplicate_window: Duration::from_secs(120),
                    ..Default::default()
                })
                .await?;
            tracing::info!(bucket = %p.bucket, "created the device key-value bucket");
        }
        Ok(())
    }

    /// Waits up to `d`, or until new lines are spooled.
    async fn idle(&self, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.shared.wake.notified() => {}
        }
    }

    /// A failure: counted, said once until publishing works again.
    fn fail(&mut self, e: &dyn std::fmt::Display) {
        self.shared.errors.fetch_add(1, Ordering::Relaxed);
        if !self.failing {
            tracing::warn!(
                error = %e,
                spooled = self.lines(),
                "NATS publishing failed; lines wait in the spool and go out in order when the broker takes them (nats errors)"
            );
            self.failing = true;
        }
    }

    fn publish_state(&self) {
        let s = &self.shared;
        {
            let spool = self.spool.lock().expect("spool lock");
            s.spooled_lines.store(spool.lines(), Ordering::Relaxed);
            s.spooled_bytes.store(spool.bytes(), Ordering::Relaxed);
        }
        s.connected.store(
            self.client.connection_state() == async_nats::connection::State::Connected,
            Ordering::Relaxed,
        );
    }
}

/// Takes lines from the queue into the spool as they come, in batches (one transaction
/// each), until the sensor closes the queue.
pub(super) async fn intake(
    mut rx: Receiver<super::spool::Line>,
    spool: Arc<Mutex<Spool>>,
    shared: Arc<Shared>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(l) => batch.push(l),
                Err(_) => break,
            }
        }
        let appended = {
            let mut spool = spool.lock().expect("spool lock");
            let r = spool.append(&batch);
            shared.spooled_lines.store(spool.lines(), Ordering::Relaxed);
            shared.spooled_bytes.store(spool.bytes(), Ordering::Relaxed);
            r
        };
        match appended {
            Ok(0) => {}
            Ok(n) => {
                if shared.spool_full.fetch_add(n, Ordering::Relaxed) == 0 {
                    tracing::warn!(
                        "NATS spool full: newest lines dropped (counted as nats spool_full)"
                    );
                }
            }
            Err(e) => {
                shared
                    .spool_full
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                shared.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, lost = batch.len(), "NATS spool write failed; these lines are lost (counted as nats spool_full)");
            }
        }
        shared.wake.notify_one();
    }
    shared.intake_done.store(true, Ordering::Release);
    shared.wake.notify_one();
}
