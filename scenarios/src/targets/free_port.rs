//! Starting a server in another process on a port that was free a moment before.

use std::net::SocketAddr;

/// Why a server given a port did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// Another process took the port between the pick and the server's bind: start
    /// again on another one ([`on_free_port`] does).
    #[error("{0}")]
    PortTaken(String),
    /// Any other failure, with what the server or the harness said.
    #[error("{0}")]
    Failed(String),
}

impl StartError {
    /// A failure to start, as the server's own output words it: [`StartError::PortTaken`]
    /// when that output says its bind found the port in use (`EADDRINUSE`: the text
    /// every libc gives, which is all a server in another process passes on).
    pub fn from_output(message: String) -> StartError {
        if message.contains("Address already in use") {
            StartError::PortTaken(message)
        } else {
            StartError::Failed(message)
        }
    }
}

impl From<String> for StartError {
    fn from(message: String) -> StartError {
        StartError::Failed(message)
    }
}

impl From<StartError> for String {
    fn from(e: StartError) -> String {
        e.to_string()
    }
}

/// Runs `start` with a loopback address whose port was free a moment before (for a
/// server in another process, which binds it next). Another process may take the port
/// in between: when `start` says so ([`StartError::PortTaken`]), it runs again on a new
/// port, 3 times in all.
pub fn on_free_port<T>(
    mut start: impl FnMut(SocketAddr) -> Result<T, StartError>,
) -> Result<T, StartError> {
    let mut tries = 1;
    loop {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| {
                StartError::Failed(format!("cannot find a free port on 127.0.0.1: {e}"))
            })?;
        match start(addr) {
            Err(StartError::PortTaken(_)) if tries < 3 => tries += 1,
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{on_free_port, StartError};

    #[test]
    fn a_lost_port_is_retried_on_a_new_one_three_times_in_all() {
        let mut ports = Vec::new();
        let r = on_free_port(|a| {
            ports.push(a.port());
            if ports.len() < 3 {
                Err(StartError::from_output(
                    "bind() failed (98: Address already in use)".to_string(),
                ))
            } else {
                Ok(a.port())
            }
        });
        assert_eq!(r, Ok(ports[2]));
        assert!(ports.iter().all(|&p| p != 0), "{ports:?}");
        let mut tries = 0;
        let r: Result<(), StartError> = on_free_port(|_| {
            tries += 1;
            Err(StartError::from_output("Address already in use".into()))
        });
        assert!(r.is_err());
        assert_eq!(tries, 3);
        // Any other failure is the answer at once.
        let mut tries = 0;
        let r: Result<(), StartError> = on_free_port(|_| {
            tries += 1;
            Err(StartError::from_output("no such command".into()))
        });
        assert_eq!(
            (r.map_err(String::from), tries),
            (Err("no such command".into()), 1)
        );
    }
}
