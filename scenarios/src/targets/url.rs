//! Any running HTTP/1.1 server, reached by URL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use engine::{Config, EngineError};

use super::{Capability, Instance, Target};

/// A server someone else started, reached by URL: HTTP only, with its own (unknown)
/// limits and timeouts. `start` does not start anything; it checks that the address
/// accepts connections.
#[derive(Debug, Clone)]
pub struct UrlTarget {
    url: String,
    addr: SocketAddr,
}

impl UrlTarget {
    /// `http://host:port/` (the path is ignored: scenarios choose their own).
    pub fn parse(url: &str) -> Result<UrlTarget, String> {
        use std::net::ToSocketAddrs;
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("--target-url {url:?}: not an http:// URL; use e.g. http://127.0.0.1:8080/")
        })?;
        let authority = rest.split('/').next().unwrap_or("");
        let with_port = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("--target-url {url}: cannot resolve {authority:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("--target-url {url}: {authority:?} resolves to nothing"))?;
        Ok(UrlTarget {
            url: url.to_string(),
            addr,
        })
    }
}

impl Target for UrlTarget {
    fn name(&self) -> String {
        self.url.clone()
    }
    fn capabilities(&self) -> &[Capability] {
        &[Capability::Http]
    }
    fn can_isolate(&self) -> bool {
        false
    }
    fn start(&self, _cfg: &Config, _tag: &str) -> Result<Arc<dyn Instance>, String> {
        std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))
            .map_err(|e| format!("{}: cannot connect: {e}: is the server running?", self.url))?;
        Ok(Arc::new(External {
            addr: self.addr,
            config: None,
        }))
    }
}

/// A server the scenarios do not control: only its address (and, when the harness
/// generated its configuration, the limits it runs with).
#[derive(Debug)]
pub struct External {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its limits and timeouts, when known.
    pub config: Option<Config>,
}

impl Instance for External {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn effective_config(&self) -> Option<Config> {
        self.config.clone()
    }
    fn num_workers(&self) -> usize {
        self.config.as_ref().map_or(1, |c| c.workers)
    }
    fn shutdown(&self, _grace: Duration) -> Result<(), EngineError> {
        Ok(())
    }
}
