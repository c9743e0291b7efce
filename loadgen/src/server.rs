//! A server this process started as a child process (`loadgen serve`, nginx, a
//! user's command; `bench`), stopped when dropped. (An engine in this process is
//! `scenarios::targets::reference::Running`.) A child is pinned to a CPU with `taskset` where it can be, its stderr
//! is drained (the last lines kept for error messages) and its CPU time is read from
//! `/proc/PID/stat`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// A started server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    running: ChildProcess,
}

#[derive(Debug)]
struct ChildProcess {
    child: Child,
    pinned_cpu: Option<usize>,
    clk_tck: f64,
    /// The last lines of its stderr, for error messages.
    tail: Arc<Mutex<Vec<String>>>,
    /// A temporary directory of its own (nginx), removed on drop.
    dir: Option<PathBuf>,
}

/// The CPU started servers are pinned to: the last one this process may use.
fn server_cpu() -> Option<usize> {
    engine::sys::thread::allowed_cpus()
        .ok()
        .and_then(|c| c.last().copied())
}

impl Server {
    /// Starts `program args` pinned with `taskset` (which execs it, so the pid is the
    /// server's), or unpinned when taskset cannot run; stderr piped and drained, the
    /// rest null. It is expected on `addr` (see [`Server::wait_listening`]); every
    /// stderr line also goes to the returned channel.
    pub fn spawn(
        program: &Path,
        args: &[String],
        addr: SocketAddr,
    ) -> Result<(Server, mpsc::Receiver<String>), String> {
        let spawn = |cmd: &mut Command| {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
        };
        let pinned = server_cpu().and_then(|cpu| {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(cpu.to_string()).arg(program).args(args);
            spawn(&mut cmd).ok().map(|child| (child, Some(cpu)))
        });
        let (mut child, pinned_cpu) = match pinned {
            Some(c) => c,
            None => (
                spawn(Command::new(program).args(args))
                    .map_err(|e| format!("bench: cannot start {}: {e}", program.display()))?,
                None,
            ),
        };
        let tail = Arc::new(Mutex::new(Vec::new()));
        let lines = drain_stderr(&mut child, &tail);
        let server = Server {
            addr,
            running: ChildProcess {
                child,
                pinned_cpu,
                clk_tck: clk_tck(),
                tail,
                dir: None,
            },
        };
        Ok((server, lines))
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets where it listens (a child that says so on stderr).
    pub fn set_addr(&mut self, addr: SocketAddr) {
        self.addr = addr;
    }

    /// Gives the child a temporary directory, removed when it stops.
    pub fn own_dir(&mut self, d: PathBuf) {
        self.running.dir = Some(d);
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.running.child.id()
    }

    /// The CPU the child is pinned to.
    pub fn pinned_cpu(&self) -> Option<usize> {
        self.running.pinned_cpu
    }

    /// The last lines of the child's stderr, joined with ` | `.
    pub fn stderr_tail(&self) -> String {
        self.running
            .tail
            .lock()
            .map(|t| t.join(" | "))
            .unwrap_or_default()
    }

    /// CPU seconds (user + system, all threads) the child has used so far.
    pub fn cpu_s(&self) -> Option<f64> {
        let ChildProcess { child, clk_tck, .. } = &self.running;
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).ok()?;
        let after = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // After the command name: state is field 3, utime 14, stime 15.
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) as f64 / clk_tck)
    }

    /// Polls until the child accepts a connection on its address; an error (the child
    /// is then killed by drop) when it exits or does not within `deadline`.
    pub fn wait_listening(&mut self, what: &str, deadline: Duration) -> Result<(), String> {
        let end = Instant::now() + deadline;
        loop {
            let exited = self.running.child.try_wait().ok().flatten();
            if let Some(status) = exited {
                // Let the stderr reader catch up with the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return Err(format!(
                    "bench: {what} exited ({status}) before accepting connections on {} (stderr: {:?})",
                    self.addr,
                    self.stderr_tail()
                ));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= end {
                return Err(format!(
                    "bench: {what} did not accept connections on {} within {:.1} s (stderr: {:?}): check that it listens on {{addr}} (or raise --start-timeout)",
                    self.addr,
                    deadline.as_secs_f64(),
                    self.stderr_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let ChildProcess { child, dir, .. } = &mut self.running;
        let _ = child.kill();
        let _ = child.wait();
        if let Some(dir) = dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Reads the child's stderr to the end (so it never blocks on a full pipe): every line
/// goes to the returned channel and the last few to `tail`.
fn drain_stderr(child: &mut Child, tail: &Arc<Mutex<Vec<String>>>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel::<String>();
    if let Some(stderr) = child.stderr.take() {
        let tail = Arc::clone(tail);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut t) = tail.lock() {
                    if t.len() == 5 {
                        t.remove(0);
                    }
                    t.push(line.clone());
                }
                let _ = tx.send(line);
            }
        });
    }
    rx
}

/// Clock ticks per second (`getconf CLK_TCK`, else 100).
fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}
