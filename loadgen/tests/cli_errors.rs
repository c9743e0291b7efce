//! Bad input ends with one clear line on stderr and exit code 2, never a panic; help
//! and `scenario list` succeed.

mod common;

use std::time::Duration;

use common::{loadgen, unused_port, Output};

const DEADLINE: Duration = Duration::from_secs(30);

/// Exit 2 with exactly one line on stderr that mentions `needle`, no panic or backtrace.
#[track_caller]
fn assert_one_line_error(args: &[&str], needle: &str) -> Output {
    let out = loadgen(args, DEADLINE);
    assert_eq!(out.code(), 2, "loadgen {args:?}: {out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "loadgen {args:?}: stderr must be one line, got:\n{}",
        out.stderr
    );
    let line = lines[0];
    assert!(line.starts_with("error: "), "loadgen {args:?}: {line}");
    assert!(
        line.contains(needle),
        "loadgen {args:?}: {line:?} does not mention {needle:?}"
    );
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(
            !out.stderr.contains(bad),
            "loadgen {args:?}: {}",
            out.stderr
        );
    }
    out
}

/// A URL that parses and resolves but that no run in this file reaches: validation
/// errors must come before any connect.
fn url() -> String {
    format!("http://127.0.0.1:{}/", unused_port())
}

#[test]
fn run_refuses_a_url_that_is_not_one() {
    assert_one_line_error(&["run", "notaurl"], "http://");
}

#[test]
fn run_refuses_https() {
    assert_one_line_error(&["run", "https://127.0.0.1:8443/"], "https");
}

#[test]
fn run_refuses_zero_connections() {
    assert_one_line_error(&["run", &url(), "-c", "0"], "--connections 0");
}

#[test]
fn run_refuses_rate_with_pipelining() {
    assert_one_line_error(
        &["run", &url(), "--rate", "100", "--pipeline", "4"],
        "--pipeline",
    );
}

#[test]
fn run_reports_an_unreachable_server_in_one_line() {
    let port = unused_port();
    let url = format!("http://127.0.0.1:{port}/");
    let out = assert_one_line_error(&["run", &url, "-d", "1s"], "cannot connect");
    assert!(out.stderr.contains(&port.to_string()), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "no results for a run that never ran");
}

#[test]
fn run_refuses_an_unknown_duration_unit() {
    assert_one_line_error(&["run", &url(), "-d", "5parsecs"], "--duration");
}

#[test]
fn run_refuses_duration_with_requests() {
    assert_one_line_error(
        &["run", &url(), "--duration", "1s", "--requests", "100"],
        "--requests",
    );
}

#[test]
fn scenario_refuses_an_unknown_name() {
    assert_one_line_error(&["scenario", "no.such.scenario"], "loadgen scenario list");
}

#[test]
fn scenario_refuses_zero_slack() {
    assert_one_line_error(&["scenario", "--slack", "0", "pause-accept"], "--slack");
}

#[test]
fn scenario_refuses_an_unknown_fault() {
    // Without the faults build any fault is refused; with it, this name is unknown.
    let needle = if cfg!(feature = "faults") {
        "unknown fault"
    } else {
        "faults"
    };
    assert_one_line_error(&["scenario", "--fault", "x", "pause-accept"], needle);
}

#[test]
fn clap_usage_errors_exit_2_without_a_panic() {
    // clap's own errors (unknown flag, bad number) are several lines (error, usage,
    // hint); only the exit code and the absence of a panic are ours to hold.
    for args in [
        &["run", "http://127.0.0.1:1/", "--no-such-flag"][..],
        &["run", "http://127.0.0.1:1/", "-c", "many"][..],
        &["run"][..],
        &["frobnicate"][..],
    ] {
        let out = loadgen(args, DEADLINE);
        assert_eq!(out.code(), 2, "loadgen {args:?}: {out:?}");
        assert!(
            out.stderr.starts_with("error: "),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    }
}

#[test]
fn scenario_list_names_the_scenarios() {
    let out = loadgen(&["scenario", "list"], DEADLINE);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("accept.pause.drain-fin ")),
        "{}",
        out.stdout
    );
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

#[test]
fn help_shows_examples() {
    for (args, example) in [
        (&["--help"][..], "run"),
        (&["run", "--help"][..], "loadgen run http://127.0.0.1:8080/"),
        (&["scenario", "--help"][..], "loadgen scenario list"),
    ] {
        let out = loadgen(args, DEADLINE);
        assert_eq!(out.code(), 0, "loadgen {args:?}: {out:?}");
        assert!(
            out.stdout.contains(example),
            "loadgen {args:?} does not show {example:?}:\n{}",
            out.stdout
        );
    }
    let run_help = loadgen(&["run", "--help"], DEADLINE);
    assert!(run_help.stdout.contains("Examples:"), "{}", run_help.stdout);
}
