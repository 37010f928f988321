//! Live mode's poll reads on their own thread: walking a large flow map takes hundreds
//! of milliseconds, and on the event loop every alert that arrived meanwhile would wait
//! for it. The loop asks for a read at each tick and applies the answer when it comes.

use std::sync::{Arc, mpsc};

use tokio::sync::mpsc as async_mpsc;

use crate::{engine::sensor::PollRead, kernel::maps::KernelMaps};

/// The thread that reads the maps, and the way its reads come back.
pub struct MapReader {
    ask: Option<mpsc::Sender<u64>>,
    /// Reads, in the order they were asked for.
    pub reads: async_mpsc::Receiver<PollRead>,
    /// A read was asked for and has not come back: the next tick does not ask again, so
    /// a slow read delays polls instead of queueing them.
    pub busy: bool,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MapReader {
    /// Starts the thread. Call it after privileges are dropped, so the thread starts
    /// with none (capabilities and no_new_privs are per thread).
    pub fn start(maps: Arc<KernelMaps>) -> std::io::Result<Self> {
        let (ask, asked) = mpsc::channel::<u64>();
        let (tx, reads) = async_mpsc::channel(1);
        let thread = std::thread::Builder::new()
            .name("kw-map-reader".into())
            .spawn(move || {
                while let Ok(now_ns) = asked.recv() {
                    if tx.blocking_send(PollRead::read(&maps, now_ns)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Self {
            ask: Some(ask),
            reads,
            busy: false,
            thread: Some(thread),
        })
    }

    /// Asks for a read at `now_ns` unless one is under way.
    pub fn ask(&mut self, now_ns: u64) {
        if self.busy {
            return;
        }
        if let Some(a) = &self.ask
            && a.send(now_ns).is_ok()
        {
            self.busy = true;
        }
    }

    /// Stops the thread and waits for it; a read under way is finished and discarded.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.ask = None;
        self.reads.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MapReader {
    fn drop(&mut self) {
        self.shutdown();
    }
}
