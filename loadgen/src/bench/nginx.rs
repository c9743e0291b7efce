//! nginx as a bench target: one process (no master) with a generated configuration
//! in a temporary directory, serving `/` (13 bytes) and `/big` (a 1 MiB file).
//!
//! Finding nginx, the directory, the common directives and reading why it failed are
//! [`scenarios::targets::nginx`]'s; this file adds the bench's routes and limits and
//! starts nginx pinned as a [`Server`].

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use scenarios::targets::nginx::{self, ConfDir, Nginx};
use scenarios::targets::{on_free_port, StartError};

use crate::server::Server;

/// nginx with a generated config in a temporary directory: one process (no master)
/// serving `/` (13 bytes) and `/big` (a 1 MiB file).
pub fn start(idle: usize, deadline: Duration) -> Result<Server, String> {
    let nginx = Nginx::find(None)?;
    on_free_port(|addr| {
        start_on(nginx.binary(), idle, deadline, addr).map_err(StartError::from_output)
    })
    .map_err(String::from)
}

fn start_on(
    nginx: &Path,
    idle: usize,
    deadline: Duration,
    addr: SocketAddr,
) -> Result<Server, String> {
    let dir = nginx_dir(addr, idle)?;
    let (mut server, _) = Server::spawn(nginx, &dir.args(), addr)?;
    // nginx writes why it failed to its error log, not to stderr.
    let why = |e: String| match dir.failure() {
        Some(why) => format!("{e}; its error log: {why}"),
        None => e,
    };
    if let Err(e) = server.wait_listening("nginx", deadline) {
        return Err(why(e));
    }
    server.own_dir(dir.keep());
    Ok(server)
}

/// Writes nginx's config and its 1 MiB `/big` file into a new directory.
fn nginx_dir(addr: SocketAddr, idle: usize) -> Result<ConfDir, String> {
    let cannot = |e: String| format!("--target nginx: cannot write its config: {e}");
    let dir = ConfDir::create("bench-nginx").map_err(cannot)?;
    let d = dir.path().display();
    let http = format!(
        "    keepalive_requests 100000000;
    keepalive_timeout 120s;
    server {{
        listen {addr};
        location = /big {{
            default_type application/octet-stream;
            root {d}/www;
        }}
        location / {{
            default_type text/plain;
            return 200 'Hello, World!';
        }}
    }}
"
    );
    dir.write_conf(&nginx::config(dir.path(), 4096.max(idle + 1024), &http))
        .map_err(cannot)?;
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www)
        .and_then(|()| std::fs::write(www.join("big"), vec![b'a'; 1 << 20]))
        .map_err(|e| cannot(format!("writing {}/big: {e}", www.display())))?;
    Ok(dir)
}
