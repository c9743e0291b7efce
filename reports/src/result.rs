//! The results file: `loadgen.result/v1`. Dedicated serde structs; units are in the
//! field names (`_us`, `_ns`, `_s`, `_bytes`). The JSON Schema is
//! `reports/schema/loadgen.result.v1.json`; a test validates real output against it.

use serde::{Deserialize, Serialize};

/// The schema identifier of results files.
pub const RESULT_SCHEMA: &str = "loadgen.result/v1";

/// A results file: one or more runs (target × workload) with their context.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Results {
    /// Always [`RESULT_SCHEMA`].
    pub schema: String,
    /// The tool that wrote it.
    pub tool: Tool,
    /// Where it ran.
    pub host: Host,
    /// When the first run started: RFC 3339, UTC.
    pub started_at: String,
    /// Milliseconds since the Unix epoch at the start.
    pub started_unix_ms: u64,
    /// Which invocation wrote it (absent in files written before the field existed).
    #[serde(flatten)]
    pub identity: RunIdentity,
    /// The runs.
    pub runs: Vec<RunResult>,
}

/// What identifies the invocation that wrote a results file, so that `loadgen merge`
/// can tell one run given twice from two runs, and the shards of one run apart.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunIdentity {
    /// A UUID, new for every `run`, `bench` or `sweep` (the files one `bench` writes
    /// share it); the shards of one sharded run share theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Which share of a load split over several processes this file holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The measuring window on the wall clock, written by sharded runs (and kept by
    /// `loadgen merge`) so that the shards' windows can be compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

/// A measuring window on the wall clock of the host that measured it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Window {
    /// When measuring started, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// When measuring ended, nanoseconds since the Unix epoch.
    pub end_unix_ns: u64,
    /// The host clock's offset from the server's (server minus host), nanoseconds;
    /// `None` when it is not known.
    pub clock_offset_ns: Option<i64>,
    /// How the offset was found, or why it is unknown.
    pub clock_offset_source: String,
}

/// One share of a load split over `count` processes or hosts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Shard {
    /// Which share, from 0 (as Kubernetes' `JOB_COMPLETION_INDEX`).
    pub index: u32,
    /// Shares in all.
    pub count: u32,
}

/// Tool name, version and source revision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tool {
    /// `loadgen`.
    pub name: String,
    /// Crate version.
    pub version: String,
    /// Git revision the binary was built from, when known.
    pub git_revision: Option<String>,
}

/// The machine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Host {
    /// The machine's name (`/proc/sys/kernel/hostname`), when recorded (files written
    /// before it was added have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// CPU model name.
    pub cpu_model: String,
    /// CPUs this process may use.
    pub cores: u32,
    /// The CPU frequency governor, where readable.
    pub governor: Option<String>,
}

/// Latency statistics, microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Minimum.
    pub min_us: u64,
    /// Mean.
    pub mean_us: f64,
    /// Standard deviation.
    pub stdev_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// 99.99th percentile.
    pub p9999_us: u64,
    /// Maximum.
    pub max_us: u64,
}

/// Failed requests by class.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorCounts {
    /// Connect refused (`ECONNREFUSED`).
    pub connect_refused: u64,
    /// Connect did not complete within the timeout.
    pub connect_timeout: u64,
    /// Connection reset.
    pub reset: u64,
    /// The server closed with requests outstanding.
    pub eof: u64,
    /// No response within the timeout.
    pub timeout: u64,
    /// Unparsable response, or one that failed `--expect-body`.
    pub parse: u64,
    /// 4xx (or another status than `--expect-status`).
    pub status_4xx: u64,
    /// 5xx.
    pub status_5xx: u64,
    /// The client itself ran out of something (descriptors, ephemeral ports, memory);
    /// absent in files from before the class existed.
    #[serde(default)]
    pub client: u64,
}

impl ErrorCounts {
    /// All classes added up.
    pub fn total(&self) -> u64 {
        self.connect_refused
            + self.connect_timeout
            + self.reset
            + self.eof
            + self.timeout
            + self.parse
            + self.status_4xx
            + self.status_5xx
            + self.client
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &ErrorCounts) {
        self.connect_refused += other.connect_refused;
        self.connect_timeout += other.connect_timeout;
        self.reset += other.reset;
        self.eof += other.eof;
        self.timeout += other.timeout;
        self.parse += other.parse;
        self.status_4xx += other.status_4xx;
        self.status_5xx += other.status_5xx;
        self.client += other.client;
    }
}

/// One second of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TimelinePoint {
    /// Seconds since measuring started (the interval [second, second + 1)).
    pub second: u64,
    /// Requests completed successfully in the interval.
    pub requests: u64,
    /// Requests failed in the interval.
    pub errors: u64,
    /// Median corrected latency of the interval.
    pub p50_us: u64,
    /// 99th percentile corrected latency of the interval.
    pub p99_us: u64,
    /// Maximum corrected latency of the interval.
    pub max_us: u64,
}

/// Open-model schedule figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OpenModel {
    /// Offered rate, requests per second.
    pub rate_per_s: f64,
    /// `fixed` or `poisson`.
    pub arrivals: String,
    /// Requests sent more than 1 ms after their due time.
    pub late: u64,
    /// Requests due before the end that were never sent.
    pub never_sent: u64,
    /// Mean lag of sends behind their due time, µs.
    pub mean_lag_us: f64,
    /// Largest lag, µs.
    pub max_lag_us: u64,
}

/// A self-check's warning.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Warning {
    /// `client_bound`, `littles_law`, `schedule_lag`, `errors`, ...
    pub kind: String,
    /// What was measured and what to do.
    pub message: String,
}

/// One run: a workload against a target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    /// The URL or target name.
    pub target: String,
    /// The workload name.
    pub workload: String,
    /// Every setting of the run (flag name → value), and what the command that ran
    /// it recorded (bench, sweep, merge).
    pub config: RunSettings,
    /// Measured duration (after warmup), seconds.
    pub duration_s: f64,
    /// Requests completed successfully.
    pub requests: u64,
    /// Failed requests by class.
    pub errors: ErrorCounts,
    /// Successful requests per second.
    pub requests_per_s: f64,
    /// Bytes received per second.
    pub bytes_per_s: f64,
    /// Bytes received.
    pub bytes_read: u64,
    /// Bytes sent.
    pub bytes_written: u64,
    /// Latency from the due time (open model) or send time (closed model).
    pub latency_corrected: LatencySummary,
    /// Latency from the actual send.
    pub latency_uncorrected: LatencySummary,
    /// Latency of failed requests.
    pub latency_errors: LatencySummary,
    /// Corrected histogram, HdrHistogram V2 compressed, base64.
    pub histogram_corrected: String,
    /// Uncorrected histogram, same encoding.
    pub histogram_uncorrected: String,
    /// Failed requests' histogram, same encoding.
    pub histogram_errors: String,
    /// Per-second timeline.
    pub timeline: Vec<TimelinePoint>,
    /// Open-model figures (absent for the closed model).
    pub open_model: Option<OpenModel>,
    /// Client CPU time (user + system) during the measured part, seconds.
    pub client_cpu_s: Option<f64>,
    /// Server CPU time during the measured part, when the server's process is known.
    pub server_cpu_s: Option<f64>,
    /// Self-check warnings.
    pub warnings: Vec<Warning>,
    /// When this run's measured part started, milliseconds since the Unix epoch (absent
    /// in files written before the field existed: then the file's start is the run's).
    #[serde(default)]
    pub started_unix_ms: Option<u64>,
}

/// A run's `config` object: the load's settings by flag name, plus typed records of
/// the command that made the run. The records are flattened into the same object
/// (`bench_round`, `sweep_rate`, `merged_runs`, ...), so the JSON stays one flat map.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RunSettings {
    /// Set by `loadgen bench`.
    #[serde(flatten)]
    pub bench: Option<BenchRecord>,
    /// Set by `loadgen sweep`.
    #[serde(flatten)]
    pub sweep: Option<SweepRecord>,
    /// Set by `loadgen run`: its `--check` verdicts and whether it was interrupted.
    #[serde(flatten)]
    pub run: Option<RunRecord>,
    /// Set by `loadgen merge` on a run merged from this many runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_runs: Option<u64>,
    /// The load's settings (`url`, `connections`, `duration_ms`, ...). Declared last:
    /// it takes the keys the typed records above did not.
    #[serde(flatten)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// Read by hand rather than derived: serde's flattened `Option` turns a record that
/// does not parse (a key missing or of another type) into `None` *and drops the keys
/// it took*. Here a record that does not parse leaves its keys in `settings`, so
/// nothing of a file is lost on a read and write (`loadgen merge`).
impl<'de> Deserialize<'de> for RunSettings {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RunSettings, D::Error> {
        let mut settings = serde_json::Map::deserialize(d)?;
        let bench = take_record(&mut settings, BenchRecord::KEYS);
        let sweep = take_record(&mut settings, SweepRecord::KEYS);
        let run = take_record(&mut settings, RunRecord::KEYS);
        let merged_runs = match settings.get("merged_runs").and_then(|v| v.as_u64()) {
            Some(n) => {
                settings.remove("merged_runs");
                Some(n)
            }
            None => None,
        };
        Ok(RunSettings {
            bench,
            sweep,
            run,
            merged_runs,
            settings,
        })
    }
}

/// The record of type `T` whose field names are `keys`, taken out of `map` when those
/// of its keys that are there parse as a `T`; otherwise `None`, and `map` unchanged.
fn take_record<T: serde::de::DeserializeOwned>(
    map: &mut serde_json::Map<String, serde_json::Value>,
    keys: &[&str],
) -> Option<T> {
    let part: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .filter_map(|k| map.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    if part.is_empty() {
        return None;
    }
    let record = serde_json::from_value(serde_json::Value::Object(part)).ok()?;
    for k in keys {
        map.remove(*k);
    }
    Some(record)
}

/// What `loadgen bench` records about a run of its matrix.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BenchRecord {
    /// The round (1, 2, ...) of the matrix.
    pub bench_round: u32,
    /// The URL loaded.
    pub bench_url: String,
    /// What the user gave for the target, when it is not the target's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bench_target: Option<String>,
    /// Workloads of the matrix this target skips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bench_skipped_workloads: Option<Vec<String>>,
    /// `--idle`: idle connections wanted (idle-active workload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_requested: Option<u64>,
    /// Idle connections open during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_connections: Option<u64>,
    /// Idle connections that still answered after the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_answered_after: Option<u64>,
}

impl BenchRecord {
    /// Its keys in a run's `config` object.
    pub const KEYS: &'static [&'static str] = &[
        "bench_round",
        "bench_url",
        "bench_target",
        "bench_skipped_workloads",
        "idle_requested",
        "idle_connections",
        "idle_answered_after",
    ];
}

/// What `loadgen run` records about its run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    /// The run was ended early by SIGINT or SIGTERM.
    pub interrupted: bool,
    /// The `--check` thresholds, in the order given.
    pub checks: Vec<CheckResult>,
}

impl RunRecord {
    /// Its keys in a run's `config` object.
    pub const KEYS: &'static [&'static str] = &["interrupted", "checks"];
}

/// One `--check` threshold and its verdict.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CheckResult {
    /// The expression as given, e.g. `p99<10ms`.
    pub expression: String,
    /// The measured value, in `unit`.
    pub measured: f64,
    /// The threshold, in `unit`.
    pub threshold: f64,
    /// `us`, `percent`, `requests` or `per_s`.
    pub unit: String,
    /// Whether the run met it.
    pub passed: bool,
}

/// Why a sweep step ran.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SweepPhase {
    /// Stepping the rate up.
    #[default]
    Grow,
    /// Measuring a rising step that did not hold again.
    Retry,
    /// Bisecting between the last rate that held and the first that did not.
    Refine,
}

impl SweepPhase {
    /// The name in results files and tables.
    pub fn name(self) -> &'static str {
        match self {
            SweepPhase::Grow => "grow",
            SweepPhase::Retry => "retry",
            SweepPhase::Refine => "refine",
        }
    }
}

/// What `loadgen sweep` records about one step.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SweepRecord {
    /// The step's number (1, 2, ...).
    #[serde(default)]
    pub sweep_step: u64,
    /// Why it ran.
    #[serde(default)]
    pub sweep_phase: SweepPhase,
    /// The offered rate, requests per second.
    pub sweep_rate: f64,
    /// The p99 SLO, µs.
    pub sweep_slo_us: u64,
    /// Whether the step held the SLO.
    pub sweep_held: bool,
    /// Why it did not hold (null when it held).
    #[serde(default)]
    pub sweep_reason: Option<String>,
    /// The sweep's answer (null: no rate held); absent when the sweep ended in an
    /// error before it had one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub sweep_max_rate: Option<Option<f64>>,
}

impl SweepRecord {
    /// Its keys in a run's `config` object.
    pub const KEYS: &'static [&'static str] = &[
        "sweep_step",
        "sweep_phase",
        "sweep_rate",
        "sweep_slo_us",
        "sweep_held",
        "sweep_reason",
        "sweep_max_rate",
    ];
}

/// A field that is present, possibly as null (absent is `None` through `default`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn keys_of(v: &impl Serialize) -> Vec<String> {
        match serde_json::to_value(v).unwrap() {
            Value::Object(m) => m.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn record_keys_are_every_field_the_record_writes() {
        let bench = BenchRecord {
            bench_target: Some(String::new()),
            bench_skipped_workloads: Some(Vec::new()),
            idle_requested: Some(0),
            idle_connections: Some(0),
            idle_answered_after: Some(0),
            ..BenchRecord::default()
        };
        let mut want: Vec<&str> = BenchRecord::KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(keys_of(&bench), want);
        let sweep = SweepRecord {
            sweep_max_rate: Some(None),
            ..SweepRecord::default()
        };
        let mut want: Vec<&str> = SweepRecord::KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(keys_of(&sweep), want);
        let mut want: Vec<&str> = RunRecord::KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(keys_of(&RunRecord::default()), want);
    }

    #[test]
    fn whole_records_round_trip_and_partial_ones_lose_nothing() {
        let whole = json!({
            "bench_round": 2, "bench_url": "http://x/", "idle_requested": 8,
            "sweep_step": 3, "sweep_phase": "refine", "sweep_rate": 1000.0,
            "sweep_slo_us": 5000, "sweep_held": false, "sweep_reason": "p99",
            "sweep_max_rate": null, "merged_runs": 2, "url": "http://x/", "connections": 8
        });
        let s: RunSettings = serde_json::from_value(whole.clone()).unwrap();
        assert_eq!(s.bench.as_ref().map(|b| b.bench_round), Some(2));
        assert_eq!(
            s.sweep.as_ref().map(|w| w.sweep_phase),
            Some(SweepPhase::Refine)
        );
        assert_eq!(s.merged_runs, Some(2));
        assert_eq!(s.settings.len(), 2, "{:?}", s.settings);
        assert_eq!(serde_json::to_value(&s).unwrap(), whole);
        // A bench record without its round and a mistyped sweep rate: kept as they were.
        let partial = json!({"bench_url": "http://x/", "sweep_rate": "fast", "sweep_slo_us": 1,
            "sweep_held": true, "merged_runs": "two", "url": "http://x/"});
        let s: RunSettings = serde_json::from_value(partial.clone()).unwrap();
        assert!(s.bench.is_none() && s.sweep.is_none() && s.merged_runs.is_none());
        assert_eq!(serde_json::to_value(&s).unwrap(), partial);
        // The run's record: its checks and whether it was interrupted.
        let run = json!({"interrupted": true, "checks": [{"expression": "p99<1ms",
            "measured": 900.0, "threshold": 1000.0, "unit": "us", "passed": true}], "url": "x"});
        let s: RunSettings = serde_json::from_value(run.clone()).unwrap();
        let record = s.run.as_ref().unwrap();
        assert!(record.interrupted && record.checks[0].passed);
        assert_eq!(s.settings.len(), 1, "{:?}", s.settings);
        assert_eq!(serde_json::to_value(&s).unwrap(), run);
    }
}
