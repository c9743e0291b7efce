//! Engine options, validated in one place ([`Config::validate`]).

use std::net::SocketAddr;
use std::time::Duration;

/// Default cap on bytes a driver connection may have queued (64 MiB).
pub const DRIVER_WRITE_CAP: usize = 64 * 1024 * 1024;

/// Timeouts above this are taken for a unit mistake and refused.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Engine options. Build with `Config::default()` and struct update syntax, or the
/// `with_*` methods; [`Engine::new`](crate::Engine::new) validates them.
///
/// ```
/// let cfg = engine::Config { workers: 2, ..engine::Config::default() };
/// assert!(cfg.validate().is_ok());
/// ```
///
/// Not `#[non_exhaustive]` on purpose: struct update syntax is how callers set the
/// fields they care about; new fields always come with a default.
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of workers (event-loop threads). Default: the CPUs this process may use.
    pub workers: usize,
    /// Address to listen on, `host:port`; port 0 picks one port for all workers.
    /// Default `127.0.0.1:0`.
    pub address: String,
    /// Pin worker i to the i-th CPU of `cpus` (or of the allowed set). Default off.
    pub pin_workers: bool,
    /// CPUs to pin to, in worker order (wrapping). Empty: the CPUs this process may use.
    pub cpus: Vec<usize>,
    /// `listen(2)` backlog per worker. Default 4096 (the kernel caps it at somaxconn).
    pub listen_backlog: u32,
    /// Bytes read per `read(2)`. Default 64 KiB.
    pub read_buffer_size: usize,
    /// Largest request header block. Default 64 KiB.
    pub max_header_bytes: usize,
    /// Largest request body. Default 16 MiB.
    pub max_body_bytes: usize,
    /// Bytes of request input the engine may hold across all its connections (unfinished
    /// heads and bodies). Past it, connections that hold input stop being read (TCP
    /// backpressure) until memory is released; the bound is this plus one read buffer
    /// per worker. Default 256 MiB.
    pub max_buffered_input: usize,
    /// Keep-alive connections idle this long are closed (FIN). Default 60 s.
    pub idle_timeout: Duration,
    /// A request header block must arrive within this. Default 10 s.
    pub header_timeout: Duration,
    /// A request body that stops arriving for this long is ended (408 when no response
    /// has started, then FIN). Each arrival restarts the timer: a body that keeps
    /// coming is never cut, however long it takes. Default 10 s.
    pub body_timeout: Duration,
    /// A response that makes no progress for this long is abandoned. Default 30 s.
    pub write_timeout: Duration,
    /// How long a drained or closing connection's input is read and discarded after
    /// our FIN before it is closed. Default 1 s.
    pub drain_linger: Duration,
    /// Cap on bytes queued per driver connection. Default [`DRIVER_WRITE_CAP`].
    pub driver_write_cap: usize,
    /// `TCP_DEFER_ACCEPT` on listen sockets. Default off: with it, data-less
    /// connections hide from the drain and are reset when the listener closes.
    pub tcp_defer_accept: bool,
    /// Deliberate bug to inject (negative controls for the scenarios).
    #[cfg(feature = "faults")]
    pub fault: Option<crate::faults::Fault>,
}

impl Default for Config {
    fn default() -> Config {
        let workers = crate::sys::thread::allowed_cpus()
            .map(|c| c.len())
            .unwrap_or(1)
            .max(1);
        Config {
            workers,
            address: "127.0.0.1:0".to_string(),
            pin_workers: false,
            cpus: Vec::new(),
            listen_backlog: 4096,
            read_buffer_size: 64 * 1024,
            max_header_bytes: 64 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
            max_buffered_input: 256 * 1024 * 1024,
            idle_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            drain_linger: Duration::from_secs(1),
            driver_write_cap: DRIVER_WRITE_CAP,
            tcp_defer_accept: false,
            #[cfg(feature = "faults")]
            fault: None,
        }
    }
}

/// A configuration field that cannot be used. The message names the field and what
/// to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `workers` is 0.
    #[error("config.workers is 0: use at least 1 worker")]
    ZeroWorkers,
    /// `workers` is absurdly large.
    #[error("config.workers is {0}: use at most 1024 workers")]
    TooManyWorkers(usize),
    /// `address` does not parse.
    #[error("config.address {0:?} is not a socket address: use host:port, e.g. 127.0.0.1:8080 or [::1]:0")]
    BadAddress(String),
    /// A size is zero.
    #[error("config.{0} is 0: use a positive number of bytes")]
    ZeroSize(&'static str),
    /// A timeout is zero or above [`MAX_TIMEOUT`].
    #[error("config.{field} is {value:?}: use a timeout between 1 ms and 24 h")]
    BadTimeout {
        /// The field.
        field: &'static str,
        /// Its value.
        value: Duration,
    },
    /// `listen_backlog` is 0 or above `i32::MAX`.
    #[error("config.listen_backlog is {0}: use 1 to 65535")]
    BadBacklog(u32),
    /// A pinning CPU is out of range.
    #[error("config.cpus names CPU {0}, beyond the 1024 a cpu set holds: use ids below 1024")]
    BadCpu(usize),
}

impl Config {
    /// Checks every field; the first bad one is returned.
    pub fn validate(&self) -> Result<ValidConfig, ConfigError> {
        if self.workers == 0 {
            return Err(ConfigError::ZeroWorkers);
        }
        if self.workers > 1024 {
            return Err(ConfigError::TooManyWorkers(self.workers));
        }
        let addr: SocketAddr = self
            .address
            .parse()
            .map_err(|_| ConfigError::BadAddress(self.address.clone()))?;
        for (name, v) in [
            ("read_buffer_size", self.read_buffer_size),
            ("max_header_bytes", self.max_header_bytes),
            ("max_body_bytes", self.max_body_bytes),
            ("max_buffered_input", self.max_buffered_input),
            ("driver_write_cap", self.driver_write_cap),
        ] {
            if v == 0 {
                return Err(ConfigError::ZeroSize(name));
            }
        }
        for (field, value) in [
            ("idle_timeout", self.idle_timeout),
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
            ("write_timeout", self.write_timeout),
            ("drain_linger", self.drain_linger),
        ] {
            if value < Duration::from_millis(1) || value > MAX_TIMEOUT {
                return Err(ConfigError::BadTimeout { field, value });
            }
        }
        if self.listen_backlog == 0 || self.listen_backlog > 65535 {
            return Err(ConfigError::BadBacklog(self.listen_backlog));
        }
        if let Some(&cpu) = self.cpus.iter().find(|&&c| c >= 1024) {
            return Err(ConfigError::BadCpu(cpu));
        }
        Ok(ValidConfig {
            config: self.clone(),
            addr,
        })
    }

    /// Whether fault `f` is injected (always false without the `faults` feature).
    #[cfg(feature = "faults")]
    pub(crate) fn fault(&self, f: crate::faults::Fault) -> bool {
        self.fault == Some(f)
    }
}

/// A configuration that passed [`Config::validate`].
#[derive(Debug, Clone)]
pub struct ValidConfig {
    pub(crate) config: Config,
    pub(crate) addr: SocketAddr,
}

impl ValidConfig {
    /// The options.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The parsed listen address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = Config::default();
        let v = c.validate().unwrap();
        assert_eq!(v.addr().port(), 0);
        assert_eq!(c.driver_write_cap, 67_108_864);
        assert!(!c.tcp_defer_accept);
        assert_eq!(c.header_timeout, Duration::from_secs(10));
        assert_eq!(c.max_header_bytes, 64 * 1024);
        assert_eq!(c.max_buffered_input, 256 * 1024 * 1024);
        assert_eq!(c.body_timeout, Duration::from_secs(10));
    }

    #[test]
    fn each_bad_field_is_named() {
        let bad = [
            (
                Config {
                    workers: 0,
                    ..Config::default()
                },
                "workers",
            ),
            (
                Config {
                    address: "nope".into(),
                    ..Config::default()
                },
                "address",
            ),
            (
                Config {
                    read_buffer_size: 0,
                    ..Config::default()
                },
                "read_buffer_size",
            ),
            (
                Config {
                    driver_write_cap: 0,
                    ..Config::default()
                },
                "driver_write_cap",
            ),
            (
                Config {
                    max_buffered_input: 0,
                    ..Config::default()
                },
                "max_buffered_input",
            ),
            (
                Config {
                    body_timeout: Duration::ZERO,
                    ..Config::default()
                },
                "body_timeout",
            ),
            (
                Config {
                    idle_timeout: Duration::ZERO,
                    ..Config::default()
                },
                "idle_timeout",
            ),
            (
                Config {
                    header_timeout: Duration::from_secs(1 << 40),
                    ..Config::default()
                },
                "header_timeout",
            ),
            (
                Config {
                    listen_backlog: 0,
                    ..Config::default()
                },
                "listen_backlog",
            ),
            (
                Config {
                    cpus: vec![5000],
                    ..Config::default()
                },
                "cpus",
            ),
        ];
        for (cfg, field) in bad {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err:?} does not name {field}");
        }
    }
}
