//! Negative controls: with each fault of `ci/fault-matrix.tsv` injected, every
//! scenario the matrix names must fail. A scenario that cannot fail is a defect.
#![cfg(feature = "faults")]

use engine::faults::Fault;
use scenarios::{find, Ctx, Verdict};

fn matrix() -> Vec<(Fault, Vec<String>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/fault-matrix.tsv");
    let text = std::fs::read_to_string(path).expect("ci/fault-matrix.tsv is readable");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, ids) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("bad matrix line {l:?}"));
            let fault = Fault::from_name(name).unwrap_or_else(|| panic!("unknown fault {name:?}"));
            // `-`: a performance-only fault, no clause to fail.
            let ids = if ids.trim() == "-" {
                Vec::new()
            } else {
                ids.split(',').map(|s| s.trim().to_string()).collect()
            };
            (fault, ids)
        })
        .collect()
}

fn caught(fault: Fault) {
    let m = matrix();
    let (_, ids) = m
        .iter()
        .find(|(f, _)| *f == fault)
        .unwrap_or_else(|| panic!("{} is not in the matrix", fault.name()));
    assert!(!ids.is_empty(), "{}: no clause to fail", fault.name());
    for id in ids {
        let s = find(id).unwrap_or_else(|| panic!("matrix names unknown scenario {id}"));
        let ctx = Ctx {
            fault: Some(fault),
            ..Ctx::default()
        };
        let o = s.run(&ctx);
        assert!(
            matches!(o.verdict, Verdict::Fail | Verdict::NonStrict),
            "fault {} was not caught by {id}: verdict {}\nactual: {:#?}",
            fault.name(),
            o.verdict,
            o.actual
        );
    }
}

#[test]
fn matrix_covers_every_fault_and_every_clause() {
    let m = matrix();
    for f in Fault::ALL {
        let row = m.iter().find(|(g, _)| g == f);
        let Some((_, ids)) = row else {
            panic!("fault {} has no row", f.name())
        };
        // Only a performance-only fault may name no clause (`-`), and it must.
        assert_eq!(
            ids.is_empty(),
            f.is_performance_only(),
            "fault {}: clause IDs {ids:?}, performance-only {}",
            f.name(),
            f.is_performance_only()
        );
    }
    for s in scenarios::registry() {
        assert!(
            m.iter()
                .any(|(_, ids)| ids.iter().any(|i| i == s.clause.id)),
            "no fault shows that {} can fail",
            s.clause.id
        );
    }
}

macro_rules! faults {
    ($($name:ident => $fault:ident,)*) => {
        $(#[test] fn $name() { caught(Fault::$fault) })*
    };
}

faults! {
    no_validation => NoValidation,
    ephemeral_port_per_worker => EphemeralPortPerWorker,
    leak_event_fd => LeakEventFd,
    type_unknown_before_listen => TypeUnknownBeforeListen,
    worker_count_from_config => WorkerCountFromConfig,
    metrics_miss_pipelined => MetricsMissPipelined,
    shutdown_aborts => ShutdownAborts,
    close_without_drain => CloseWithoutDrain,
    async_pause => AsyncPause,
    skip_drain_when_migrating => SkipDrainWhenMigrating,
    drain_drops_requests => DrainDropsRequests,
    defer_accept => DeferAccept,
    resume_without_relisten => ResumeWithoutRelisten,
    strand_backlog => StrandBacklog,
    pause_closes_connections => PauseClosesConnections,
    pause_not_idempotent => PauseNotIdempotent,
    sync_worker_pause => SyncWorkerPause,
    paused_worker_keeps_listening => PausedWorkerKeepsListening,
    spin_while_suspended => SpinWhileSuspended,
    suspended_timer_wakeup => SuspendedTimerWakeup,
    async_resume => AsyncResume,
    resume_clears_worker_pause => ResumeClearsWorkerPause,
    accepted_reset_on_pause => AcceptedResetOnPause,
    drain_not_counted => DrainNotCounted,
    resume_ignores_engine_pause => ResumeIgnoresEnginePause,
    ignore_bad_worker_index => IgnoreBadWorkerIndex,
    paused_ignores_drivers => PausedIgnoresDrivers,
    euclidean_select => EuclideanSelect,
    rotating_select => RotatingSelect,
    try_worker_loop_panics => TryWorkerLoopPanics,
    cpu_id_when_pin_failed => CpuIdWhenPinFailed,
    accept_blocking_fd => AcceptBlockingFd,
    truncate_recv => TruncateRecv,
    unregister_closes_fd => UnregisterClosesFd,
    reset_as_clean => ResetAsClean,
    write_any_worker => WriteAnyWorker,
    cap_off_by_one => CapOffByOne,
    queue_full_drops_queue => QueueFullDropsQueue,
    inline_write_loop => InlineWriteLoop,
    split_locked_write => SplitLockedWrite,
    sigpipe_write => SigpipeWrite,
    keep_alive_http10 => KeepAliveHttp10,
    pipeline_drops_rest => PipelineDropsRest,
    short_first_fragment => ShortFirstFragment,
    chunked_split_rejected => ChunkedSplitRejected,
    content_length_wins => ContentLengthWins,
    header_too_large_is400 => HeaderTooLargeIs400,
    error_close_without_drain => ErrorCloseWithoutDrain,
    no_continue => NoContinue,
    head_with_body => HeadWithBody,
    truncate_large_response => TruncateLargeResponse,
    slow_reader_spin => SlowReaderSpin,
    no_idle_timeout => NoIdleTimeout,
    no_date_header => NoDateHeader,
    chunked_redecode => ChunkedRedecode,
    head_rescan => HeadRescan,
    unlimited_trailers => UnlimitedTrailers,
    whole_uri_routing => WholeUriRouting,
    request_line_too_long_is431 => RequestLineTooLongIs431,
    chunk_size_sign => ChunkSizeSign,
    chunk_size_wraps => ChunkSizeWraps,
    chunked_not_final => ChunkedNotFinal,
    connection_case_sensitive => ConnectionCaseSensitive,
    no_keep_alive_header => NoKeepAliveHeader,
    body_limit_off_by_one => BodyLimitOffByOne,
    no_input_budget => NoInputBudget,
    no_body_timeout => NoBodyTimeout,
    idle_timeout_doubled => IdleTimeoutDoubled,
    header_timer_not_restarted => HeaderTimerNotRestarted,
}

/// `hostile.emfile` lowers the target process's descriptor limit, which in process
/// would starve the scenarios running beside it: it runs only out of process, where
/// `loadgen/tests/remote_negative_controls.rs` shows that it catches `spin-on-emfile`.
/// In process it must say so (skipped), never pass.
#[test]
fn spin_on_emfile_is_for_the_out_of_process_run() {
    let s = find("hostile.emfile").expect("hostile.emfile is registered");
    let ctx = Ctx {
        fault: Some(Fault::SpinOnEmfile),
        ..Ctx::default()
    };
    let o = s.run(&ctx);
    assert!(
        matches!(&o.verdict, Verdict::Skipped(why) if why.contains("out of process")),
        "hostile.emfile in process: verdict {}",
        o.verdict
    );
}
