//! Replays recorded control-protocol sessions (`fixtures/control-session.jsonl`, a
//! `LOADGEN_CONTROL_TRACE` transcript: `> ` lines the harness sent, `< ` lines it
//! received) against `loadgen serve --control`, and checks every answer against the
//! recorded one. Values that differ by nature between runs (ports, thread ids, the pid)
//! are masked. A session starts at each recorded hello; each is replayed against a
//! fresh target process.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/control-session.jsonl"
);

/// Keys whose values are not reproducible, at any depth (`migrates_listener_queue` is
/// the host's `net.ipv4.tcp_migrate_req`).
const MASKED: [&str; 5] = ["addr", "thread_id", "tid", "pid", "migrates_listener_queue"];

fn mask(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if MASKED.contains(&k.as_str()) {
                    *x = Value::String("*".into());
                } else {
                    mask(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask),
        _ => {}
    }
}

fn parse(line: &str) -> Value {
    let mut v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    mask(&mut v);
    v
}

/// One transcript line: `>` or `<`, the instance's number (absent in transcripts
/// recorded before the trace marked instances), a space, the message.
fn transcript_line(line: &str) -> (bool, Option<u64>, &str) {
    let sent = match line.as_bytes().first() {
        Some(b'>') => true,
        Some(b'<') => false,
        _ => panic!("bad transcript line {line:?}"),
    };
    let (mark, msg) = line[1..]
        .split_once(' ')
        .unwrap_or_else(|| panic!("bad transcript line {line:?}"));
    let instance = (!mark.is_empty()).then(|| {
        mark.parse()
            .unwrap_or_else(|_| panic!("bad instance mark in {line:?}"))
    });
    (sent, instance, msg)
}

/// The fixture's sessions, each a list of (sent?, message): one per instance where
/// lines are marked (interleaved instances come apart), else one per hello.
fn sessions() -> Vec<Vec<(bool, String)>> {
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let mut out: Vec<Vec<(bool, String)>> = Vec::new();
    let mut by_instance: std::collections::HashMap<u64, usize> = Default::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (sent, instance, msg) = transcript_line(line);
        let at = match instance {
            Some(i) => *by_instance.entry(i).or_insert_with(|| {
                out.push(Vec::new());
                out.len() - 1
            }),
            None => {
                if !sent && msg.contains("\"hello\"") {
                    out.push(Vec::new());
                }
                out.len()
                    .checked_sub(1)
                    .expect("the transcript starts with a hello")
            }
        };
        out[at].push((sent, msg.to_string()));
    }
    out
}

#[test]
fn transcript_lines_read_with_and_without_instance_marks() {
    assert_eq!(transcript_line("> {}"), (true, None, "{}"));
    assert_eq!(
        transcript_line("<12 {\"a\": 1}"),
        (false, Some(12), "{\"a\": 1}")
    );
}

fn replay(session: &[(bool, String)], n: usize) {
    let path = std::env::temp_dir().join(format!("replay-{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["serve", "--control"])
        .env("LOADGEN_CONTROL", &path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (stream, _) = listener.accept().unwrap();
    let _ = std::fs::remove_file(&path);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut read = || {
        let mut line = String::new();
        reader.read_line(&mut line).expect("an answer within 30 s");
        assert!(!line.is_empty(), "the target closed the socket");
        parse(line.trim_end())
    };
    let started = Instant::now();
    let mut answered = 0;
    for (sent, msg) in session {
        if *sent {
            writer.write_all(msg.as_bytes()).unwrap();
            writer.write_all(b"\n").unwrap();
        } else {
            let want = parse(msg);
            let got = read();
            assert_eq!(got, want, "session {n}: answer {answered} differs");
            answered += 1;
        }
    }
    // The target exits when the harness closes the socket.
    writer.shutdown(std::net::Shutdown::Both).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < end, "the target did not exit after EOF");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(answered >= 2, "session {n} has no answers");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn recorded_sessions_replay_with_the_same_answers() {
    let all = sessions();
    assert!(all.len() >= 2, "the fixture holds {} sessions", all.len());
    let mut ops = std::collections::BTreeSet::new();
    for (n, s) in all.iter().enumerate() {
        for (sent, msg) in s {
            if *sent {
                if let Some(op) = parse(msg).get("op").and_then(Value::as_str) {
                    ops.insert(op.to_string());
                }
            }
        }
        replay(s, n);
    }
    // The fixture exercises the lifecycle, accept and worker control, selection and
    // metrics (the driver ops are covered by the scenarios run through the protocol).
    for op in [
        "start",
        "pause_accept",
        "resume_accept",
        "accept_paused",
        "worker_loop",
        "worker_state",
        "shutdown",
    ] {
        assert!(ops.contains(op), "the fixture never sends {op}: {ops:?}");
    }
}

#[test]
fn a_request_the_target_does_not_know_is_a_bad_request() {
    let session = vec![
        (
            false,
            r#"{"hello":"loadgen-control","version":1,"target":"reference engine (loadgen serve --control)","capabilities":["http","config","test-routes","accept-control","shared-port","worker-control","selection","driver","metrics","lifecycle","process"],"pid":1}"#.to_string(),
        ),
        (true, r#"{"id":1,"op":"fly"}"#.to_string()),
        (
            false,
            r#"{"id":1,"error":{"kind":"bad-request","message":"unknown op \"fly\""}}"#.to_string(),
        ),
        (true, r#"{"id":2,"op":"metrics"}"#.to_string()),
        (
            false,
            r#"{"id":2,"error":{"kind":"not-listening","message":"the engine is not listening: call listen() first"}}"#.to_string(),
        ),
        (
            true,
            r#"{"id":3,"op":"start","config":{"workers":1,"max_headers":5},"tag":""}"#.to_string(),
        ),
        (
            false,
            r#"{"id":3,"error":{"kind":"bad-request","message":"config.max_headers: unknown setting"}}"#.to_string(),
        ),
    ];
    replay(&session, 999);
}
