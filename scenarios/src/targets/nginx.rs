//! nginx as a target: the HTTP clauses against a server nobody here wrote.
//!
//! Each instance is an `nginx` process (`master_process off`, one worker process, so
//! the process that answers is the one started) with a configuration generated from
//! the scenario's [`Config`]: the limits and timeouts map onto nginx's directives
//! (see [`nginx_conf`]). nginx serves `/` (13 bytes, like the reference engine) and
//! `/id`; it has none of the other test routes, no accept or worker control and no
//! driver API, so the scenarios needing them are skipped.
//!
//! The launcher parts that `loadgen bench --target nginx` shares live here too:
//! [`Nginx::find`] (the binary, its version, the install hint), [`ConfDir`] (the
//! temporary directory with the config and the error log), [`config`] (the directives
//! every generated config has) and [`ConfDir::failure`] (why nginx did not start).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::sync::lock;
use engine::{Config, EngineError};

use super::{on_free_port, Capability, Instance, StartError, Target};

/// How long an nginx instance may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(5);

/// nginx from `PATH` (or the given binary), started per scenario.
#[derive(Debug, Clone)]
pub struct Nginx {
    binary: PathBuf,
    version: String,
}

impl Nginx {
    /// Finds `nginx` (`binary`, else on `PATH`) and its version. Errors say how to
    /// install it.
    pub fn find(binary: Option<&Path>) -> Result<Nginx, String> {
        let binary = match binary {
            Some(b) => b.to_path_buf(),
            None => find_on_path("nginx").ok_or(
                "--target nginx: nginx is not on PATH: install nginx-light (apt-get install nginx-light)",
            )?,
        };
        let out = Command::new(&binary).arg("-v").output().map_err(|e| {
            format!(
                "--target nginx: cannot run {}: {e}; install it (apt-get install nginx-light)",
                binary.display()
            )
        })?;
        // `nginx -v` prints `nginx version: nginx/1.22.1` on stderr.
        let text = String::from_utf8_lossy(&out.stderr);
        let version = text
            .trim()
            .strip_prefix("nginx version: ")
            .unwrap_or(text.trim())
            .to_string();
        Ok(Nginx { binary, version })
    }

    /// The binary that runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// `nginx/1.22.1`.
    pub fn version(&self) -> &str {
        &self.version
    }
}

impl Target for Nginx {
    fn name(&self) -> String {
        format!("nginx ({})", self.version)
    }
    fn capabilities(&self) -> &[Capability] {
        &[Capability::Http, Capability::Config]
    }
    fn start(&self, cfg: &Config, tag: &str) -> Result<Arc<dyn Instance>, String> {
        Ok(Arc::new(NginxInstance::start(&self.binary, cfg, tag)?))
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A new temporary directory for one nginx process: its config, its error log, its pid
/// file and its temp paths. Removed on drop unless [`ConfDir::keep`] hands it on.
#[derive(Debug)]
pub struct ConfDir {
    // Empty once `keep` has handed it on.
    path: PathBuf,
}

impl ConfDir {
    /// Creates `<temp>/loadgen-<label>-<pid>-<n>` (`n` counts the directories this
    /// process made). The error names the directory.
    pub fn create(label: &str) -> Result<ConfDir, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "loadgen-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok(ConfDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `nginx.conf` (`text`, see [`config`]). The error names the file.
    pub fn write_conf(&self, text: &str) -> Result<(), String> {
        let conf = self.path().join("nginx.conf");
        std::fs::write(&conf, text).map_err(|e| format!("writing {}: {e}", conf.display()))
    }

    /// The command-line arguments that run nginx on this directory: `-p DIR -c
    /// DIR/nginx.conf -e DIR/error.log` (so even the errors before the config is read
    /// land in the directory).
    pub fn args(&self) -> Vec<String> {
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let dir = self.path();
        vec![
            "-p".to_string(),
            s(dir),
            "-c".into(),
            s(&dir.join("nginx.conf")),
            "-e".into(),
            s(&dir.join("error.log")),
        ]
    }

    /// Why nginx did not start, from its error log: the line that says a port was
    /// taken (nginx retries a failed bind, then says "still could not bind()", so the
    /// line that says why comes first), else the last `[emerg]` line, else `None`.
    pub fn failure(&self) -> Option<String> {
        let log = std::fs::read_to_string(self.path().join("error.log")).ok()?;
        log.lines()
            .rev()
            .find(|l| l.contains("Address already in use"))
            .or_else(|| log.lines().rev().find(|l| l.contains("[emerg]")))
            .map(str::to_string)
    }

    /// The last line of the error log, if any.
    fn last_log_line(&self) -> Option<String> {
        let log = std::fs::read_to_string(self.path().join("error.log")).ok()?;
        log.lines().last().map(str::to_string)
    }

    /// Gives up ownership: the directory stays and the caller removes it.
    pub fn keep(mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }
}

impl Drop for ConfDir {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// An nginx configuration for one process in `dir`: no daemon, no master, one worker
/// process, `worker_connections`, no access log, the pid file, the error log and every
/// temp path inside `dir`; `http` (the caller's `http` directives and `server` block)
/// goes inside `http { }`.
pub fn config(dir: &Path, worker_connections: usize, http: &str) -> String {
    let d = dir.display();
    format!(
        "daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections {worker_connections}; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{http}}}
"
    )
}

/// Seconds (rounded up, at least 1) for an nginx time directive.
fn secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

/// The nginx configuration for `cfg` on `addr`, with its files under `dir`.
///
/// - `max_header_bytes` → `large_client_header_buffers 4 <n>` (nginx limits each
///   request line and header line to one buffer, and the block to 4 of them);
/// - `max_body_bytes` → `client_max_body_size`;
/// - `idle_timeout` → `keepalive_timeout`, `header_timeout` → `client_header_timeout`,
///   `write_timeout` → `send_timeout` (whole seconds: nginx's unit here);
/// - `workers` is not mapped: one nginx worker process (`master_process off`).
pub fn nginx_conf(cfg: &Config, addr: SocketAddr, dir: &Path, tag: &str) -> String {
    let tag = tag.replace(['"', '\\'], "");
    let http = format!(
        "    keepalive_requests 1000000;
    keepalive_timeout {idle}s;
    client_header_timeout {header}s;
    send_timeout {write}s;
    client_header_buffer_size 1k;
    large_client_header_buffers 4 {hdr};
    client_max_body_size {body};
    server {{
        listen {addr};
        location = /id {{
            default_type text/plain;
            return 200 \"{tag}\";
        }}
        location / {{
            default_type text/plain;
            return 200 \"Hello, World!\";
        }}
    }}
",
        idle = secs(cfg.idle_timeout),
        header = secs(cfg.header_timeout),
        write = secs(cfg.write_timeout),
        hdr = cfg.max_header_bytes.max(1024),
        body = cfg.max_body_bytes,
    );
    config(dir, 4096, &http)
}

/// One nginx process; killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct NginxInstance {
    child: std::sync::Mutex<Option<Child>>,
    addr: SocketAddr,
    // Dropped after `Drop::drop` has killed the process.
    dir: ConfDir,
    config: Config,
}

impl NginxInstance {
    fn start(binary: &Path, cfg: &Config, tag: &str) -> Result<NginxInstance, String> {
        let requested: SocketAddr = cfg
            .address
            .parse()
            .map_err(|e| format!("nginx: address {:?}: {e}", cfg.address))?;
        if requested.port() != 0 {
            return NginxInstance::start_on(binary, cfg, tag, requested).map_err(String::from);
        }
        on_free_port(|free| {
            let addr = SocketAddr::new(requested.ip(), free.port());
            NginxInstance::start_on(binary, cfg, tag, addr)
        })
        .map_err(String::from)
    }

    /// Starts nginx listening on `addr`.
    fn start_on(
        binary: &Path,
        cfg: &Config,
        tag: &str,
        addr: SocketAddr,
    ) -> Result<NginxInstance, StartError> {
        let dir = ConfDir::create("nginx").map_err(|e| format!("nginx: {e}"))?;
        dir.write_conf(&nginx_conf(cfg, addr, dir.path(), tag))
            .map_err(|e| format!("nginx: {e}"))?;
        let child = Command::new(binary)
            .args(dir.args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("nginx: cannot start {}: {e}", binary.display()))?;
        let inst = NginxInstance {
            child: std::sync::Mutex::new(Some(child)),
            addr,
            dir,
            config: Config {
                address: addr.to_string(),
                workers: 1,
                idle_timeout: Duration::from_secs(secs(cfg.idle_timeout)),
                header_timeout: Duration::from_secs(secs(cfg.header_timeout)),
                write_timeout: Duration::from_secs(secs(cfg.write_timeout)),
                max_header_bytes: cfg.max_header_bytes.max(1024),
                ..cfg.clone()
            },
        };
        let end = Instant::now() + START_DEADLINE;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(inst);
            }
            let exited = lock(&inst.child)
                .as_mut()
                .map(|c| matches!(c.try_wait(), Ok(Some(_))))
                .unwrap_or(true);
            if exited || Instant::now() >= end {
                let last = inst
                    .dir
                    .failure()
                    .or_else(|| inst.dir.last_log_line())
                    .unwrap_or_else(|| "no error log".to_string());
                return Err(StartError::from_output(format!(
                    "nginx did not accept connections on {addr} within {}s: {last}",
                    START_DEADLINE.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn kill(&self) {
        if let Some(mut c) = lock(&self.child).take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NginxInstance {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Instance for NginxInstance {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn effective_config(&self) -> Option<Config> {
        Some(self.config.clone())
    }
    fn num_workers(&self) -> usize {
        1
    }
    fn shutdown(&self, _grace: Duration) -> Result<(), EngineError> {
        self.kill();
        Ok(())
    }
    /// With `master_process off` this one process serves every request: its CPU time
    /// is nginx's (the hostile.* growth checks read it).
    fn pid(&self) -> Option<u32> {
        engine::sync::lock(&self.child).as_ref().map(Child::id)
    }
}
