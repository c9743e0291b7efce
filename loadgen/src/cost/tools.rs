//! Running a server command under one measuring tool (cachegrind, memcheck, strace)
//! for one workload, stopping it with SIGTERM so that the tool writes its counts, and
//! reading those counts.
//!
//! Instructions are whole-process totals (cachegrind writes them at exit), so the runs of
//! N1 and N2 requests are two processes and start-up and shutdown cancel in the
//! difference. Allocations and syscalls are counted inside windows instead, in one
//! process: the client marks the start, the point after N1 and the point after N2
//! requests, each after a quiet gap in which the server has settled into its wait. For
//! memcheck a mark is a snapshot of the client heap's allocation count (`vgdb v.info
//! memory`); for strace it is the time (`-ttt`), and a syscall counts in a window when it
//! was entered inside it. So what a server does at start-up and shutdown depending on
//! timing (a poll loop, a race with SIGTERM) does not count at all.
//!
//! The command is started as `sh -c 'exec TOOL OPTIONS COMMAND'`: the shell parses
//! the user's command, and the tool runs the server program itself (valgrind does not
//! follow an `exec`, so `COMMAND` must be one program with its arguments, as for
//! `loadgen bench`). Leading `NAME=VALUE` words of the command become its environment.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::workload::{Client, Workload};

/// How long a server may take to exit after SIGTERM (valgrind writes its files then).
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// A measuring tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// valgrind's cachegrind without cache simulation: instructions, by function.
    Cachegrind,
    /// valgrind's memcheck (undefined-value tracking off): heap allocations.
    Memcheck,
    /// strace -f: every syscall of every thread, with its result.
    Strace,
}

impl Tool {
    /// Every tool, in the order they are run.
    pub const ALL: [Tool; 3] = [Tool::Cachegrind, Tool::Memcheck, Tool::Strace];

    fn program(self) -> &'static str {
        match self {
            Tool::Cachegrind | Tool::Memcheck => "valgrind",
            Tool::Strace => "strace",
        }
    }

    /// The tool's words before the server command; `out` is where it writes.
    fn prefix(self, out: &Path) -> String {
        let out = shell_quote(&out.display().to_string());
        match self {
            Tool::Cachegrind => format!(
                "valgrind --tool=cachegrind --cache-sim=no --log-file={out}.log --cachegrind-out-file={out}"
            ),
            Tool::Memcheck => format!(
                "valgrind --tool=memcheck --undef-value-errors=no --leak-check=no --vgdb=yes --log-file={out}"
            ),
            Tool::Strace => format!("strace -f -qq -ttt -s 0 -o {out}"),
        }
    }
}

/// Checks that the tools can run: a one-line error naming the missing one.
pub fn check_installed() -> Result<(), String> {
    for program in ["valgrind", "strace"] {
        let ok = Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!(
                "{program} is not installed (or not on PATH): `loadgen cost` needs valgrind and \
                 strace; install them, e.g. apt-get install valgrind strace"
            ));
        }
    }
    Ok(())
}

/// What one run of a tool counted, for the whole life of the server process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Instructions (cachegrind's `summary`).
    pub instructions: u64,
    /// Instructions by function (self cost).
    pub functions: BTreeMap<String, u64>,
    /// Heap allocations (memcheck's `total heap usage`).
    pub allocations: u64,
    /// Syscalls by name (strace), epoll waits that returned no event left out.
    pub syscalls: BTreeMap<String, u64>,
    /// epoll waits that returned no event (timer wakeups: they depend on time).
    pub empty_waits: u64,
    /// Bytes the write-family syscalls returned as written, to any fd.
    pub bytes_written: u64,
}

/// One server command: a template with `{addr}` (or `{port}`), or a fixed address.
#[derive(Debug, Clone)]
pub struct ServerCmd {
    /// What the documents call it.
    pub name: String,
    /// The command as given.
    pub template: String,
    /// Where it listens when the template has no `{addr}` / `{port}`.
    pub fixed_addr: Option<SocketAddr>,
}

/// How long the client waits, idle, before a mark: the server has then answered and
/// gone back to its wait (generous: the server runs under strace or valgrind on a
/// loaded machine).
const QUIET: Duration = Duration::from_millis(250);

/// Runs `cmd` under `tool` for N1 and N2 requests of `w` (`ns`), in scratch files under
/// `dir`; returns the requests made and the counts for N1 and for N2: for cachegrind
/// two processes (whole-process totals), for memcheck and strace one process with
/// windows from the start mark to the marks after N1 and after N2 requests.
pub fn run(
    tool: Tool,
    cmd: &ServerCmd,
    w: Workload,
    ns: [u64; 2],
    dir: &Path,
    start_timeout: Duration,
) -> Result<([u64; 2], [Counts; 2]), String> {
    if tool == Tool::Cachegrind {
        let (r1, c1) = once(tool, cmd, w, dir, start_timeout, &mut |c, _| {
            Ok(([c.requests(w, ns[0])?, 0], Vec::new()))
        })?;
        let (r2, c2) = once(tool, cmd, w, dir, start_timeout, &mut |c, _| {
            Ok(([c.requests(w, ns[1])?, 0], Vec::new()))
        })?;
        return Ok(([r1[0], r2[0]], [c1.counts, c2.counts]));
    }
    let (requests, out) = once(tool, cmd, w, dir, start_timeout, &mut |c, pid| {
        let mut marks = vec![mark(tool, pid)?];
        let r1 = c.requests(w, ns[0])?;
        marks.push(mark(tool, pid)?);
        let r2 = r1 + c.requests(w, ns[1].saturating_sub(r1))?;
        marks.push(mark(tool, pid)?);
        Ok(([r1, r2], marks))
    })?;
    let m = &out.marks;
    let windows = match tool {
        Tool::Memcheck => {
            let alloc = |i: usize| Counts {
                allocations: m[i].allocations.saturating_sub(m[0].allocations),
                ..Counts::default()
            };
            [alloc(1), alloc(2)]
        }
        _ => {
            let w2 = window(&out.events, m[0].time, m[2].time);
            if w2.syscalls.is_empty() {
                return Err(format!(
                    "{} ({} under strace): no syscall in the measured window of {} \
                     events: the server's trace could not be read (report it with the \
                     strace version)",
                    cmd.name,
                    w.name(),
                    out.events.len()
                ));
            }
            [window(&out.events, m[0].time, m[1].time), w2]
        }
    };
    Ok((requests, windows))
}

/// A mark of a windowed run: the time and (memcheck) the allocations so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Mark {
    /// Seconds since the Unix epoch (strace's `-ttt` clock).
    pub time: f64,
    /// The client heap's allocations so far (memcheck).
    pub allocations: u64,
}

/// Waits [`QUIET`], then takes a mark.
fn mark(tool: Tool, pid: u32) -> Result<Mark, String> {
    std::thread::sleep(QUIET);
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| format!("the clock is before 1970: {e}"))?
        .as_secs_f64();
    let allocations = if tool == Tool::Memcheck {
        vgdb_allocations(pid)?
    } else {
        0
    };
    Ok(Mark { time, allocations })
}

/// The client heap's allocations so far, from valgrind's gdbserver (`v.info memory`:
/// the `client` arena's `totalloc-blocks`).
fn vgdb_allocations(pid: u32) -> Result<u64, String> {
    let out = Command::new("vgdb")
        .arg(format!("--pid={pid}"))
        .args(["v.info", "memory"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run vgdb (part of valgrind): {e}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    parse_vgdb_memory(&text).ok_or_else(|| {
        format!(
            "vgdb --pid={pid} v.info memory gave no `client` arena line: {:?}",
            text.lines().last().unwrap_or("")
        )
    })
}

/// The `client` arena's allocated blocks in `v.info memory`'s output.
pub fn parse_vgdb_memory(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| {
        l.split_once(' ')
            .is_some_and(|(_, r)| r.trim_start().starts_with("client"))
    })?;
    let before = line.split("totalloc-blocks").next()?;
    let field = before.rsplit(',').next()?.trim();
    field
        .split('/')
        .next()?
        .trim()
        .replace(',', "")
        .parse()
        .ok()
}

/// What a run does with the client after the warm-up (given the tool's pid): the
/// requests it made (after N1, after N2) and its marks.
type Body<'a> = dyn FnMut(&mut Client, u32) -> Result<([u64; 2], Vec<Mark>), String> + 'a;

/// One server process under `tool`: started, driven by `body` (after the warm-up)
/// with the client and the tool's pid, stopped with SIGTERM; returns what `body`
/// returned and what the tool wrote.
fn once(
    tool: Tool,
    cmd: &ServerCmd,
    w: Workload,
    dir: &Path,
    start_timeout: Duration,
    body: &mut Body<'_>,
) -> Result<([u64; 2], Output), String> {
    let what = format!("{} ({} under {})", cmd.name, w.name(), tool.program());
    let out = dir.join(format!("{}-{}.out", w.name(), tool.program()));
    let _ = std::fs::remove_file(&out);
    let addr = match cmd.fixed_addr {
        Some(a) => a,
        None => free_addr()?,
    };
    let line = cmd
        .template
        .replace("{addr}", &addr.to_string())
        .replace("{port}", &addr.port().to_string());
    let (env, rest) = split_env(&line);
    let stderr_path = dir.join("stderr.txt");
    let stderr = std::fs::File::create(&stderr_path)
        .map_err(|e| format!("cannot create {}: {e}", stderr_path.display()))?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {} {rest}", tool.prefix(&out)))
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("{what}: cannot start sh: {e}"))?;
    let result = (|| {
        let first = wait_accepting(&mut child, addr, start_timeout, &stderr_path)?;
        let mut client = Client::new(addr, first)?;
        client.warm_up(w)?;
        body(&mut client, child.id())
    })()
    .map_err(|e| format!("{what}: {e}"));
    let stopped = stop(&mut child).map_err(|e| format!("{what}: {e}"));
    let (requests, marks) = result?;
    stopped?;
    let mut output = read_output(tool, &out).map_err(|e| format!("{what}: {e}"))?;
    output.marks = marks;
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(out.with_extension("out.log"));
    Ok((requests, output))
}

/// What a tool wrote, and the marks of the run.
#[derive(Debug, Clone, Default)]
struct Output {
    /// Cachegrind's totals.
    counts: Counts,
    /// strace's syscalls.
    events: Vec<Event>,
    marks: Vec<Mark>,
}

/// A loopback address whose port was free a moment ago.
fn free_addr() -> Result<SocketAddr, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

/// Waits until the server accepts a connection; returns it.
fn wait_accepting(
    child: &mut Child,
    addr: SocketAddr,
    start_timeout: Duration,
    stderr: &Path,
) -> Result<TcpStream, String> {
    let end = Instant::now() + start_timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the server exited ({status}) before accepting connections on {addr}: {}",
                tail(stderr)
            ));
        }
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            return Ok(s);
        }
        if Instant::now() >= end {
            return Err(format!(
                "the server did not accept connections on {addr} within {:.0} s (raise \
                 --start-timeout, or check that it listens on {{addr}}): {}",
                start_timeout.as_secs_f64(),
                tail(stderr)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last lines of the server's stderr, for an error message.
fn tail(stderr: &Path) -> String {
    let text = std::fs::read_to_string(stderr).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    if lines.is_empty() {
        "it wrote nothing on stderr".into()
    } else {
        let mut lines = lines;
        lines.reverse();
        format!("its stderr ends {:?}", lines.join(" | "))
    }
}

/// Sends SIGTERM to the server (the tool's process under valgrind, strace's child under
/// strace) and waits until it has exited.
fn stop(child: &mut Child) -> Result<(), String> {
    if child.try_wait().ok().flatten().is_some() {
        return Err("the server exited during the run".into());
    }
    let mut pid = child.id();
    while let Some(c) = first_child(pid) {
        pid = c;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
    let end = Instant::now() + EXIT_TIMEOUT;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return Ok(());
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the server did not exit within {} s of SIGTERM: killed",
                EXIT_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The first child process of `pid`, if any (`/proc/PID/task/PID/children`).
fn first_child(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Leading `NAME=VALUE` words of a command line (no quotes), and the rest.
pub fn split_env(line: &str) -> (Vec<(String, String)>, &str) {
    let mut env = Vec::new();
    let mut rest = line.trim_start();
    while let Some((word, after)) = rest.split_once(char::is_whitespace) {
        let Some((name, value)) = word.split_once('=') else {
            break;
        };
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !value.contains(['\'', '"', '\\', '$', '`']);
        if !valid {
            break;
        }
        env.push((name.to_string(), value.to_string()));
        rest = after.trim_start();
    }
    (env, rest)
}

/// `s` in single quotes for sh.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Reads what `tool` wrote to `out` (memcheck's counts come from the marks).
fn read_output(tool: Tool, out: &Path) -> Result<Output, String> {
    if tool == Tool::Memcheck {
        return Ok(Output::default());
    }
    let text = std::fs::read_to_string(out).map_err(|e| {
        format!(
            "{} wrote no output file {} ({e}): did the server exit on SIGTERM?",
            tool.program(),
            out.display()
        )
    })?;
    match tool {
        Tool::Cachegrind => Ok(Output {
            counts: parse_cachegrind(&text)
                .ok_or_else(|| format!("{}: no `summary:` line", out.display()))?,
            ..Output::default()
        }),
        _ => Ok(Output {
            events: parse_strace(&text),
            ..Output::default()
        }),
    }
}

/// A cachegrind out file: the total and the self cost of each function (summed over
/// the files it appears in).
pub fn parse_cachegrind(text: &str) -> Option<Counts> {
    let mut functions: BTreeMap<String, u64> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut total = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("fn=") {
            current = Some(name.to_string());
        } else if let Some(v) = line.strip_prefix("summary:") {
            total = v.trim().parse().ok();
        } else if line.starts_with(|c: char| c.is_ascii_digit()) {
            let ir: Option<u64> = line.split_whitespace().nth(1).and_then(|v| v.parse().ok());
            if let (Some(f), Some(ir)) = (&current, ir) {
                *functions.entry(f.clone()).or_insert(0) += ir;
            }
        }
    }
    Some(Counts {
        instructions: total?,
        functions,
        ..Counts::default()
    })
}

/// The syscalls whose result is a byte count written.
const WRITES: [&str; 10] = [
    "write",
    "writev",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "send",
    "sendto",
    "sendmsg",
    "sendfile",
    "sendfile64",
];

/// One syscall strace saw: when it was entered, its name and its result.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Entry time, seconds since the Unix epoch.
    pub time: f64,
    /// The syscall's name.
    pub name: String,
    /// Its result, when a number.
    pub ret: Option<i64>,
}

/// `strace -f -ttt -o` output: every syscall with its entry time (an interrupted call
/// is one event: its `unfinished` line's time, its `resumed` line's result).
pub fn parse_strace(text: &str) -> Vec<Event> {
    let mut pending: BTreeMap<String, f64> = BTreeMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        // `PID TIME CALL` (pids are padded: split on runs of spaces), or `TIME CALL`
        // when strace traced one thread only.
        let (first, after) = split_word(line);
        let (pid, t, rest) = if first.contains('.') {
            ("", first, after)
        } else {
            let (t, rest) = split_word(after);
            (first, t, rest)
        };
        let Ok(t) = t.parse::<f64>() else { continue };
        if rest.starts_with("---") || rest.starts_with("+++") {
            continue;
        }
        if rest.ends_with("<unfinished ...>") && !rest.starts_with("<...") {
            pending.insert(pid.to_string(), t);
            continue;
        }
        let (name, entered) = match rest.strip_prefix("<... ") {
            Some(r) => (
                r.split(' ').next().unwrap_or(""),
                pending.remove(pid).unwrap_or(t),
            ),
            None => (rest.split('(').next().unwrap_or(""), t),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        {
            continue;
        }
        let ret = rest
            .rsplit_once(" = ")
            .and_then(|(_, r)| r.split_whitespace().next())
            .and_then(|r| r.parse().ok());
        out.push(Event {
            time: entered,
            name: name.to_string(),
            ret,
        });
    }
    out
}

/// The first word of `s` and the rest, both without leading spaces.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.split_once(' ') {
        Some((w, rest)) => (w, rest.trim_start()),
        None => (s, ""),
    }
}

/// The counts of the syscalls entered in `[from, to)`: by name, epoll waits that
/// returned no event apart, bytes written.
pub fn window(events: &[Event], from: f64, to: f64) -> Counts {
    let mut c = Counts::default();
    for e in events.iter().filter(|e| e.time >= from && e.time < to) {
        let name = e.name.as_str();
        if (name.starts_with("epoll_wait") || name.starts_with("epoll_pwait")) && e.ret == Some(0) {
            c.empty_waits += 1;
            continue;
        }
        if WRITES.contains(&name) {
            c.bytes_written += e.ret.filter(|&r| r > 0).unwrap_or(0) as u64;
        }
        *c.syscalls.entry(name.to_string()).or_insert(0) += 1;
    }
    c
}

/// A scratch directory for the tools' files, removed on drop.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// A new directory under the system's temporary directory.
    pub fn new() -> Result<Scratch, String> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "loadgen-cost-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Scratch(dir))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strace_lines_are_counted_by_name_and_entry_time_with_empty_waits_and_bytes_apart() {
        let text = "\
12  10.000001 epoll_wait(4, [...], 256, 250)    = 1
12 10.000002 read(6, \"\"..., 65536)             = 79
12 10.000003 sendto(6, \"\"..., 115, MSG_NOSIGNAL, NULL, 0) = 115
12 10.000004 epoll_wait(4, [], 256, 250)    = 0
12 10.000005 accept4(3, NULL, NULL, SOCK_CLOEXEC|SOCK_NONBLOCK) = -1 EAGAIN (Resource temporarily unavailable)
12 10.000006 epoll_wait(4,  <unfinished ...>
13 10.000007 --- SIGTERM {si_signo=SIGTERM} ---
13 10.000008 write(2, \"\"..., 40) = 40
12 11.000000 <... epoll_wait resumed>[...], 256, -1) = 1
12 11.000001 read(6, \"\"..., 65536)             = 79
12 11.000002 +++ killed by SIGTERM +++
";
        let events = parse_strace(text);
        assert_eq!(events.len(), 8);
        // The resumed wait counts at its entry time, inside the window.
        let c = window(&events, 10.0, 10.5);
        assert_eq!(c.syscalls.get("epoll_wait"), Some(&2));
        assert_eq!(c.syscalls.get("read"), Some(&1));
        assert_eq!(c.syscalls.get("accept4"), Some(&1));
        assert_eq!(c.syscalls.get("write"), Some(&1));
        assert_eq!(c.empty_waits, 1);
        assert_eq!(c.bytes_written, 155);
        assert_eq!(c.syscalls.len(), 5);
        let later = window(&events, 10.5, 12.0);
        assert_eq!(later.syscalls.get("read"), Some(&1));
        assert_eq!(later.syscalls.len(), 1);
    }

    #[test]
    fn vgdb_memory_gives_the_client_arenas_allocated_blocks() {
        let text = "sending command v.info memory to pid 27292\n--27292-- core    :    12,582,912/    8,388,608 max/curr mmap'd, 0/1 unsplit/split sb unmmap'd,      4,121,968/    3,895,048 max/curr,       52999/  51872488 totalloc-blocks/bytes,       53508 searches 8 rzB\n--27292-- client  :     4,194,304/    4,194,304 max/curr mmap'd, 0/0 unsplit/split sb unmmap'd,        351,376/      351,376 max/curr,         600/    351536 totalloc-blocks/bytes,         599 searches 24 rzB\n";
        assert_eq!(parse_vgdb_memory(text), Some(600));
        assert_eq!(parse_vgdb_memory("no arena"), None);
    }

    #[test]
    fn cachegrind_files_give_the_total_and_self_cost_by_function() {
        let text = "events: Ir\nfl=a.rs\nfn=f\n1 10\n2 5\nfl=b.rs\nfn=g\n3 7\nfi=c.rs\n4 1\nfl=d.rs\nfn=f\n9 2\nsummary: 25\n";
        let c = parse_cachegrind(text).unwrap();
        assert_eq!(c.instructions, 25);
        assert_eq!(c.functions.get("f"), Some(&17));
        assert_eq!(c.functions.get("g"), Some(&8));
        assert!(parse_cachegrind("events: Ir\n").is_none());
    }

    #[test]
    fn leading_assignments_become_the_environment() {
        let (env, rest) = split_env("A=1 B_2=x ./srv --listen {addr} C=3");
        assert_eq!(
            env,
            vec![("A".into(), "1".into()), ("B_2".into(), "x".into())]
        );
        assert_eq!(rest, "./srv --listen {addr} C=3");
        let (env, rest) = split_env("./srv a=b");
        assert!(env.is_empty());
        assert_eq!(rest, "./srv a=b");
    }
}
