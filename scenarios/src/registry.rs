//! The table of scenarios: one entry per clause of `SPEC-engine.md`, in its order,
//! with everything known about the scenario (aliases, capabilities, RST policy, check).

use crate::checks::{accept, driver, engine_api, exhaust, hostile, http, migrate, select, worker};
use crate::outcome::Level;
use crate::scenario::{Clause, HostRsts, Scenario};
use crate::targets::Capability;

const fn clause(id: &'static str, level: Level, text: &'static str) -> Clause {
    Clause { id, level, text }
}

use Capability::{
    AcceptControl, Config, Driver, Http, Lifecycle, Metrics, Process, Selection, SharedPort,
    TestRoutes, WorkerControl,
};
use HostRsts::{Forbidden, Reported};
use Level::{Must, Should};

/// Every scenario, in the order of `SPEC-engine.md`.
pub fn registry() -> Vec<Scenario> {
    let s = |clause: Clause,
             aliases: &'static [&'static str],
             needs: &'static [Capability],
             check| Scenario {
        clause,
        aliases,
        needs,
        host_rsts: HostRsts::NotCounted,
        check,
    };
    vec![
        // 1. Engine
        s(clause("engine.new.validate", Must, "Engine::new validates the config and returns a typed error naming the bad field; nothing is bound or spawned on error."), &["engine"], &[Config, Lifecycle, Process], engine_api::new_validate),
        s(clause("engine.listen.bind", Must, "One SO_REUSEPORT listen socket per worker, all on one port; with port 0 every worker binds the port the first bind picked."), &["engine"], &[Config, TestRoutes, Metrics, Process], engine_api::listen_bind),
        s(clause("engine.listen.addr", Must, "addr() is None before the engine listens and the bound address (real port) once every worker listens."), &["engine"], &[Config, Lifecycle, Process], engine_api::listen_addr),
        s(clause("engine.listen.blocks", Must, "listen blocks until shutdown and returns once every worker thread has exited and every fd the engine opened is closed."), &["engine"], &[Config, Lifecycle, Process], engine_api::listen_blocks),
        s(clause("engine.type", Must, "engine_type() is EngineType::Epoll, displayed as epoll."), &["engine"], &[Config, Lifecycle], engine_api::engine_type),
        s(clause("engine.workers.count", Must, "num_workers() is 0 before listening and N once listening."), &["engine"], &[Config, Lifecycle], engine_api::workers_count),
        s(clause("engine.metrics", Must, "metrics() is a snapshot (requests, connections, bytes, per-worker state and accepted), monotonic across pause, resume, pause_worker and a drain (drained connections count as accepted); a served response is visible within 50 ms."), &["engine"], &[Config, TestRoutes, Metrics, AcceptControl, WorkerControl], engine_api::metrics),
        s(clause("engine.shutdown.graceful", Must, "shutdown(deadline) stops accepting, lets in-flight requests finish and flush, closes idle keep-alive connections with FIN, then listen returns."), &["engine"], &[Config, TestRoutes], engine_api::shutdown_graceful).host_rsts(Reported),
        // 2. Accept control
        s(clause("accept.pause.sync", Must, "pause_accept() returns only after every worker closed its listen socket; a connect() right after is refused and never accepted."), &["pause-accept"], &[Config, TestRoutes, AcceptControl], accept::pause_sync),
        s(clause("accept.pause.drain-fin", Must, "Connections queued when the listen socket closes are accepted and closed with FIN, never RST; a client write up to 1 s after EOF draws no RST."), &["pause-accept"], &[Config, TestRoutes, AcceptControl], accept::pause_drain_fin).host_rsts(Forbidden),
        s(clause("accept.pause.zero-loss", Should, "A drained connection whose complete request is buffered gets its response, with connection: close, before the FIN."), &["pause-accept"], &[Config, TestRoutes, AcceptControl], accept::pause_zero_loss).host_rsts(Forbidden),
        s(clause("accept.pause.handover", Must, "Two engines share a port; while a client dials, pause_accept() on one: every later dial is served by the other, no dial is answered with RST."), &["pause-accept"], &[Config, TestRoutes, AcceptControl, SharedPort], accept::pause_handover).host_rsts(Reported),
        s(clause("accept.pause.handover-race", Should, "The handover under a dial storm across 100 pause/resume cycles: zero RSTs (count reported per 10,000 dials)."), &["pause-accept"], &[Config, TestRoutes, AcceptControl, SharedPort], accept::pause_handover_race).host_rsts(Reported),
        s(clause("accept.pause.keep-serving", Must, "Connections accepted before the pause keep being served (keep-alive continues) until they close."), &["pause-accept"], &[Config, TestRoutes, AcceptControl], accept::pause_keep_serving).host_rsts(Reported),
        s(clause("accept.pause.idempotent", Must, "A second pause_accept() while paused returns Ok at once and changes nothing."), &["pause-accept"], &[Config, TestRoutes, AcceptControl], accept::pause_idempotent),
        s(clause("accept.no-deferred", Must, "TCP_DEFER_ACCEPT is off by default: a handshake-complete connection that sent nothing is drained with FIN, not reset."), &["pause-accept"], &[Config, TestRoutes, AcceptControl], accept::no_deferred).host_rsts(Forbidden),
        s(clause("accept.resume", Must, "resume_accept() returns only after every worker not paused on its own listens again (it waits for a busy worker); a connect() right after succeeds and is served; a worker paused on its own stays non-listening until resume_worker."), &["pause-accept"], &[Config, TestRoutes, AcceptControl, WorkerControl], accept::resume),
        s(clause("accept.backlog-drain", Must, "A burst of more queued connections than one accept batch (1,000) is fully accepted without waiting for another connection."), &["pause-accept"], &[Config, TestRoutes, AcceptControl], accept::backlog_drain),
        // 3. Worker control
        s(clause("worker.pause.async", Must, "pause_worker(i) returns at once; worker i drains its listen socket, keeps serving (Draining) and is Suspended when it has no connections."), &["suspend-resume"], &[Config, TestRoutes, WorkerControl], worker::pause_async),
        s(clause("worker.pause.routing", Must, "Once worker i's listen socket is closed it accepts nothing new; the other workers take all new connections."), &["suspend-resume"], &[Config, TestRoutes, WorkerControl], worker::pause_routing),
        s(clause("worker.suspended.idle", Must, "A suspended worker does not spin or poll: its thread's CPU time does not advance and it makes no wakeup at all (watched 3 s by context switches)."), &["suspend-resume"], &[Config, TestRoutes, WorkerControl, Selection], worker::suspended_idle),
        s(clause("worker.resume", Must, "resume_worker(i) wakes a suspended worker, which listens and accepts again; while accept is paused engine-wide it stays non-listening until resume_accept()."), &["suspend-resume"], &[Config, TestRoutes, WorkerControl, AcceptControl], worker::resume),
        s(clause("worker.index", Must, "An out-of-range worker index returns Err(NoSuchWorker); nothing panics."), &["suspend-resume"], &[Config, WorkerControl], worker::index),
        s(clause("worker.drivers-serviced", Must, "A paused or draining worker keeps servicing its driver connections and does not suspend until they are unregistered."), &["suspend-resume"], &[Config, TestRoutes, WorkerControl, Selection, Driver], worker::drivers_serviced),
        // 4. Worker selection
        s(clause("select.modulo", Must, "worker_loop(n) for n >= 0 is worker n mod N, for n in 0..10N and i64::MAX."), &["modulo"], &[Config, Selection], select::modulo),
        s(clause("select.mirror", Must, "Negative n is mirrored: worker_loop(-n) is worker_loop(n); i64::MIN maps to 2^63 mod N."), &["modulo"], &[Config, Selection], select::mirror),
        s(clause("select.before-listen", Must, "Before listen, worker_loop(n) panics saying the engine is not listening; try_worker_loop(n) returns None."), &["modulo"], &[Config, Lifecycle], select::before_listen),
        s(clause("select.stable", Must, "The same n returns the same worker for the life of the engine; worker_loop(n).index() tells which."), &["modulo"], &[Config, Selection], select::stable),
        // 5. Worker loop and driver connections
        s(clause("loop.cpuid", Must, "With pinning, cpu_id() is the pinned CPU and the thread's affinity is exactly it; without pinning, or when pinning failed, -1."), &["driver"], &[Config, Selection], driver::cpuid),
        s(clause("driver.register", Must, "register_conn adds a caller-owned non-blocking fd; errors: negative, already registered, an HTTP connection of this worker, blocking, refused by epoll (errno)."), &["driver"], &[Config, Selection, Driver], driver::register),
        s(clause("driver.recv", Must, "Bytes arriving on a registered fd reach on_recv on the worker thread, in order, without loss or duplication."), &["driver"], &[Config, Selection, Driver], driver::recv),
        s(clause("driver.unregister", Must, "unregister_conn removes the fd; on_close(None) runs once on the worker thread at its next iteration; the fd is not closed; unknown fd: UnknownFd."), &["driver"], &[Config, Selection, Driver], driver::unregister),
        s(clause("driver.close-callback", Must, "Peer FIN: on_close(None); peer RST: on_close(Some(ECONNRESET)); exactly once per registration."), &["driver"], &[Config, Selection, Driver], driver::close_callback),
        s(clause("driver.write.unknown", Must, "write on an fd not registered on this worker (including one registered on another worker) returns UnknownFd."), &["driver"], &[Config, Selection, Driver], driver::write_unknown),
        s(clause("driver.write.queue-full", Must, "write returns QueueFull iff pending + len > cap; nothing of the data is queued then and earlier data is untouched."), &["driver", "queue-full"], &[Config, Selection, Driver], driver::write_queue_full),
        s(clause("driver.write.no-loss", Must, "Every byte of every successful write reaches the peer once, in order, across QueueFull episodes."), &["driver", "queue-full"], &[Config, Selection, Driver], driver::write_no_loss),
        s(clause("driver.write.inline-once", Should, "With nothing pending, write makes at most one write(2) inline, queues the rest for EPOLLOUT, and never blocks."), &["driver"], &[Config, Selection, Driver], driver::write_inline_once),
        s(clause("driver.write.concurrent", Must, "Writes from several threads to one fd are never interleaved within one call."), &["driver"], &[Config, Selection, Driver], driver::write_concurrent),
        s(clause("driver.no-sigpipe", Must, "Writing to a peer that has gone returns EPIPE/ECONNRESET and never kills the process with SIGPIPE."), &["driver"], &[Config, Selection, Driver], driver::no_sigpipe),
        // 6. HTTP/1.1 serving
        s(clause("http.keepalive", Must, "HTTP/1.1 is keep-alive by default; 1.0 only with Connection: keep-alive; Connection: close gets a complete response with connection: close, then FIN."), &["http"], &[Http], http::keepalive).host_rsts(Reported),
        s(clause("http.pipelining", Must, "Pipelined requests are answered in order, each exactly once, whatever the read boundaries; requests after a Connection: close request are not answered."), &["http"], &[Http, Config, TestRoutes], http::pipelining),
        s(clause("http.split-anywhere", Must, "A request split at any byte (one byte per write included) is parsed as if sent at once."), &["http"], &[Http, Config, TestRoutes], http::split_anywhere),
        s(clause("http.framing", Must, "Content-Length and chunked bodies (extensions, trailers) are framed exactly; conflicting Content-Length → 400; Transfer-Encoding with Content-Length → chunked wins or 400, never smuggling."), &["http"], &[Http, Config, TestRoutes], http::framing),
        s(clause("http.errors", Must, "Malformed request line or header, missing Host on 1.1 → 400; header block over the limit → 431; body over the limit → 413 Payload Too Large; each complete, with connection: close, then FIN, not RST."), &["http"], &[Http, Config], http::errors).host_rsts(Reported),
        s(clause("http.expect-continue", Must, "Expect: 100-continue with a body gets 100 Continue before the body is read (413 instead when the declared body is over the limit)."), &["http"], &[Http, Config, TestRoutes], http::expect_continue),
        s(clause("http.head", Must, "HEAD responses carry the headers a GET would, no body."), &["http"], &[Http, Config, TestRoutes], http::head),
        s(clause("http.large-response", Must, "A response of any size (tested to 64 MiB) is delivered whole to a slow reader, with keep-alive and with Connection: close."), &["http"], &[Http, Config, TestRoutes], http::large_response),
        s(clause("http.slow-reader", Must, "A client that stops reading does not make a worker spin (CPU near idle while the response waits); the connection is closed after the write timeout."), &["http"], &[Http, Config, TestRoutes, Selection], http::slow_reader),
        s(clause("http.timeouts", Must, "An idle connection is closed with FIN after the idle timeout; a header block not complete within the header timeout is closed; a connection in active use is never closed."), &["http"], &[Http, Config], http::timeouts).host_rsts(Reported),
        s(clause("http.date", Should, "Every response carries a correct date header (IMF-fixdate, cached, refreshed each second)."), &["http"], &[Http], http::date),
        // 7. Hostile input and exhaustion
        s(clause("hostile.chunked-linear", Must, "Decoding a chunked body costs CPU linear in its size, whatever the chunk sizes and read boundaries: doubling the number of 1-byte chunks at most doubles the CPU, within 30 %."), &["hostile"], &[Http, Config], hostile::chunked_linear),
        s(clause("hostile.head-linear", Must, "A request head arriving in small pieces costs CPU linear in its size: the search for the end of the header block resumes where it stopped."), &["hostile"], &[Http, Config], hostile::head_linear),
        s(clause("hostile.trailers", Must, "The trailer section of a chunked body counts against the header limit (over it → 431) and is held to the header grammar (a line without a colon, or with NUL / bare CR → 400)."), &["hostile"], &[Http, Config], hostile::trailers),
        s(clause("hostile.memory-budget", Must, "The bytes held for request input across all connections never exceed max_buffered_input plus one read buffer per worker: past it, reading stops (TCP backpressure); memory returns near its idle level once the requests are done."), &["hostile"], &[Http, Config, TestRoutes, Process], exhaust::memory_budget),
        s(clause("hostile.emfile", Must, "When accept fails with EMFILE/ENFILE/ENOBUFS/ENOMEM the worker does not spin: it stops watching its listen socket until a connection closes or 100 ms pass; existing connections are served; queued ones are accepted once descriptors are free."), &["hostile"], &[Http, Process], exhaust::emfile),
        s(clause("hostile.request-target", Must, "An absolute-form target is routed by its path (its authority replaces Host); * only with OPTIONS (else 400); an empty line before a request line is ignored."), &["hostile"], &[Http, TestRoutes], hostile::request_target),
        s(clause("hostile.slow-body", Must, "A body that stops arriving for longer than body_timeout is closed (FIN, after a 408 when no response has started); CPU stays near idle while waiting."), &["hostile"], &[Http, Config], exhaust::slow_body),
        // 8. Handover without resets (kernel support)
        s(clause("accept.pause.migrate", Must, "Where the kernel migrates a closing listener's queue (net.ipv4.tcp_migrate_req = 1), the handover under a dial storm has zero RSTs (client and namespace counters); the engine reports whether the host migrates; alone on its port it still drains with FIN."), &["pause-accept"], &[Config, TestRoutes, AcceptControl, SharedPort], migrate::pause_migrate),
    ]
}

/// The scenario with this clause ID.
pub fn find(id: &str) -> Option<Scenario> {
    registry().into_iter().find(|s| s.clause.id == id)
}
