//! The results file (`loadgen.result/v1`) and the context every document records:
//! the tool, the host, the start time.

use std::time::SystemTime;

use reports::{Host, Results, RunIdentity, RunResult, Tool, Window, RESULT_SCHEMA};

use crate::load::clock::ClockOffset;
use crate::load::shard;
use crate::load::RunConfig;

pub use crate::load::unix_ms;

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The host description.
pub fn host() -> Host {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Host {
        hostname: read_trim("/proc/sys/kernel/hostname"),
        kernel: read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
        cpu_model,
        cores: engine::sys::thread::allowed_cpus()
            .map(|c| c.len() as u32)
            .unwrap_or(0),
        governor: read_trim("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
    }
}

/// RFC 3339 UTC for a Unix time in milliseconds.
pub fn rfc3339(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let rem = secs % 86_400;
    let (year, month, day) = engine::http::date::civil_from_days(secs / 86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

/// This binary, for the `tool` field of results files.
pub fn tool() -> Tool {
    Tool {
        name: "loadgen".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        git_revision: option_env!("LOADGEN_GIT_REVISION").map(String::from),
    }
}

/// Wraps runs into a results file, under a new run id.
pub fn document(runs: Vec<RunResult>, started: SystemTime) -> Results {
    document_of(runs, started, new_identity())
}

/// Wraps runs into a results file under `identity` (several files of one invocation
/// share it).
pub fn document_of(runs: Vec<RunResult>, started: SystemTime, identity: RunIdentity) -> Results {
    let unix_ms = unix_ms(started);
    Results {
        schema: RESULT_SCHEMA.into(),
        tool: tool(),
        host: host(),
        started_at: rfc3339(unix_ms),
        started_unix_ms: unix_ms,
        identity,
        runs,
    }
}

/// The identity of `loadgen run`'s results: the run id (`given`, derived for a shard
/// from its absolute `--start-at` given as `start_at`, and the process's command
/// line, or new) and the shard.
pub fn identity_of(
    cfg: &RunConfig,
    given: Option<&str>,
    start_at: Option<&str>,
) -> Result<RunIdentity, String> {
    let spec = cfg.shard.as_ref().map(|p| p.spec);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let start_at = start_at.zip(cfg.start_at);
    let mut id = new_identity();
    if let Some(run_id) = shard::run_id(given, spec, start_at, &args)? {
        id.run_id = Some(run_id);
    }
    id.shard = spec.map(|s| reports::Shard {
        index: s.index,
        count: s.count,
    });
    Ok(id)
}

/// The measuring window of `result` (run with `cfg`) on this host's clock: from
/// `--start-at` when given, else from the run's start; with the clock's offset from
/// the server's when `clock` knows it.
pub fn window(cfg: &RunConfig, result: &RunResult, clock: Option<ClockOffset>) -> Window {
    let start = match cfg.start_at {
        Some(at) => shard::unix_ns(at),
        None => result
            .started_unix_ms
            .unwrap_or(0)
            .saturating_mul(1_000_000),
    };
    let clock = clock.unwrap_or_else(|| ClockOffset {
        offset_ns: None,
        source: "unknown: not measured without --start-at".into(),
    });
    Window {
        start_unix_ns: start,
        end_unix_ns: start + (result.duration_s * 1e9).round() as u64,
        clock_offset_ns: clock.offset_ns,
        clock_offset_source: clock.source,
    }
}

/// The results file of one `loadgen run`; a split run or one with `--start-at` also
/// records its measuring window (with `clock`, the offset measured before it).
pub fn run_document(
    cfg: &RunConfig,
    result: RunResult,
    started: SystemTime,
    mut identity: RunIdentity,
    clock: Option<ClockOffset>,
) -> Results {
    if cfg.shard.is_some() || cfg.start_at.is_some() {
        identity.window = Some(window(cfg, &result, clock));
    }
    document_of(vec![result], started, identity)
}

/// The identity of a new, unsharded run.
pub fn new_identity() -> RunIdentity {
    RunIdentity {
        run_id: Some(new_run_id()),
        shard: None,
        window: None,
    }
}

/// A new run id: a random (version 4) UUID.
pub fn new_run_id() -> String {
    uuid::Builder::from_random_bytes(random_bytes())
        .into_uuid()
        .to_string()
}

/// 16 bytes from the kernel's random source; where it cannot be read, from the
/// randomly keyed hasher of the standard library over the time and the process.
fn random_bytes() -> [u8; 16] {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        use std::hash::{BuildHasher, Hasher};
        let now = unix_ms(SystemTime::now());
        for half in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(now);
            h.write_u32(std::process::id());
            half.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_known() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_709_210_096_123),
            "2024-02-29T12:34:56.123Z"
        );
    }

    #[test]
    fn run_ids_are_version_4_uuids_and_differ() {
        let a = super::new_run_id();
        let b = super::new_run_id();
        assert_ne!(a, b);
        let u = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(u.get_version(), Some(uuid::Version::Random), "{a}");
        assert_eq!(a.len(), 36, "{a}");
    }
}
