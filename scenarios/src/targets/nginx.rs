//! nginx as a target: the HTTP clauses against a server nobody here wrote.
//!
//! Each instance is an `nginx` process (`master_process off`, one worker process, so
//! the process that answers is the one started) with a configuration generated from
//! the scenario's [`Config`]: the limits and timeouts map onto nginx's directives
//! (see [`nginx_conf`]). nginx serves `/` (13 bytes, like the reference engine) and
//! `/id`; it has none of the other test routes, no accept or worker control and no
//! driver API, so the scenarios needing them are skipped.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
        let binary = binary.map_or_else(|| PathBuf::from("nginx"), Path::to_path_buf);
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
    let d = dir.display();
    let tag = tag.replace(['"', '\\'], "");
    format!(
        "daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000;
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
}}
",
        idle = secs(cfg.idle_timeout),
        header = secs(cfg.header_timeout),
        write = secs(cfg.write_timeout),
        hdr = cfg.max_header_bytes.max(1024),
        body = cfg.max_body_bytes,
    )
}

/// One nginx process; killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct NginxInstance {
    child: std::sync::Mutex<Option<Child>>,
    addr: SocketAddr,
    dir: PathBuf,
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
        let dir = std::env::temp_dir().join(format!(
            "loadgen-nginx-{}-{}",
            std::process::id(),
            addr.port()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("nginx: creating {}: {e}", dir.display()))?;
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, nginx_conf(cfg, addr, &dir, tag))
            .map_err(|e| format!("nginx: writing {}: {e}", conf.display()))?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
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
                let log = std::fs::read_to_string(inst.dir.join("error.log")).unwrap_or_default();
                // nginx retries a failed bind, then says "still could not bind()":
                // the line that says why is the one to show.
                let last = log
                    .lines()
                    .rev()
                    .find(|l| l.contains("Address already in use"))
                    .or(log.lines().last())
                    .unwrap_or("no error log")
                    .to_string();
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
        let _ = std::fs::remove_dir_all(&self.dir);
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
}
