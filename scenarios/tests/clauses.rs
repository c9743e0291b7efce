//! Every clause's check against the reference engine: each must pass (SHOULD clauses
//! may be non-strict only where `ci/expectations.tsv` says so).

use scenarios::{find, Ctx};

/// The verdicts `ci/expectations.tsv` allows for `id` (default: pass only). The file
/// is checked as `loadgen scenario --expect` checks it: known IDs, known verdicts, a
/// reason for every deviation.
fn allowed(id: &str) -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/expectations.tsv");
    let text = std::fs::read_to_string(path).expect("ci/expectations.tsv is readable");
    let expectations =
        reports::scenarios::Expectations::parse("ci/expectations.tsv", &text, |lid| {
            find(lid).is_some()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    expectations
        .allowed(id)
        .iter()
        .map(|v| v.name().to_string())
        .collect()
}

fn run(id: &str) {
    let scenario = find(id).unwrap_or_else(|| panic!("no scenario {id}"));
    let outcome = scenario.run(&Ctx::default());
    let verdict = outcome.verdict.to_string();
    let ok = allowed(id);
    assert!(
        ok.contains(&verdict),
        "{id}: verdict {verdict}, expected {ok:?}: {}\nfailures: {:#?}\nexpected: {:#?}\nactual: {:#?}",
        scenario.clause.text,
        outcome.failures,
        outcome.expected,
        outcome.actual
    );
}

macro_rules! clauses {
    ($($name:ident => $id:literal,)*) => {
        $(#[test] fn $name() { run($id) })*

        #[test]
        fn every_registered_scenario_has_a_test() {
            let tested = [$($id),*];
            for s in scenarios::registry() {
                assert!(tested.contains(&s.clause.id), "{} has no test", s.clause.id);
            }
            assert_eq!(tested.len(), scenarios::registry().len());
        }
    };
}

clauses! {
    engine_new_validate => "engine.new.validate",
    engine_listen_bind => "engine.listen.bind",
    engine_listen_addr => "engine.listen.addr",
    engine_listen_blocks => "engine.listen.blocks",
    engine_type => "engine.type",
    engine_workers_count => "engine.workers.count",
    engine_metrics => "engine.metrics",
    engine_shutdown_graceful => "engine.shutdown.graceful",
    accept_pause_sync => "accept.pause.sync",
    accept_pause_drain_fin => "accept.pause.drain-fin",
    accept_pause_zero_loss => "accept.pause.zero-loss",
    accept_pause_handover => "accept.pause.handover",
    accept_pause_handover_race => "accept.pause.handover-race",
    accept_pause_keep_serving => "accept.pause.keep-serving",
    accept_pause_idempotent => "accept.pause.idempotent",
    accept_no_deferred => "accept.no-deferred",
    accept_resume => "accept.resume",
    accept_backlog_drain => "accept.backlog-drain",
    worker_pause_async => "worker.pause.async",
    worker_pause_routing => "worker.pause.routing",
    worker_suspended_idle => "worker.suspended.idle",
    worker_resume => "worker.resume",
    worker_index => "worker.index",
    worker_drivers_serviced => "worker.drivers-serviced",
    select_modulo => "select.modulo",
    select_mirror => "select.mirror",
    select_before_listen => "select.before-listen",
    select_stable => "select.stable",
    loop_cpuid => "loop.cpuid",
    driver_register => "driver.register",
    driver_recv => "driver.recv",
    driver_unregister => "driver.unregister",
    driver_close_callback => "driver.close-callback",
    driver_write_unknown => "driver.write.unknown",
    driver_write_queue_full => "driver.write.queue-full",
    driver_write_no_loss => "driver.write.no-loss",
    driver_write_inline_once => "driver.write.inline-once",
    driver_write_concurrent => "driver.write.concurrent",
    driver_no_sigpipe => "driver.no-sigpipe",
    http_keepalive => "http.keepalive",
    http_pipelining => "http.pipelining",
    http_split_anywhere => "http.split-anywhere",
    http_framing => "http.framing",
    http_errors => "http.errors",
    http_expect_continue => "http.expect-continue",
    http_head => "http.head",
    http_large_response => "http.large-response",
    http_slow_reader => "http.slow-reader",
    http_timeouts => "http.timeouts",
    http_date => "http.date",
}
