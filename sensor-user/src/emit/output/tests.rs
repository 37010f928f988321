//! Unit tests of the output: sockets, rotation, a stalled sink, a full queue.
use super::*;
use std::sync::Mutex;

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A sink that blocks until released, like a reader that stopped reading.
struct Stalled(Arc<Mutex<()>>);

impl Write for Stalled {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let _g = self.0.lock().unwrap();
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A shipper listening on a Unix socket: lines arrive; it goes away: lines are counted
/// as errors and the sensor goes on; it comes back: lines arrive again.
#[test]
fn a_unix_socket_sink_survives_its_reader_going_away() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;
    let dir = std::env::temp_dir().join(format!("kw-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("eve.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut out = Output::open(&format!("unix:{}", path.display()), 16).unwrap();
    out.write(&serde_json::json!({"n": 1}));
    out.flush();
    let (conn, _) = listener.accept().unwrap();
    let mut lines = BufReader::new(conn.try_clone().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), r#"{"n":1}"#);
    // The shipper goes away.
    drop(lines);
    drop(conn);
    drop(listener);
    std::fs::remove_file(&path).unwrap();
    for n in 2..6 {
        out.write(&serde_json::json!({ "n": n }));
        out.flush();
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(out.errors() >= 1, "lost lines are counted");
    // It comes back; after the retry delay lines flow again.
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::sleep(RETRY + Duration::from_millis(50));
    out.write(&serde_json::json!({"n": 9}));
    out.flush();
    let (conn, _) = listener.accept().unwrap();
    let mut lines = BufReader::new(conn).lines();
    assert_eq!(lines.next().unwrap().unwrap(), r#"{"n":9}"#);
    drop(out);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// logrotate without copytruncate: the file is moved, the sensor told to reopen, and
/// later lines go to a new file at the same path; nothing is lost or doubled.
#[test]
fn a_moved_file_is_opened_again_by_path_on_reopen() {
    let dir = std::env::temp_dir().join(format!("kw-reopen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("eve.json");
    let rotated = dir.join("eve.json.1");
    let mut out = Output::open(path.to_str().unwrap(), 16).unwrap();
    out.write(&serde_json::json!({"n": 1}));
    out.flush();
    std::thread::sleep(Duration::from_millis(150));
    std::fs::rename(&path, &rotated).unwrap();
    out.write(&serde_json::json!({"n": 2}));
    out.flush();
    std::thread::sleep(Duration::from_millis(150));
    out.reopen();
    std::thread::sleep(Duration::from_millis(150));
    out.write(&serde_json::json!({"n": 3}));
    drop(out);
    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = std::fs::read_to_string(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        old, "{\"n\":1}\n{\"n\":2}\n",
        "before the reopen: the moved file"
    );
    assert_eq!(new, "{\"n\":3}\n", "after it: a new file at the path");
    assert_eq!(mode, 0o600);
}

#[test]
fn every_line_is_written_by_drop() {
    let buf = Shared::default();
    let mut o = Output::from_writer(Box::new(buf.clone()), 16);
    for i in 0..10 {
        o.write(&serde_json::json!({ "n": i }));
    }
    drop(o);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.lines().count(), 10);
    assert_eq!(text.lines().last(), Some("{\"n\":9}"));
}

#[test]
fn waiting_when_full_loses_nothing() {
    let buf = Shared::default();
    let mut o = Output::from_writer(Box::new(buf.clone()), 1).wait_when_full();
    for i in 0..1000 {
        o.write(&serde_json::json!({ "n": i }));
    }
    assert_eq!(o.dropped(), 0);
    drop(o);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.lines().count(), 1000);
}

#[test]
fn a_stalled_sink_drops_and_counts_instead_of_blocking() {
    let gate = Arc::new(Mutex::new(()));
    let mut o = Output::from_writer(Box::new(Stalled(gate.clone())), 4);
    // Declared after `o`, so a failed assertion releases the sink before `o` joins
    // its writer.
    let held = gate.lock().unwrap();
    // Lines larger than the writer's buffer go straight to the (stalled) sink.
    let pad = "x".repeat(16 * 1024);
    let start = std::time::Instant::now();
    for i in 0..100 {
        o.write(&serde_json::json!({ "n": i, "pad": pad }));
        o.flush();
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "write never blocks"
    );
    // At most 4 queued and 1 in the writer's hands; the rest dropped and counted.
    assert!(o.dropped() >= 95, "{}", o.dropped());
    drop(held);
}

#[test]
fn lines_wait_for_flush_and_go_out_in_batches() {
    let buf = Shared::default();
    let mut o = Output::from_writer(Box::new(buf.clone()), 1024);
    o.write(&serde_json::json!({"n": 0}));
    std::thread::sleep(Duration::from_millis(120));
    assert!(buf.0.lock().unwrap().is_empty(), "not flushed yet");
    o.flush();
    // The writer writes it and, the queue dry, flushes its buffer within ~50 ms.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while buf.0.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap(),
        "{\"n\":0}\n"
    );
    // A full batch goes without a flush.
    for i in 1..=BATCH_LINES {
        o.write(&serde_json::json!({ "n": i }));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while o.lines() < 1 + BATCH_LINES as u64 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(o.lines(), 1 + BATCH_LINES as u64);
}
