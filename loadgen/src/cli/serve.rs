//! `loadgen serve`: the reference engine with the routes of [`crate::serve`].

use std::time::Duration;

use clap::Args;
use engine::Config;

use crate::load::config::parse_duration_flag;
use crate::EXIT_OK;

/// `loadgen serve`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  loadgen serve --addr 127.0.0.1:8080 --workers 2
  loadgen serve --addr 0.0.0.0:8080 --pin --duration 60
  loadgen serve --addr 127.0.0.1:8080 --workers 1 --fault burn-cpu   (faults build)

Routes: / (13-byte plaintext), /echo (echoes the body), /worker (the worker index),
/big?bytes=N (N bytes of 'a', N <= 64 MiB). --fault injects one of the engine's named
bugs (cargo build -p loadgen --features faults), e.g. burn-cpu: each request burns
LOADGEN_BURN_NS ns of CPU (default 800, about 10 % of plaintext throughput).
SIGTERM or SIGINT (Ctrl-C) shuts down gracefully: no new connections, responses in flight
complete within --grace (default 10s), idle connections get FIN, exit 0; a second signal
exits at once with 130.")]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Number of workers (default: the CPUs this process may use).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Pin each worker to its own CPU.
    #[arg(long)]
    pub pin: bool,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// On SIGTERM or SIGINT (or at --duration), how long responses in flight may take
    /// to complete before their connections are closed, e.g. 10s, 500ms.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub grace: String,
    /// Bytes of request input the engine may hold across all connections (default
    /// 268435456 = 256 MiB); past it, connections holding input stop being read.
    #[arg(long, value_name = "BYTES")]
    pub max_buffered_input: Option<usize>,
    /// Inject a named fault into the engine, e.g. burn-cpu (needs `--features faults`).
    #[arg(long, value_name = "NAME")]
    pub fault: Option<String>,
    /// Be an out-of-process scenario target: speak the control protocol on the Unix
    /// socket named by $LOADGEN_CONTROL (docs/control-protocol.md); the harness starts
    /// this, e.g. `loadgen scenario --all --target-cmd 'loadgen serve --control'`.
    #[arg(long, conflicts_with_all = ["addr", "workers", "pin", "duration", "grace", "fault", "max_buffered_input"])]
    pub control: bool,
}

/// Runs `loadgen serve`.
pub fn run(args: ServeArgs) -> Result<u8, String> {
    if args.control {
        return scenarios::targets::remote::serve_control().map(|()| EXIT_OK);
    }
    let mut cfg = Config {
        address: args.addr.clone(),
        pin_workers: args.pin,
        ..Config::default()
    };
    if let Some(w) = args.workers {
        cfg.workers = w;
    }
    if let Some(b) = args.max_buffered_input {
        cfg.max_buffered_input = b;
    }
    if let Some(name) = &args.fault {
        #[cfg(feature = "faults")]
        {
            use engine::faults::Fault;
            cfg.fault = Some(Fault::from_name(name).ok_or_else(|| {
                format!(
                    "--fault {name:?}: unknown fault; use one of {}",
                    Fault::names()
                )
            })?);
            eprintln!("serve: fault {name} injected");
        }
        #[cfg(not(feature = "faults"))]
        return Err(format!(
            "--fault {name} needs the faults build: cargo build -p loadgen --features faults"
        ));
    }
    let grace = parse_duration_flag("grace", &args.grace)?;
    crate::serve::serve(cfg, args.duration.map(Duration::from_secs), grace)?;
    Ok(EXIT_OK)
}
