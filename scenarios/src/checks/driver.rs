//! Section 5: worker loop handle and driver connections.
//!
//! Every driver check registers the engine-side end of a loopback TCP pair that the
//! check owns (the accepted end is the "peer"), and collects what the callbacks see in
//! a [`Seen`] shared with them.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use engine::sync::lock;
use engine::sys::socket;
use engine::sys::thread::{affinity_of, allowed_cpus, gettid};
use engine::{DriverError, DRIVER_WRITE_CAP};

use crate::targets::DriverLoop;

use crate::ctx::Ctx;
use crate::harness::Server;
use crate::outcome::{Checked, OrError, Outcome};
use crate::wait::wait_until;

// ---- helpers ----

/// One `on_close` call.
#[derive(Debug)]
struct Close {
    errno: Option<i32>,
    err: Option<String>,
    on_worker: bool,
}

/// What the callbacks of one registration saw.
#[derive(Debug, Default)]
struct Seen {
    data: Vec<u8>,
    recv_calls: usize,
    off_thread: usize,
    closes: Vec<Close>,
}

type Shared = Arc<Mutex<Seen>>;

fn guard(s: &Shared) -> MutexGuard<'_, Seen> {
    lock(s)
}

/// Registers `fd` on `wl` with callbacks that record into the returned [`Shared`].
fn register_seen(wl: &dyn DriverLoop, fd: RawFd) -> (Shared, Result<(), DriverError>) {
    let seen = Shared::default();
    let tid = wl.thread_id();
    let (r, c) = (Arc::clone(&seen), Arc::clone(&seen));
    let res = wl.register_conn(
        fd,
        move |data: &[u8]| {
            let mut g = guard(&r);
            g.data.extend_from_slice(data);
            g.recv_calls += 1;
            if crate::targets::callback_thread_id() != tid {
                g.off_thread += 1;
            }
        },
        move |err: Option<io::Error>| {
            guard(&c).closes.push(Close {
                errno: err.as_ref().and_then(|e| e.raw_os_error()),
                err: err.map(|e| e.to_string()),
                on_worker: crate::targets::callback_thread_id() == tid,
            });
        },
    );
    (seen, res)
}

/// A connected loopback pair: `local` is the end given to the engine (non-blocking),
/// `peer` the other end (blocking).
struct Pair {
    local: Option<TcpStream>,
    peer: Option<TcpStream>,
    fd: RawFd,
}

impl Pair {
    /// `send_buf` is set on the engine end, `peer_recv_buf` on the peer (before the
    /// handshake, so the window scale matches); fixed sizes stop the kernel autotuning.
    fn new(send_buf: Option<usize>, peer_recv_buf: Option<usize>) -> io::Result<Pair> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        if peer_recv_buf.is_some() {
            socket::set_buffer_sizes(listener.as_raw_fd(), None, peer_recv_buf)?;
        }
        let local = TcpStream::connect(listener.local_addr()?)?;
        let (peer, _) = listener.accept()?;
        if send_buf.is_some() {
            socket::set_buffer_sizes(local.as_raw_fd(), send_buf, None)?;
        }
        local.set_nonblocking(true)?;
        Ok(Pair {
            fd: local.as_raw_fd(),
            local: Some(local),
            peer: Some(peer),
        })
    }

    fn peer(&mut self) -> &mut TcpStream {
        self.peer.as_mut().expect("peer still open")
    }

    fn local(&mut self) -> &mut TcpStream {
        self.local.as_mut().expect("local end still open")
    }

    /// Gives up ownership of the engine end without closing its number (it was closed
    /// behind our back: closing it again could close somebody else's fd).
    fn leak_local(&mut self) {
        if let Some(s) = self.local.take() {
            let _ = s.into_raw_fd();
        }
    }
}

/// Keeps a worker thread busy inside an `on_recv` callback of a separate driver
/// connection, so it can neither flush write queues nor notice closes until released.
struct Hold {
    release: Option<mpsc::Sender<()>>,
    entered: Arc<AtomicBool>,
    wl: std::sync::Arc<dyn DriverLoop>,
    pair: Pair,
}

impl Hold {
    fn start(wl: &Arc<dyn DriverLoop>, ctx: &Ctx) -> Result<Hold, String> {
        let pair = Pair::new(None, None).map_err(|e| format!("blocker pair: {e}"))?;
        let (tx, rx) = mpsc::channel::<()>();
        let entered = Arc::new(AtomicBool::new(false));
        let e = Arc::clone(&entered);
        let max = ctx.ms(10_000);
        let rx = Mutex::new(rx);
        wl.register_conn(
            pair.fd,
            move |_data: &[u8]| {
                if !e.swap(true, SeqCst) {
                    let rx = lock(&rx);
                    let _ = rx.recv_timeout(max);
                }
            },
            |_| {},
        )
        .map_err(|e| format!("registering the blocker: {e}"))?;
        let hold = Hold {
            release: Some(tx),
            entered,
            wl: wl.clone(),
            pair,
        };
        // From here on, dropping `hold` releases and unregisters the blocker.
        let mut hold = hold;
        if hold.pair.peer().write_all(b"x").is_err() {
            return Err("the blocker peer could not send".into());
        }
        if !wait_until(ctx.ms(2000), || hold.entered.load(SeqCst)) {
            return Err("the worker never ran the blocker's on_recv".into());
        }
        Ok(hold)
    }

    fn release(&mut self) {
        self.release.take();
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.release();
        let _ = self.wl.unregister_conn(self.pair.fd);
    }
}

/// The test stream: byte `p` of the stream is byte `p % 8` of the little-endian u64
/// `p / 8`, so a lost, duplicated or reordered run shows as a mismatch at its offset.
fn pattern(start: u64, len: usize) -> Vec<u8> {
    let skip = (start % 8) as usize;
    let words = (skip + len).div_ceil(8) as u64;
    let mut v = Vec::with_capacity(words as usize * 8);
    for w in start / 8..start / 8 + words {
        v.extend_from_slice(&w.to_le_bytes());
    }
    v.drain(..skip);
    v.truncate(len);
    v
}

/// Offset of the first byte of `got` that differs from the pattern, or where it ends
/// early / goes on too long.
fn first_mismatch(got: &[u8], expected_len: usize) -> Option<usize> {
    const BLOCK: usize = 1 << 20;
    let common = got.len().min(expected_len);
    for start in (0..common).step_by(BLOCK) {
        let end = (start + BLOCK).min(common);
        let want = pattern(start as u64, end - start);
        if got[start..end] != want[..] {
            let i = got[start..end].iter().zip(&want).position(|(a, b)| a != b);
            return Some(start + i.unwrap_or(0));
        }
    }
    (got.len() != expected_len).then_some(common)
}

/// A small xorshift generator: random sizes without a dependency.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let t = Instant::now().elapsed().as_nanos() as u64;
        Rng(0x9E37_79B9_7F4A_7C15 ^ t ^ (gettid() as u64) << 17 | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Reads from `s` (blocking, with a short timeout per read) until `want` bytes arrived,
/// EOF, or `within` passed; then checks for `extra` that nothing more arrives.
fn read_exactly(s: &mut TcpStream, want: usize, within: Duration, extra: Duration) -> Vec<u8> {
    let mut out = Vec::with_capacity(want);
    let mut buf = vec![0u8; 256 * 1024];
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(5)));
    let end = Instant::now() + within;
    while out.len() < want && Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let end = Instant::now() + extra;
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    out
}

/// Bytes written by the engine end and not yet read by the peer, as the kernel sees
/// them: SIOCOUTQ of the engine end + FIONREAD of the peer.
fn kernel_held(local: RawFd, peer: RawFd) -> io::Result<(usize, usize)> {
    Ok((
        socket::send_queue_len(local)?,
        socket::recv_queue_len(peer)?,
    ))
}

/// Waits until the kernel numbers have not changed for `quiet`; the last sample.
fn wait_kernel_stable(
    local: RawFd,
    peer: RawFd,
    quiet: Duration,
    within: Duration,
) -> Option<(usize, usize)> {
    let mut last = kernel_held(local, peer).ok()?;
    let mut since = Instant::now();
    let ok = wait_until(within, || match kernel_held(local, peer) {
        Ok(now) if now == last => since.elapsed() >= quiet,
        Ok(now) => {
            last = now;
            since = Instant::now();
            false
        }
        Err(_) => false,
    });
    ok.then_some(last)
}

fn describe(r: &Result<(), DriverError>) -> String {
    match r {
        Ok(()) => "Ok".into(),
        Err(e) => format!("Err({e:?})"),
    }
}

// ---- loop.cpuid ----

/// Starts engines with pinning on (the allowed CPUs), off, and on with a CPU that does
/// not exist (pinning fails with EINVAL), and compares each worker's `cpu_id()` with
/// the affinity mask of its thread (`sched_getaffinity(thread_id())`).
pub fn cpuid(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("pin_workers on, cpus empty: every cpu_id() is an allowed CPU and the worker thread's affinity is exactly [cpu_id]");
    o.expect("pin_workers off: cpu_id() is -1");
    o.expect("pin_workers on, cpus [1000] (pinning fails with EINVAL): cpu_id() is -1");
    let allowed = allowed_cpus().or_error("sched_getaffinity")?;
    o.saw(format!("allowed CPUs of the test process: {allowed:?}"));
    let cases = [
        (
            "pinned",
            engine::Config {
                pin_workers: true,
                cpus: Vec::new(),
                ..ctx.config()
            },
        ),
        (
            "unpinned",
            engine::Config {
                pin_workers: false,
                ..ctx.config()
            },
        ),
        (
            "pin failed",
            engine::Config {
                pin_workers: true,
                cpus: vec![1000],
                ..ctx.config()
            },
        ),
    ];
    for (label, cfg) in cases {
        let server = Server::start(ctx, cfg).map_err(|e| format!("{label}: {e}"))?;
        let engine = server.engine();
        for k in 0..engine.num_workers() {
            let wl = server.worker_loop(k as i64);
            let cpu = wl.cpu_id();
            let aff = affinity_of(wl.thread_id());
            o.saw(format!(
                "{label}: worker {} (tid {}): cpu_id {cpu}, affinity {aff:?}",
                wl.index(),
                wl.thread_id()
            ));
            match label {
                "pinned" => {
                    o.check(cpu >= 0 && allowed.contains(&(cpu as usize)), || {
                        format!("{label}: worker {k} cpu_id {cpu}, expected one of {allowed:?}")
                    });
                    let exact = matches!(&aff, Ok(a) if cpu >= 0 && a[..] == [cpu as usize]);
                    o.check(exact, || {
                        format!("{label}: worker {k} affinity {aff:?}, expected exactly [{cpu}]")
                    });
                }
                _ => {
                    o.check(cpu == -1, || {
                        format!("{label}: worker {k} cpu_id {cpu}, expected -1")
                    });
                }
            }
        }
    }
    Ok(())
}

// ---- driver.register ----

/// Registers a valid fd, then each kind of invalid fd, and compares the errors: -1,
/// the same fd again, the engine's own fd of a live HTTP connection on this worker, a
/// blocking socket, an fd number that cannot be open, a regular file (epoll: EPERM).
pub fn register(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("valid non-blocking socket: Ok");
    o.expect("fd -1: NegativeFd(-1)");
    o.expect("the same fd again: AlreadyRegistered");
    o.expect("the engine's fd of an HTTP connection of this worker: HttpConn");
    o.expect("a blocking socket: Blocking");
    o.expect("a closed fd number: Io with EBADF; a regular file: Io with EPERM");
    let server = Server::with_workers(ctx, 1)?;
    let wl = server.worker_loop(0);

    let pair = Pair::new(None, None).or_error("socket pair")?;
    let (_seen, r) = register_seen(&wl, pair.fd);
    o.saw(format!("valid fd {}: {}", pair.fd, describe(&r)));
    o.check(r.is_ok(), || format!("valid fd: {}", describe(&r)));

    let (_s, r) = register_seen(&wl, -1);
    o.saw(format!("fd -1: {}", describe(&r)));
    o.check(matches!(r, Err(DriverError::NegativeFd(-1))), || {
        format!("fd -1: {}, expected NegativeFd(-1)", describe(&r))
    });

    let (_s, r) = register_seen(&wl, pair.fd);
    o.saw(format!("fd {} again: {}", pair.fd, describe(&r)));
    o.check(
        matches!(r, Err(DriverError::AlreadyRegistered(fd)) if fd == pair.fd),
        || {
            format!(
                "second registration: {}, expected AlreadyRegistered",
                describe(&r)
            )
        },
    );

    // An HTTP connection that has been served (so it is surely in the worker's set).
    let mut client = crate::client::connect(server.addr(), ctx.ms(2000)).or_error("HTTP client")?;
    let _ = client.set_read_timeout(Some(ctx.ms(2000)));
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    if client.write_all(&crate::client::get("/")).is_err() {
        return Err("sending the HTTP request failed".into());
    }
    while !got.windows(13).any(|w| w == b"Hello, World!") {
        match client.read(&mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return Err("no HTTP response on the keep-alive connection".into()),
        }
    }
    let peer = client.local_addr().or_error("the client's address")?;
    match wl.register_engine_fd(server.addr(), peer) {
        Some((fd, r)) => {
            o.saw(format!("HTTP connection fd {fd}: {}", describe(&r)));
            if r.is_ok() {
                let _ = wl.unregister_conn(fd);
            }
            o.check(
                matches!(r, Err(DriverError::HttpConn(f)) if f == fd),
                || {
                    format!(
                        "HTTP connection fd {fd}: {}, expected HttpConn",
                        describe(&r)
                    )
                },
            );
        }
        None => return Err("could not find the engine's fd of the HTTP connection".into()),
    }

    match Pair::new(None, None) {
        Ok(b) => {
            if let Err(e) = b
                .local
                .as_ref()
                .map_or(Ok(()), |s| s.set_nonblocking(false))
            {
                return Err(format!("making a socket blocking: {e}").into());
            }
            let (_s, r) = register_seen(&wl, b.fd);
            o.saw(format!("blocking fd {}: {}", b.fd, describe(&r)));
            if r.is_ok() {
                let _ = wl.unregister_conn(b.fd);
            }
            o.check(
                matches!(r, Err(DriverError::Blocking(f)) if f == b.fd),
                || format!("blocking fd: {}, expected Blocking", describe(&r)),
            );
        }
        Err(e) => return Err(format!("socket pair: {e}").into()),
    }

    // No process can have this fd open (the kernel caps fds well below i32::MAX), so
    // it is a closed fd that no parallel test can reuse.
    let closed = i32::MAX;
    let (_s, r) = register_seen(&wl, closed);
    o.saw(format!("closed fd {closed}: {}", describe(&r)));
    o.check(
        matches!(&r, Err(e @ DriverError::Io { .. }) if e.raw_os_error() == Some(libc::EBADF)),
        || format!("closed fd: {}, expected Io(EBADF)", describe(&r)),
    );

    let path = std::env::temp_dir().join(format!("driver-register-{}", std::process::id()));
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
    };
    let _ = std::fs::remove_file(&path);
    match file {
        Ok(f) => {
            let (_s, r) = register_seen(&wl, f.as_raw_fd());
            o.saw(format!(
                "regular file fd {}: {}",
                f.as_raw_fd(),
                describe(&r)
            ));
            o.check(
                matches!(&r, Err(e @ DriverError::Io { .. }) if e.raw_os_error() == Some(libc::EPERM)),
                || format!("regular file: {}, expected Io(EPERM)", describe(&r)),
            );
        }
        Err(e) => return Err(format!("opening a temp file: {e}").into()),
    }
    let _ = wl.unregister_conn(pair.fd);
    Ok(())
}

// ---- driver.recv ----

/// The peer sends 1 MiB of the position pattern in random-sized writes (1 B..64 KiB),
/// then closes; `on_recv` must see exactly the stream, on the worker thread, before
/// `on_close(None)`.
pub fn recv(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("on_recv receives the 1 MiB stream exactly (in order, no loss or duplication), every call on the worker thread; then on_close(None) once");
    let server = Server::start(ctx, ctx.config())?;
    let wl = server.worker_loop(0);
    let mut pair = Pair::new(None, None).or_error("socket pair")?;
    let (seen, r) = register_seen(&wl, pair.fd);
    r.or_error("register_conn")?;
    const TOTAL: usize = 1 << 20;
    let data = pattern(0, TOTAL);
    let mut rng = Rng::new();
    let mut off = 0;
    let mut writes = 0;
    while off < TOTAL {
        let n = (1 + rng.below(64 * 1024) as usize).min(TOTAL - off);
        pair.peer()
            .write_all(&data[off..off + n])
            .or_error("peer write")?;
        off += n;
        writes += 1;
    }
    let _ = pair.peer().shutdown(std::net::Shutdown::Write);
    let closed = wait_until(ctx.ms(3000), || !guard(&seen).closes.is_empty());
    std::thread::sleep(ctx.ms(20));
    let g = guard(&seen);
    o.saw(format!(
        "peer wrote {TOTAL} bytes in {writes} writes, then FIN; on_recv: {} calls, {} bytes, {} off the worker thread; on_close: {:?}",
        g.recv_calls,
        g.data.len(),
        g.off_thread,
        g.closes
    ));
    o.check(closed, || "on_close never ran after the peer's FIN".into());
    if let Some(i) = first_mismatch(&g.data, TOTAL) {
        o.fail(format!(
            "received stream differs from the sent one at offset {i} (got {} bytes, sent {TOTAL})",
            g.data.len()
        ));
    }
    o.check(g.off_thread == 0, || {
        format!("{} on_recv calls ran off the worker thread", g.off_thread)
    });
    o.check(
        g.closes.len() == 1 && g.closes[0].errno.is_none() && g.closes[0].err.is_none(),
        || format!("on_close calls {:?}, expected one None", g.closes),
    );
    Ok(())
}

// ---- driver.unregister ----

/// Registers a pair, proves it receives, unregisters it, then checks: `on_close(None)`
/// once on the worker thread; the peer reads no EOF; the fd is still open and usable
/// both ways by the check; no `on_recv` for bytes sent afterwards; `UnknownFd` for a
/// second unregister and for a never-registered fd. Then `unregister_conn` from inside
/// `on_recv` with more than a read buffer queued: `on_recv` runs once.
pub fn unregister(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("unregister_conn: Ok; then on_close(None) exactly once, on the worker thread");
    o.expect("the fd stays open: the peer sees no EOF, is_nonblocking(fd) works, bytes flow both ways through it");
    o.expect("no on_recv after unregister; unregister again / unknown fd: UnknownFd");
    let server = Server::start(ctx, ctx.config())?;
    let wl = server.worker_loop(0);
    let mut pair = Pair::new(None, None).or_error("socket pair")?;
    let fd = pair.fd;
    let (seen, r) = register_seen(&wl, fd);
    r.or_error("register_conn")?;
    if pair.peer().write_all(b"before").is_err()
        || !wait_until(ctx.ms(2000), || guard(&seen).data.len() >= 6)
    {
        return Err("the registered fd never delivered the peer's bytes".into());
    }
    let r = wl.unregister_conn(fd);
    o.saw(format!("unregister_conn({fd}): {}", describe(&r)));
    if !o.check(r.is_ok(), || format!("unregister_conn: {}", describe(&r))) {
        return Ok(());
    }
    let closed = wait_until(ctx.ms(1000), || !guard(&seen).closes.is_empty());
    o.check(closed, || "on_close never ran after unregister_conn".into());

    // Did the fd get closed? The peer would read EOF at once.
    let peer = pair.peer();
    let _ = peer.set_read_timeout(Some(ctx.ms(100)));
    let mut buf = [0u8; 64];
    let peer_read = peer.read(&mut buf);
    let eof = matches!(peer_read, Ok(0))
        || matches!(&peer_read, Err(e) if e.kind() == io::ErrorKind::ConnectionReset);
    o.saw(format!(
        "peer read after unregister (100 ms): {peer_read:?}"
    ));
    o.check(!eof, || {
        "the peer saw the connection end: unregister_conn closed the fd".into()
    });
    let nb = socket::is_nonblocking(fd);
    o.saw(format!("is_nonblocking({fd}) after unregister: {nb:?}"));
    o.check(matches!(nb, Ok(true)), || {
        format!("fd {fd} after unregister: {nb:?}, expected Ok(true)")
    });
    if eof || nb.is_err() {
        // Closed behind our back: the number may already be somebody else's.
        pair.leak_local();
    } else {
        let sent_back = pair.local().write_all(b"back").is_ok();
        let got = read_exactly(pair.peer(), 4, ctx.ms(1000), Duration::ZERO);
        o.saw(format!(
            "check wrote 4 bytes through fd {fd}: peer read {got:?}"
        ));
        o.check(sent_back && got == b"back", || {
            "the fd was not usable for sending after unregister".into()
        });
        let _ = pair.peer().write_all(b"after");
        let got = {
            let local = pair.local();
            let _ = local.set_nonblocking(false);
            read_exactly(local, 5, ctx.ms(1000), Duration::ZERO)
        };
        o.saw(format!(
            "peer wrote 5 bytes: the check read {got:?} from fd {fd}"
        ));
        o.check(got == b"after", || {
            "bytes sent after unregister did not stay on the fd".into()
        });
    }
    let r2 = wl.unregister_conn(fd);
    o.saw(format!("unregister_conn({fd}) again: {}", describe(&r2)));
    o.check(
        matches!(r2, Err(DriverError::UnknownFd(f)) if f == fd),
        || format!("second unregister: {}, expected UnknownFd", describe(&r2)),
    );
    let unknown = pair.peer.as_ref().map_or(-1, |p| p.as_raw_fd());
    let r3 = wl.unregister_conn(unknown);
    o.saw(format!(
        "unregister_conn({unknown}) never registered: {}",
        describe(&r3)
    ));
    o.check(matches!(r3, Err(DriverError::UnknownFd(_))), || {
        format!("unknown fd: {}, expected UnknownFd", describe(&r3))
    });
    std::thread::sleep(ctx.ms(50));
    let g = guard(&seen);
    o.saw(format!(
        "on_recv: {} bytes total; on_close: {:?}",
        g.data.len(),
        g.closes
    ));
    o.check(g.data == b"before", || {
        format!(
            "on_recv saw {:?}; expected only the bytes sent before unregister",
            String::from_utf8_lossy(&g.data)
        )
    });
    o.check(
        g.closes.len() == 1 && g.closes[0].err.is_none() && g.closes[0].on_worker,
        || {
            format!(
                "on_close calls {:?}, expected one None on the worker thread",
                g.closes
            )
        },
    );
    drop(g);
    unregister_inside_on_recv(ctx, &wl, o)
}

/// `unregister_conn` called from inside `on_recv`, with more input queued than one read
/// takes: the worker must not read the fd again, so `on_recv` runs exactly once.
fn unregister_inside_on_recv(ctx: &Ctx, wl: &Arc<dyn DriverLoop>, o: &mut Outcome) -> Checked {
    o.expect(
        "unregister_conn called inside on_recv, more than a read buffer queued: no further on_recv",
    );
    let mut pair = Pair::new(None, None).or_error("socket pair")?;
    let fd = pair.fd;
    let read_buffer = ctx.config().read_buffer_size;
    // Queued before the registration, so that the engine's first read fills its buffer.
    let mut writer = pair.peer().try_clone().or_error("cloning the peer")?;
    let load = vec![b'u'; 4 * read_buffer + 4096];
    let feeder = std::thread::spawn(move || {
        let _ = writer.write_all(&load);
    });
    let queued = wait_until(ctx.ms(2000), || {
        socket::recv_queue_len(fd).is_ok_and(|n| n > read_buffer)
    });
    if !queued {
        return Err(
            format!("could not queue more than {read_buffer} bytes on the registered fd").into(),
        );
    }
    let before = socket::identity(fd).ok();
    let calls = Arc::new(Mutex::new((0usize, None::<Result<(), DriverError>>)));
    let (c, w) = (Arc::clone(&calls), Arc::clone(wl));
    let r = wl.register_conn(
        fd,
        move |_: &[u8]| {
            let mut g = lock(&c);
            g.0 += 1;
            if g.0 == 1 {
                g.1 = Some(w.unregister_conn(fd));
            }
        },
        |_| {},
    );
    r.or_error("register_conn")?;
    wait_until(ctx.ms(2000), || lock(&calls).0 > 0);
    // Time for a worker that keeps reading to call again.
    std::thread::sleep(ctx.ms(200));
    let (n, unregistered) = {
        let g = lock(&calls);
        (g.0, g.1.as_ref().map(describe))
    };
    o.saw(format!(
        "on_recv calls: {n}; unregister_conn inside the first: {unregistered:?}"
    ));
    o.check(n == 1 && matches!(lock(&calls).1, Some(Ok(()))), || {
        format!("on_recv ran {n} time(s) (expected exactly 1: the first one unregistered the fd, {unregistered:?}); the worker read the fd after unregister_conn")
    });
    // An engine that closed the fd (the first part's failure) must not get it closed
    // twice: the number may be somebody else's now.
    if before.is_none() || socket::identity(fd).ok() != before {
        pair.leak_local();
    }
    // The peer's writer ends when its socket closes.
    drop(pair);
    let _ = feeder.join();
    Ok(())
}

// ---- driver.close-callback ----

/// Two registrations: the first peer closes with FIN, the second with RST (linger 0).
/// Checks `on_close(None)` and `on_close(Some(ECONNRESET))`, once each, on the worker
/// thread, and that a later `unregister_conn` returns `UnknownFd` without a second call.
pub fn close_callback(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("peer FIN: on_close(None) once on the worker thread");
    o.expect("peer RST: on_close(Some(err)) with ECONNRESET once on the worker thread");
    o.expect("unregister_conn afterwards: UnknownFd, no second on_close");
    let server = Server::start(ctx, ctx.config())?;
    let wl = server.worker_loop(0);
    let (mut fin, mut rst) = match (Pair::new(None, None), Pair::new(None, None)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Err(format!("socket pair: {e}").into()),
    };
    let (seen_fin, r1) = register_seen(&wl, fin.fd);
    let (seen_rst, r2) = register_seen(&wl, rst.fd);
    if r1.is_err() || r2.is_err() {
        return Err(format!("register_conn: {} / {}", describe(&r1), describe(&r2)).into());
    }
    drop(fin.peer.take());
    if let Some(p) = rst.peer.take() {
        socket::set_linger(p.as_raw_fd(), Some(Duration::ZERO)).or_error("SO_LINGER")?;
        drop(p);
    }
    let both = wait_until(ctx.ms(2000), || {
        !guard(&seen_fin).closes.is_empty() && !guard(&seen_rst).closes.is_empty()
    });
    o.check(both, || {
        "on_close did not run for both connections within 2 s".into()
    });
    std::thread::sleep(ctx.ms(50));
    let r1 = wl.unregister_conn(fin.fd);
    let r2 = wl.unregister_conn(rst.fd);
    o.saw(format!(
        "unregister after close: FIN conn {}, RST conn {}",
        describe(&r1),
        describe(&r2)
    ));
    for (what, r) in [("FIN", &r1), ("RST", &r2)] {
        o.check(matches!(r, Err(DriverError::UnknownFd(_))), || {
            format!(
                "{what} connection: unregister after close returned {}, expected UnknownFd",
                describe(r)
            )
        });
    }
    std::thread::sleep(ctx.ms(50));
    let f = guard(&seen_fin);
    let r = guard(&seen_rst);
    o.saw(format!("FIN peer: on_close {:?}", f.closes));
    o.saw(format!("RST peer: on_close {:?}", r.closes));
    o.check(
        f.closes.len() == 1 && f.closes[0].err.is_none() && f.closes[0].on_worker,
        || {
            format!(
                "FIN: on_close calls {:?}, expected exactly one None on the worker thread",
                f.closes
            )
        },
    );
    o.check(
        r.closes.len() == 1
            && r.closes[0].errno == Some(libc::ECONNRESET)
            && r.closes[0].on_worker,
        || format!("RST: on_close calls {:?}, expected exactly one Some(ECONNRESET) on the worker thread", r.closes),
    );
    Ok(())
}

// ---- driver.write.unknown ----

/// With 2 workers, registers a pair on worker 0, then writes on a never-registered fd
/// and, through worker 1's handle, on the fd registered on worker 0: both `UnknownFd`,
/// and the peer receives nothing of them (a write through worker 0 arrives, as control).
pub fn write_unknown(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("write on a never-registered fd: UnknownFd");
    o.expect("write through worker 1 on an fd registered on worker 0: UnknownFd, nothing sent");
    o.expect("write through worker 0 (control): Ok, the peer reads it");
    let server = Server::with_workers(ctx, 2)?;
    let (w0, w1) = (server.worker_loop(0), server.worker_loop(1));
    if w0.index() == w1.index() {
        return Err("worker_loop(0) and worker_loop(1) are the same worker".into());
    }
    let mut pair = Pair::new(None, None).or_error("socket pair")?;
    let (_seen, r) = register_seen(&w0, pair.fd);
    r.or_error("register_conn")?;
    let never = pair.peer.as_ref().map_or(-1, |p| p.as_raw_fd());
    let r = w0.write(never, b"never");
    o.saw(format!(
        "worker 0 write on never-registered fd {never}: {}",
        describe(&r)
    ));
    o.check(
        matches!(r, Err(DriverError::UnknownFd(f)) if f == never),
        || format!("never-registered fd: {}, expected UnknownFd", describe(&r)),
    );
    let r = w1.write(pair.fd, b"other");
    o.saw(format!(
        "worker 1 write on fd {} (registered on worker 0): {}",
        pair.fd,
        describe(&r)
    ));
    o.check(
        matches!(r, Err(DriverError::UnknownFd(f)) if f == pair.fd),
        || format!("fd of another worker: {}, expected UnknownFd", describe(&r)),
    );
    let r = w0.write(pair.fd, b"mine");
    o.saw(format!("worker 0 write on its fd: {}", describe(&r)));
    let got = read_exactly(pair.peer(), 4, ctx.ms(1000), ctx.ms(50));
    o.saw(format!("peer read {:?}", String::from_utf8_lossy(&got)));
    o.check(got == b"mine", || {
        format!(
            "peer read {:?}, expected only the control write \"mine\"",
            String::from_utf8_lossy(&got)
        )
    });
    let _ = w0.unregister_conn(pair.fd);
    Ok(())
}

// ---- driver.write.queue-full ----

fn expect_queue_full(
    o: &mut Outcome,
    what: &str,
    r: &Result<(), DriverError>,
    fd: RawFd,
    pending: usize,
    len: usize,
    cap: usize,
) {
    let ok = matches!(r, Err(DriverError::QueueFull { fd: f, pending: p, len: l, cap: c })
        if *f == fd && *p == pending && *l == len && *c == cap);
    o.check(ok, || {
        format!("{what}: {}, expected QueueFull {{ fd: {fd}, pending: {pending}, len: {len}, cap: {cap} }}", describe(r))
    });
}

/// Small cap (1 MiB), peer not reading, fixed socket buffers: after a first write, waits
/// until the kernel numbers are stable and derives pending = accepted − (SIOCOUTQ +
/// peer FIONREAD); a write of exactly cap − pending must succeed and a 1-byte write then
/// fail with `QueueFull { pending: cap, len: 1 }`; afterwards the peer must read exactly
/// the accepted stream. With the default cap (64 MiB) and nothing pending: cap + 1
/// bytes → `QueueFull`, cap bytes → Ok and all arrive.
pub fn write_queue_full(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("cap 1 MiB: write(cap - pending) Ok; write(1 byte) QueueFull{pending: cap, len: 1, cap}; the peer later reads exactly the accepted bytes");
    o.expect("default cap 64 MiB, nothing pending: write(cap + 1) QueueFull{pending: 0}; write(cap) Ok and the peer reads exactly cap bytes");
    let t = Instant::now();
    small_cap(ctx, o);
    o.saw(format!("(small-cap part took {:?})", t.elapsed()));
    let t = Instant::now();
    default_cap(ctx, o);
    o.saw(format!("(default-cap part took {:?})", t.elapsed()));
    Ok(())
}

fn small_cap(ctx: &Ctx, o: &mut Outcome) {
    const CAP: usize = 1 << 20;
    let cfg = engine::Config {
        driver_write_cap: CAP,
        ..ctx.config()
    };
    let server = match Server::start(ctx, cfg) {
        Ok(s) => s,
        Err(e) => return o.fail(format!("harness: {e}")),
    };
    let wl = server.worker_loop(0);
    let mut pair = match Pair::new(Some(32 * 1024), Some(64 * 1024)) {
        Ok(p) => p,
        Err(e) => return o.fail(format!("harness: socket pair: {e}")),
    };
    let fd = pair.fd;
    let peer_fd = pair.peer.as_ref().map_or(-1, |p| p.as_raw_fd());
    let (_seen, r) = register_seen(&wl, fd);
    if let Err(e) = r {
        return o.fail(format!("harness: register_conn: {e}"));
    }
    let mut accepted = 0usize;
    let first = 256 * 1024;
    let r = wl.write(fd, &pattern(0, first));
    o.saw(format!(
        "cap {CAP}: write({first}) with nothing pending: {}",
        describe(&r)
    ));
    if !o.check(r.is_ok(), || {
        format!("write of {first} bytes under cap {CAP}: {}", describe(&r))
    }) {
        return;
    }
    accepted += first;
    let mut decided = false;
    for attempt in 0..5 {
        let Some((outq, inq)) = wait_kernel_stable(fd, peer_fd, ctx.ms(100), ctx.ms(3000)) else {
            return o.fail("harness: the kernel queues never settled".to_string());
        };
        let Some(pending) = accepted.checked_sub(outq + inq) else {
            return o.fail(format!(
                "harness: kernel holds {} > accepted {accepted}",
                outq + inq
            ));
        };
        o.saw(format!(
            "attempt {attempt}: accepted {accepted}, SIOCOUTQ {outq}, peer FIONREAD {inq} → pending {pending}"
        ));
        let fill = CAP - pending;
        let r = wl.write(fd, &pattern(accepted as u64, fill));
        o.saw(format!("write(cap - pending = {fill}): {}", describe(&r)));
        match &r {
            Ok(()) => accepted += fill,
            Err(DriverError::QueueFull {
                pending: p,
                len,
                cap,
                ..
            }) => {
                if p + len <= *cap || *cap != CAP || *len != fill {
                    o.fail(format!(
                        "write of cap - pending bytes refused: {}",
                        describe(&r)
                    ));
                    return;
                }
                // The kernel numbers counted some bytes twice (in flight): measure again.
                continue;
            }
            Err(_) => {
                o.fail(format!("write of cap - pending bytes: {}", describe(&r)));
                return;
            }
        }
        let before = kernel_held(fd, peer_fd).ok();
        let r = wl.write(fd, &pattern(accepted as u64, 1));
        let after = kernel_held(fd, peer_fd).ok();
        o.saw(format!(
            "then write(1): {} (kernel before {before:?}, after {after:?})",
            describe(&r)
        ));
        match &r {
            Ok(()) => {
                accepted += 1;
                if before == Some((outq, inq)) && after == before {
                    o.fail(format!(
                        "a 1-byte write was accepted with {CAP} bytes pending (cap {CAP})"
                    ));
                    return;
                }
                // The kernel took more meanwhile: measure again.
                continue;
            }
            Err(_) => expect_queue_full(o, "1-byte write at the cap", &r, fd, CAP, 1, CAP),
        }
        decided = true;
        break;
    }
    if !decided {
        return o.fail("harness: no stable measurement in 5 attempts".to_string());
    }
    let got = read_exactly(pair.peer(), accepted, ctx.ms(5000), ctx.ms(100));
    o.saw(format!(
        "peer read {} bytes (accepted {accepted})",
        got.len()
    ));
    if let Some(i) = first_mismatch(&got, accepted) {
        o.fail(format!(
            "the peer's stream differs from the accepted writes at offset {i} (read {}, accepted {accepted})",
            got.len()
        ));
    }
    let _ = wl.unregister_conn(fd);
}

fn default_cap(ctx: &Ctx, o: &mut Outcome) {
    let server = match Server::start(ctx, ctx.config()) {
        Ok(s) => s,
        Err(e) => return o.fail(format!("harness: {e}")),
    };
    let wl = server.worker_loop(0);
    let mut pair = match Pair::new(None, None) {
        Ok(p) => p,
        Err(e) => return o.fail(format!("harness: socket pair: {e}")),
    };
    let cap = DRIVER_WRITE_CAP;
    let (_seen, r) = register_seen(&wl, pair.fd);
    if let Err(e) = r {
        return o.fail(format!("harness: register_conn: {e}"));
    }
    let data = pattern(0, cap + 1);
    let r = wl.write(pair.fd, &data);
    o.saw(format!(
        "default cap: write(cap + 1 = {}) with nothing pending: {}",
        cap + 1,
        describe(&r)
    ));
    expect_queue_full(o, "write of cap + 1 bytes", &r, pair.fd, 0, cap + 1, cap);
    let r = wl.write(pair.fd, &data[..cap]);
    o.saw(format!(
        "default cap: write(cap = {cap}) with nothing pending: {}",
        describe(&r)
    ));
    o.check(r.is_ok(), || {
        format!("write of exactly cap bytes: {}", describe(&r))
    });
    let want = if r.is_ok() { cap } else { 0 };
    let got = read_exactly(pair.peer(), want, ctx.ms(5000), ctx.ms(100));
    o.saw(format!("peer read {} bytes", got.len()));
    if let Some(i) = first_mismatch(&got, want) {
        o.fail(format!("the peer's stream differs from the accepted write at offset {i} (read {}, accepted {want})", got.len()));
    }
    let _ = wl.unregister_conn(pair.fd);
}

// ---- driver.write.no-loss ----

/// Cap 256 KiB, small fixed buffers: the check writes 4 MiB of the position pattern in
/// random-sized writes, retrying after each `QueueFull`, while the peer reads slowly
/// (16 KiB per ms) and, once the writer is done, drains. The peer must read exactly the
/// accepted stream, and at least one `QueueFull` episode must have happened.
pub fn write_no_loss(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("with QueueFull episodes, the peer reads exactly the concatenation of the successful writes");
    const CAP: usize = 256 * 1024;
    const TOTAL: usize = 4 << 20;
    let cfg = engine::Config {
        driver_write_cap: CAP,
        ..ctx.config()
    };
    let server = Server::start(ctx, cfg)?;
    let wl = server.worker_loop(0);
    let mut pair = Pair::new(Some(16 * 1024), Some(64 * 1024)).or_error("socket pair")?;
    let (_seen, r) = register_seen(&wl, pair.fd);
    r.or_error("register_conn")?;
    let Some(mut peer) = pair.peer.take() else {
        return Err("no peer".into());
    };
    let done = Arc::new(Mutex::new(None::<usize>));
    let d = Arc::clone(&done);
    let deadline = ctx.ms(10_000);
    let quiet = ctx.ms(300);
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 256 * 1024];
        let _ = peer.set_read_timeout(Some(Duration::from_millis(5)));
        let end = Instant::now() + deadline;
        let mut progress = Instant::now();
        while Instant::now() < end {
            let total = *lock(&d);
            if total.is_some_and(|t| out.len() >= t) {
                break;
            }
            // Draining, and nothing came for a while: the rest is lost.
            if total.is_some() && progress.elapsed() > quiet {
                break;
            }
            let chunk = if total.is_some() {
                buf.len()
            } else {
                16 * 1024
            };
            match peer.read(&mut buf[..chunk]) {
                Ok(0) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    progress = Instant::now();
                }
                Err(_) => {}
            }
            if total.is_none() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // Anything beyond the accepted stream would be a duplicate.
        if let Ok(n) = peer.read(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        out
    });
    let mut rng = Rng::new();
    let (mut pos, mut writes, mut refused, mut episodes, mut in_episode) = (0usize, 0, 0, 0, false);
    let end = Instant::now() + ctx.ms(8000);
    while pos < TOTAL && Instant::now() < end {
        let n = (1 + rng.below(48 * 1024) as usize).min(TOTAL - pos);
        let r = wl.write(pair.fd, &pattern(pos as u64, n));
        match r {
            Ok(()) => {
                pos += n;
                writes += 1;
                in_episode = false;
            }
            Err(DriverError::QueueFull { .. }) => {
                refused += 1;
                if !in_episode {
                    episodes += 1;
                    in_episode = true;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => {
                o.fail(format!("write at stream offset {pos}: {e}"));
                break;
            }
        }
    }
    *lock(&done) = Some(pos);
    let got = reader.join().map_err(|_| "the reader thread panicked")?;
    o.saw(format!(
        "{writes} successful writes ({pos} bytes), {refused} QueueFull in {episodes} episodes; peer read {} bytes",
        got.len()
    ));
    if episodes == 0 {
        return Err("no QueueFull episode happened: the check did not exercise the clause".into());
    }
    if let Some(i) = first_mismatch(&got, pos) {
        o.fail(format!(
            "the peer's stream differs from the accepted writes at offset {i} (read {}, accepted {pos})",
            got.len()
        ));
    }
    let _ = wl.unregister_conn(pair.fd);
    Ok(())
}

// ---- driver.write.inline-once ----

/// Measures what one `send(2)` takes on a fresh pair (16 KiB send buffer, large peer
/// receive buffer, peer not reading). Then, with the worker held busy in another
/// connection's `on_recv` (so it cannot flush), writes 1 MiB on an identical registered
/// pair: the call must return within 50 ms, and what reached the kernel during it must
/// not exceed what one `send` takes (a loop of sends takes the peer's whole window).
/// After release, the worker must deliver the whole 1 MiB.
pub fn write_inline_once(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("write(1 MiB) to a non-reading peer returns Ok within 50 ms");
    o.expect("bytes handed to the kernel by the call itself ≤ 2 × what one send(2) takes on an identical fresh pair (one write(2) inline)");
    o.expect("after the worker is free again, the peer receives all 1 MiB in order");
    const TOTAL: usize = 1 << 20;
    const SNDBUF: usize = 16 * 1024;
    const RCVBUF: usize = 1 << 20;
    let data = pattern(0, TOTAL);
    let one_send = {
        let pair = Pair::new(Some(SNDBUF), Some(RCVBUF)).or_error("socket pair")?;
        match socket::send(pair.fd, &data) {
            Ok(n) => n,
            Err(e) => return Err(format!("calibration send: {e}").into()),
        }
    };
    o.saw(format!(
        "one send(2) of 1 MiB on a fresh pair took {one_send} bytes"
    ));
    let server = Server::with_workers(ctx, 1)?;
    let wl = server.worker_loop(0);
    let mut pair = Pair::new(Some(SNDBUF), Some(RCVBUF)).or_error("socket pair")?;
    let fd = pair.fd;
    let (_seen, r) = register_seen(&wl, fd);
    r.or_error("register_conn")?;
    let mut hold = Hold::start(&wl, ctx)?;
    // Timed where it runs: out of process the target measures its own call, so the
    // protocol's base64 and JSON of 1 MiB are not counted against the engine.
    let (r, took) = wl.write_timed(fd, &data);
    o.saw(format!(
        "write(1 MiB) with the worker held: {} in {took:?} (as the target measured it)",
        describe(&r)
    ));
    o.check(r.is_ok(), || format!("write: {}", describe(&r)));
    o.check(took <= ctx.ms(50), || {
        format!("write took {took:?}, allowed 50 ms: it blocked")
    });
    // The worker is held: whatever reaches the peer now was handed over by the call.
    let peer_fd = pair.peer.as_ref().map_or(-1, |p| p.as_raw_fd());
    let mut inline = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let peer = pair.peer();
    let _ = peer.set_nonblocking(true);
    let settled = wait_until(ctx.ms(2000), || {
        while let Ok(n) = peer.read(&mut buf) {
            if n == 0 {
                break;
            }
            inline.extend_from_slice(&buf[..n]);
        }
        matches!(kernel_held(fd, peer_fd), Ok((0, 0)))
    });
    o.saw(format!(
        "with the worker still held, the peer drained {} bytes",
        inline.len()
    ));
    if !settled || !hold.entered.load(SeqCst) {
        return Err("the kernel queues did not drain while the worker was held".into());
    }
    o.check(inline.len() <= 2 * one_send, || {
        format!(
            "the write call handed {} bytes to the kernel; one send(2) takes {one_send}: it looped on write(2)",
            inline.len()
        )
    });
    hold.release();
    let rest = read_exactly(pair.peer(), TOTAL - inline.len(), ctx.ms(5000), ctx.ms(50));
    inline.extend_from_slice(&rest);
    o.saw(format!(
        "after release the peer read {} more bytes ({} in all)",
        rest.len(),
        inline.len()
    ));
    if let Some(i) = first_mismatch(&inline, TOTAL) {
        o.fail(format!(
            "the peer's stream differs from the write at offset {i} (read {})",
            inline.len()
        ));
    }
    drop(hold);
    let _ = wl.unregister_conn(fd);
    Ok(())
}

// ---- driver.write.concurrent ----

/// 8 threads each write 20 messages of 64 KiB (every 8-byte word = thread << 32 | seq)
/// to one fd with a small send buffer while the peer reads; the peer's stream, cut into
/// 64 KiB blocks, must hold each message whole, once, and each thread's in order.
pub fn write_concurrent(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect("the peer reads 160 whole 64 KiB messages: no block mixes two writes, each (thread, seq) once, per-thread order kept");
    const THREADS: u64 = 8;
    const MSGS: u64 = 20;
    const LEN: usize = 64 * 1024;
    let total = (THREADS * MSGS) as usize * LEN;
    let server = Server::start(ctx, ctx.config())?;
    let wl = server.worker_loop(0);
    let mut pair = Pair::new(Some(16 * 1024), None).or_error("socket pair")?;
    let fd = pair.fd;
    let (_seen, r) = register_seen(&wl, fd);
    r.or_error("register_conn")?;
    let Some(mut peer) = pair.peer.take() else {
        return Err("no peer".into());
    };
    let within = ctx.ms(10_000);
    let reader = std::thread::spawn(move || {
        read_exactly(&mut peer, total, within, Duration::from_millis(50))
    });
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (wl, errors) = (wl.clone(), &errors);
            s.spawn(move || {
                for seq in 0..MSGS {
                    let word = (t << 32 | seq).to_le_bytes();
                    let msg: Vec<u8> = word.iter().copied().cycle().take(LEN).collect();
                    let end = Instant::now() + Duration::from_secs(5);
                    loop {
                        match wl.write(fd, &msg) {
                            Ok(()) => break,
                            Err(DriverError::QueueFull { .. }) if Instant::now() < end => {
                                std::thread::sleep(Duration::from_millis(1))
                            }
                            Err(e) => {
                                lock(errors).push(format!("thread {t} msg {seq}: {e}"));
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    let got = reader.join().map_err(|_| "the reader thread panicked")?;
    let errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    o.saw(format!(
        "peer read {} bytes of {total}; write errors: {errors:?}",
        got.len()
    ));
    for e in &errors {
        o.fail(e.clone());
    }
    o.check(got.len() == total, || {
        format!("peer read {} bytes, expected {total}", got.len())
    });
    let mut next = [0u64; THREADS as usize];
    let mut mixed = 0;
    let mut first_bad = None;
    for (i, block) in got.chunks(LEN).enumerate() {
        let w = &block[..8.min(block.len())];
        let uniform = block.len() == LEN && block.chunks(8).all(|c| c == w);
        let word = u64::from_le_bytes(w.try_into().unwrap_or([0xff; 8]));
        let (t, seq) = ((word >> 32) as usize, word & 0xffff_ffff);
        if !uniform || t >= THREADS as usize || next[t] != seq {
            mixed += 1;
            first_bad.get_or_insert(i);
            continue;
        }
        next[t] += 1;
    }
    o.saw(format!(
        "{mixed} of {} blocks are not a whole message in sequence",
        got.len().div_ceil(LEN)
    ));
    o.check(mixed == 0, || {
        format!(
            "{mixed} blocks mix writes or break per-thread order (first at offset {})",
            first_bad.unwrap_or(0) * LEN
        )
    });
    let _ = wl.unregister_conn(fd);
    Ok(())
}

// ---- driver.no-sigpipe ----

/// Holds the worker busy (so it cannot notice the close and unregister the fd), makes
/// one peer reset (linger 0) and another close normally, then writes on each until an
/// error and three more times. Every error must be EPIPE or ECONNRESET, and a counting
/// SIGPIPE handler (installed for the duration) must see no SIGPIPE.
pub fn no_sigpipe(ctx: &Ctx, o: &mut Outcome) -> Checked {
    o.expect(
        "writes after the peer is gone (RST, or FIN then RST): Err(Io) with EPIPE or ECONNRESET",
    );
    o.expect("no SIGPIPE is raised (counted by a temporary handler) and the process survives");
    let server = Server::with_workers(ctx, 1)?;
    let wl = server.worker_loop(0);
    let counter = engine::sys::signal::SigpipeCounter::install()
        .or_error("installing the SIGPIPE counter")?;
    // An engine in another process counts its own.
    let remote_before = match server.engine().sigpipes() {
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => return Err(format!("asking the target for its SIGPIPE count: {e}").into()),
        None => None,
    };
    let (mut rst, mut fin) = match (Pair::new(None, None), Pair::new(None, None)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Err(format!("socket pair: {e}").into()),
    };
    for p in [&rst, &fin] {
        if let (_, Err(e)) = register_seen(&wl, p.fd) {
            return Err(format!("register_conn: {e}").into());
        }
    }
    let hold = Hold::start(&wl, ctx)?;
    if let Some(p) = rst.peer.take() {
        socket::set_linger(p.as_raw_fd(), Some(Duration::ZERO)).or_error("SO_LINGER")?;
    }
    drop(fin.peer.take());
    for (what, pair) in [("RST", &rst), ("FIN", &fin)] {
        let mut errors = Vec::new();
        let mut oks = 0;
        let end = Instant::now() + ctx.ms(2000);
        while errors.len() < 4 && Instant::now() < end {
            match wl.write(pair.fd, b"are you there?") {
                Ok(()) if errors.is_empty() => {
                    oks += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                r => errors.push(r),
            }
        }
        o.saw(format!(
            "{what} peer: {oks} writes Ok, then {:?}",
            errors.iter().map(describe).collect::<Vec<_>>()
        ));
        o.check(errors.len() == 4, || {
            format!("{what} peer: writes kept succeeding for 2 s")
        });
        for r in &errors {
            let errno = r.as_ref().err().and_then(|e| e.raw_os_error());
            o.check(
                matches!(errno, Some(libc::EPIPE | libc::ECONNRESET)),
                || {
                    format!(
                        "{what} peer: write returned {}, expected Io(EPIPE or ECONNRESET)",
                        describe(r)
                    )
                },
            );
        }
    }
    let n = match (remote_before, server.engine().sigpipes()) {
        (Some(before), Some(Ok(after))) => after.saturating_sub(before),
        (Some(_), other) => {
            let why = match other {
                Some(Err(e)) => e,
                _ => "no count".to_string(),
            };
            o.fail(format!(
                "the target's process did not answer after the writes ({why}): it may have died of SIGPIPE"
            ));
            return Ok(());
        }
        (None, _) => counter.count(),
    };
    o.saw(format!("SIGPIPE deliveries while writing: {n}"));
    o.check(n == 0, || {
        format!("{n} SIGPIPE raised by driver writes (fatal without a handler)")
    });
    drop(hold);
    drop(counter);
    let _ = wl.unregister_conn(rst.fd);
    let _ = wl.unregister_conn(fin.fd);
    Ok(())
}
