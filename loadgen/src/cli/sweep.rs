//! `loadgen sweep`: steps the open-model rate up until the corrected p99 crosses the
//! SLO, then reports the highest rate that held with the whole latency-vs-rate curve
//! (the search is [`crate::sweep::search`]).

use std::time::{Duration, SystemTime};

use clap::Args;

use crate::export::{self, OutputFile};
use crate::load::config::{parse_duration_flag, parse_header, Arrivals};
use crate::load::interrupt::{self, EXIT_INTERRUPTED};
use crate::load::RunConfig;
use crate::sweep::search::{Growth, Plan};
use crate::sweep::{self, Settings};
use crate::EXIT_OK;

/// `loadgen sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The URL to load, http://host:port/path.
    pub url: String,
    /// The p99 latency to hold (corrected: from each request's due time), e.g. 10ms,
    /// 500us.
    #[arg(long, value_name = "DURATION")]
    pub slo: String,
    /// The first offered rate, requests per second.
    #[arg(long, default_value_t = 1000.0, value_name = "R")]
    pub start: f64,
    /// How the rate grows from step to step: a percentage (`25%`: times 1.25) or a
    /// number of requests per second added (`500`).
    #[arg(long, default_value = "25%", value_name = "STEP")]
    pub step: String,
    /// The highest rate to offer, requests per second; the sweep stops there even if it
    /// still holds.
    #[arg(long, value_name = "R")]
    pub max: Option<f64>,
    /// Bisection steps between the last rate that held and the first that did not
    /// (each halves the gap; 0: none).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub refine: u32,
    /// Measure a rising step that did not hold again, up to N times, before bisecting:
    /// a transient stall (another process taking the CPU) then does not end the search
    /// early, while a rate over capacity fails every time.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub retries: u32,
    /// How long each step measures, e.g. 5s, 500ms.
    #[arg(short = 'd', long, default_value = "5s")]
    pub duration: String,
    /// Load without recording before each step, e.g. 1s, 0s.
    #[arg(long, default_value = "1s")]
    pub warmup: String,
    /// Start no step after the sweep has run this long, e.g. 10m.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub max_time: String,
    /// Connections in all (each has one request in flight: enough for rate × latency).
    #[arg(short = 'c', long, default_value_t = 64)]
    pub connections: usize,
    /// Client threads (default: the CPUs this process may use).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Open-model arrivals: fixed or poisson.
    #[arg(long, default_value = "fixed")]
    pub arrivals: String,
    /// A request without a response after this fails as `timeout`.
    #[arg(long, default_value = "5s")]
    pub timeout: String,
    /// Request method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,
    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long)]
    pub header: Vec<String>,
    /// Write every step's run (loadgen.result/v1 JSON, workload `sweep`) to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<std::path::PathBuf>,
    /// No progress line per step on stderr (the table and the answer still print).
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Converts and validates the flags.
pub fn settings(a: &SweepArgs) -> Result<Settings, String> {
    let dur = parse_duration_flag;
    let slo = dur("slo", &a.slo)?;
    let slo_us = slo.as_micros().min(u64::MAX as u128) as u64;
    if slo_us == 0 {
        return Err(format!(
            "--slo {:?}: use a positive latency, e.g. 10ms",
            a.slo
        ));
    }
    if !(a.start.is_finite() && a.start >= 1.0) {
        return Err(format!(
            "--start {}: use a rate of at least 1 request per second",
            a.start
        ));
    }
    if let Some(m) = a.max {
        if !(m.is_finite() && m >= a.start) {
            return Err(format!(
                "--max {m}: use a rate at or above --start ({})",
                a.start
            ));
        }
    }
    let growth = Growth::parse(&a.step)?;
    let duration = dur("duration", &a.duration)?;
    if duration < Duration::from_millis(100) {
        return Err(format!(
            "--duration {:?}: use at least 100ms per step, e.g. 5s",
            a.duration
        ));
    }
    let max_time = dur("max-time", &a.max_time)?;
    let mut base = RunConfig::new(&a.url, a.connections.max(1), duration)?;
    base.connections = a.connections;
    base.threads = a
        .threads
        .unwrap_or_else(|| {
            engine::sys::thread::allowed_cpus()
                .map(|c| c.len())
                .unwrap_or(1)
        })
        .min(a.connections.max(1));
    base.warmup = dur("warmup", &a.warmup)?;
    base.timeout = dur("timeout", &a.timeout)?;
    base.arrivals = Arrivals::parse(&a.arrivals)?;
    base.method = a.method.to_ascii_uppercase();
    for h in &a.header {
        base.headers.push(parse_header(h)?);
    }
    base.rate = Some(a.start);
    base.progress = false;
    base.validate()?;
    Ok(Settings {
        plan: Plan {
            start: a.start.round().max(1.0),
            growth,
            max: a.max,
            refine: a.refine,
            retries: a.retries,
        },
        slo_us,
        base,
        max_time,
    })
}

/// Runs `loadgen sweep`. Exit 0 also when not even the first step held (the answer
/// is then `none`); 2 for usage and setup errors.
pub fn run(args: SweepArgs) -> Result<u8, String> {
    let s = settings(&args)?;
    let json = OutputFile::create_opt("--json", &args.json)?;
    let stop = interrupt::on_signals()?;
    let started = SystemTime::now();
    let done = sweep::run(
        &s,
        |step, phase, r, why| {
            if !args.quiet {
                eprintln!("{}", export::sweep::progress(step, phase, r, why));
            }
        },
        &stop,
    );
    let document = |runs| export::results::document(runs, started);
    if done.interrupted {
        print!("{}", export::sweep::table(&done.runs));
        println!(
            "interrupted after {} steps: no answer (the last step was cut short)",
            done.runs.len()
        );
        if let Some(file) = json.filter(|_| !done.runs.is_empty()) {
            file.write_json(&document(done.runs))?;
        }
        return Ok(EXIT_INTERRUPTED);
    }
    let outcome = match done.outcome {
        Ok(o) => o,
        Err(e) => {
            // Keep what was measured before the failure.
            if let Some(file) = json.filter(|_| !done.runs.is_empty()) {
                let _ = file.write_json(&document(done.runs));
            }
            return Err(e);
        }
    };
    print!("{}", export::sweep::table(&done.runs));
    println!(
        "{}",
        export::sweep::answer(&outcome, s.slo_us, s.plan.start)
    );
    if let Some(file) = json {
        file.write_json(&document(done.runs))?;
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
#[path = "sweep_args_tests.rs"]
mod tests;
