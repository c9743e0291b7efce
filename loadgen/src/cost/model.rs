//! The `loadgen.cost/v1` document and the exact A/B comparison (`--ab`): pure, no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The schema name of the document (JSON Schema `reports/schema/loadgen.cost.v1.json`).
pub const SCHEMA: &str = "loadgen.cost/v1";

/// A whole `loadgen cost` document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CostDoc {
    /// [`SCHEMA`].
    pub schema: String,
    /// How the counts were taken, in one sentence.
    pub method: String,
    /// Each measured server: one, or base then head with `--ab`.
    pub servers: Vec<ServerCost>,
    /// The comparison of `--ab`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ab: Option<Ab>,
}

/// One server's cost per request, workload by workload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerCost {
    /// Its name (`base`, `head`, or `server`).
    pub name: String,
    /// The command it was started with (`{addr}` not yet replaced).
    pub command: String,
    /// Per workload.
    pub workloads: Vec<WorkloadCost>,
}

/// One counter of one workload: the process's totals in the runs of N1 and N2 requests
/// and the difference per request.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Counter {
    /// Whole-process totals in the run of N1 and in the run of N2 requests.
    pub totals: [u64; 2],
    /// `(totals[1] - totals[0]) / (N2 - N1)`.
    pub per_request: f64,
}

impl Counter {
    /// The counter of `totals` over `requests`.
    pub fn new(totals: [u64; 2], requests: [u64; 2]) -> Counter {
        Counter {
            totals,
            per_request: (totals[1] as f64 - totals[0] as f64) / (requests[1] - requests[0]) as f64,
        }
    }

    /// `totals[1] - totals[0]`: the exact count of the extra requests.
    pub fn difference(&self) -> i64 {
        self.totals[1] as i64 - self.totals[0] as i64
    }
}

/// One function's self cost per request (by the same difference).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionCost {
    /// The function, as valgrind names it (demangled).
    pub function: String,
    /// Its own instructions per request (callees not included).
    pub instructions_per_request: f64,
}

/// One workload's cost per request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkloadCost {
    /// The workload's name.
    pub workload: String,
    /// What the client did.
    pub description: String,
    /// N1 and N2.
    pub requests: [u64; 2],
    /// User-space instructions of the whole process (cachegrind).
    pub instructions: Counter,
    /// Heap allocations (memcheck).
    pub allocations: Counter,
    /// Bytes the server's write-family syscalls wrote (strace): shown, not gated.
    pub bytes_written: Counter,
    /// Syscalls by name (strace), every thread.
    pub syscalls: BTreeMap<String, Counter>,
    /// Counts that depend on time, shown and not gated (`epoll_wait_empty`: epoll waits
    /// that returned no event, i.e. timer wakeups).
    pub not_gated: BTreeMap<String, Counter>,
    /// The functions with the most own instructions per request, most first.
    pub functions: Vec<FunctionCost>,
    /// Every function's own instructions per request (for `--ab`; not written).
    #[serde(skip)]
    pub all_functions: BTreeMap<String, f64>,
}

/// A verdict of the comparison.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Beyond the threshold (instructions), any rise (allocations) or a rise of more
    /// than two calls in the window (syscalls).
    Regressed,
    /// Beyond the threshold the other way, or any fall.
    Improved,
    /// Within the threshold, or equal.
    Unchanged,
    /// Shown, not gated (bytes written).
    NotGated,
}

impl Verdict {
    /// The word in tables.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
            Verdict::NotGated => "not gated",
        }
    }
}

/// The comparison of base and head.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ab {
    /// The threshold on instructions per request, in percent.
    pub threshold_pct: f64,
    /// `regressed` when any workload regressed, else `improved` when any improved,
    /// else `unchanged`.
    pub verdict: Verdict,
    /// Per workload.
    pub workloads: Vec<AbWorkload>,
}

/// One workload's comparison.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AbWorkload {
    /// The workload's name.
    pub workload: String,
    /// The worst verdict of its counters.
    pub verdict: Verdict,
    /// Instructions, allocations, each syscall, bytes written.
    pub counters: Vec<AbCounter>,
    /// The functions whose own instructions per request changed most, most first.
    pub functions: Vec<AbFunction>,
}

/// One counter's comparison.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AbCounter {
    /// `instructions`, `allocations`, `bytes_written` or `syscall:NAME`.
    pub counter: String,
    /// Base, per request.
    pub base_per_request: f64,
    /// Head, per request.
    pub head_per_request: f64,
    /// `(head - base) / base` in percent (absent when base is 0).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delta_pct: Option<f64>,
    /// The counter's verdict.
    pub verdict: Verdict,
}

/// One function's change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AbFunction {
    /// The function.
    pub function: String,
    /// Its own instructions per request in base.
    pub base_per_request: f64,
    /// In head.
    pub head_per_request: f64,
    /// `head - base`.
    pub delta_per_request: f64,
}

/// The verdict of an exact count: any rise regresses (compared per request, so that
/// different request counts still compare).
fn exact(base: &Counter, head: &Counter) -> Verdict {
    match head.per_request.partial_cmp(&base.per_request) {
        Some(std::cmp::Ordering::Greater) => Verdict::Regressed,
        Some(std::cmp::Ordering::Less) => Verdict::Improved,
        _ => Verdict::Unchanged,
    }
}

fn pct(base: f64, head: f64) -> Option<f64> {
    (base != 0.0).then(|| (head - base) / base * 100.0)
}

fn row(name: &str, base: &Counter, head: &Counter, verdict: Verdict) -> AbCounter {
    AbCounter {
        counter: name.to_string(),
        base_per_request: base.per_request,
        head_per_request: head.per_request,
        delta_pct: pct(base.per_request, head.per_request),
        verdict,
    }
}

/// Calls by which one syscall's count in a window may differ between two runs of the
/// same server: a timer wakeup just after a window's first mark moves a blocking
/// `epoll_wait` into it (the call it replaced was entered before the mark, its re-entry
/// after), once per window; the difference of the two windows can so move by two.
/// Measured: the engine against itself, keep-alive, `epoll_wait` +1 call in 2,000
/// requests once in a few runs. A real extra syscall costs one per request (2,000 here).
const SYSCALL_WINDOW_EDGE_CALLS: f64 = 2.0;

/// The verdict of a syscall count: a rise of more than [`SYSCALL_WINDOW_EDGE_CALLS`]
/// over the `requests` of the difference window regresses.
fn syscall_verdict(base: &Counter, head: &Counter, requests: u64) -> Verdict {
    // Counts are whole calls: half a call more than the edge allowance is a clear line.
    let edge = (SYSCALL_WINDOW_EDGE_CALLS + 0.5) / requests.max(1) as f64;
    let delta = head.per_request - base.per_request;
    if delta > edge {
        Verdict::Regressed
    } else if delta < -edge {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    }
}

/// The worst of some verdicts: regressed, then improved, then unchanged.
fn worst(vs: impl IntoIterator<Item = Verdict>) -> Verdict {
    let mut out = Verdict::Unchanged;
    for v in vs {
        match v {
            Verdict::Regressed => return Verdict::Regressed,
            Verdict::Improved => out = Verdict::Improved,
            _ => {}
        }
    }
    out
}

/// Compares one workload of base and head; `functions` is how many functions to name.
pub fn compare_workload(
    base: &WorkloadCost,
    head: &WorkloadCost,
    threshold_pct: f64,
    functions: usize,
) -> AbWorkload {
    let zero = Counter {
        totals: [0, 0],
        per_request: 0.0,
    };
    let mut counters = Vec::new();
    let ins = pct(base.instructions.per_request, head.instructions.per_request);
    let v = match ins {
        Some(p) if p > threshold_pct => Verdict::Regressed,
        Some(p) if p < -threshold_pct => Verdict::Improved,
        Some(_) => Verdict::Unchanged,
        None => exact(&base.instructions, &head.instructions),
    };
    counters.push(row(
        "instructions",
        &base.instructions,
        &head.instructions,
        v,
    ));
    counters.push(row(
        "allocations",
        &base.allocations,
        &head.allocations,
        exact(&base.allocations, &head.allocations),
    ));
    let names: std::collections::BTreeSet<&String> =
        base.syscalls.keys().chain(head.syscalls.keys()).collect();
    for name in names {
        let b = base.syscalls.get(name).unwrap_or(&zero);
        let h = head.syscalls.get(name).unwrap_or(&zero);
        if b.difference() == 0 && h.difference() == 0 {
            continue;
        }
        let window = head.requests[1].saturating_sub(head.requests[0]);
        counters.push(row(
            &format!("syscall:{name}"),
            b,
            h,
            syscall_verdict(b, h, window),
        ));
    }
    counters.push(row(
        "bytes_written",
        &base.bytes_written,
        &head.bytes_written,
        Verdict::NotGated,
    ));
    let verdict = worst(counters.iter().map(|c| c.verdict));
    AbWorkload {
        workload: base.workload.clone(),
        verdict,
        counters,
        functions: changed_functions(&base.all_functions, &head.all_functions, functions),
    }
}

/// The `n` functions whose own cost per request changed most (by absolute change,
/// changes under 0.5 instructions per request left out: start-up noise of the whole-process counts, e.g. a poll loop).
pub fn changed_functions(
    base: &BTreeMap<String, f64>,
    head: &BTreeMap<String, f64>,
    n: usize,
) -> Vec<AbFunction> {
    let names: std::collections::BTreeSet<&String> = base.keys().chain(head.keys()).collect();
    let mut out: Vec<AbFunction> = names
        .into_iter()
        .map(|f| {
            let b = base.get(f).copied().unwrap_or(0.0);
            let h = head.get(f).copied().unwrap_or(0.0);
            AbFunction {
                function: f.clone(),
                base_per_request: b,
                head_per_request: h,
                delta_per_request: h - b,
            }
        })
        .filter(|f| f.delta_per_request.abs() >= 0.5)
        .collect();
    out.sort_by(|a, b| {
        b.delta_per_request
            .abs()
            .total_cmp(&a.delta_per_request.abs())
            .then_with(|| a.function.cmp(&b.function))
    });
    out.truncate(n);
    out
}

/// Compares base and head workload by workload (a workload measured on one side only
/// is left out).
pub fn compare(base: &ServerCost, head: &ServerCost, threshold_pct: f64, functions: usize) -> Ab {
    let workloads: Vec<AbWorkload> = base
        .workloads
        .iter()
        .filter_map(|b| {
            let h = head.workloads.iter().find(|h| h.workload == b.workload)?;
            Some(compare_workload(b, h, threshold_pct, functions))
        })
        .collect();
    Ab {
        threshold_pct,
        verdict: worst(workloads.iter().map(|w| w.verdict)),
        workloads,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(instr: [u64; 2], allocs: [u64; 2], reads: [u64; 2]) -> WorkloadCost {
        let r = [1000, 3000];
        let mut syscalls = BTreeMap::new();
        syscalls.insert("read".to_string(), Counter::new(reads, r));
        WorkloadCost {
            workload: "keep-alive".into(),
            description: String::new(),
            requests: r,
            instructions: Counter::new(instr, r),
            allocations: Counter::new(allocs, r),
            bytes_written: Counter::new([0, 0], r),
            syscalls,
            not_gated: BTreeMap::new(),
            functions: Vec::new(),
            all_functions: BTreeMap::new(),
        }
    }

    #[test]
    fn per_request_is_the_difference_over_the_extra_requests() {
        let c = Counter::new([3_730_031, 9_292_899], [1000, 3000]);
        assert!((c.per_request - 2781.434).abs() < 1e-3, "{}", c.per_request);
    }

    #[test]
    fn instructions_regress_beyond_the_threshold_only() {
        let base = workload([1_000_000, 3_000_000], [10, 10], [1000, 3000]);
        // +0.9 %: unchanged; +1.1 %: regressed; -1.1 %: improved.
        let within = workload([1_000_000, 3_018_000], [10, 10], [1000, 3000]);
        let beyond = workload([1_000_000, 3_022_000], [10, 10], [1000, 3000]);
        let better = workload([1_000_000, 2_978_000], [10, 10], [1000, 3000]);
        assert_eq!(
            compare_workload(&base, &within, 1.0, 5).verdict,
            Verdict::Unchanged
        );
        assert_eq!(
            compare_workload(&base, &beyond, 1.0, 5).verdict,
            Verdict::Regressed
        );
        assert_eq!(
            compare_workload(&base, &better, 1.0, 5).verdict,
            Verdict::Improved
        );
    }

    #[test]
    fn any_rise_of_allocations_or_syscalls_beyond_the_window_edges_regresses() {
        let base = workload([1_000_000, 3_000_000], [10, 10], [1000, 3000]);
        let alloc = workload([1_000_000, 3_000_000], [10, 11], [1000, 3000]);
        let read = workload([1_000_000, 3_000_000], [10, 10], [1000, 3003]);
        let fewer = workload([1_000_000, 3_000_000], [10, 10], [1000, 2997]);
        // One or two calls more or fewer in the window: its edges, not the server.
        for edge in [2998, 2999, 3001, 3002] {
            let e = workload([1_000_000, 3_000_000], [10, 10], [1000, edge]);
            assert_eq!(
                compare_workload(&base, &e, 1.0, 5).verdict,
                Verdict::Unchanged,
                "{edge}"
            );
        }
        assert_eq!(
            compare_workload(&base, &alloc, 1.0, 5).verdict,
            Verdict::Regressed
        );
        assert_eq!(
            compare_workload(&base, &read, 1.0, 5).verdict,
            Verdict::Regressed
        );
        assert_eq!(
            compare_workload(&base, &fewer, 1.0, 5).verdict,
            Verdict::Improved
        );
        assert_eq!(
            compare_workload(&base, &base, 1.0, 5).verdict,
            Verdict::Unchanged
        );
    }

    #[test]
    fn the_functions_that_changed_most_come_first() {
        let mut b = BTreeMap::new();
        let mut h = BTreeMap::new();
        b.insert("parse".to_string(), 100.0);
        h.insert("parse".to_string(), 101.0);
        b.insert("same".to_string(), 50.0);
        h.insert("same".to_string(), 50.0);
        h.insert("burn".to_string(), 30.0);
        let f = changed_functions(&b, &h, 5);
        let names: Vec<&str> = f.iter().map(|f| f.function.as_str()).collect();
        assert_eq!(names, ["burn", "parse"]);
        assert_eq!(f[0].delta_per_request, 30.0);
    }
}
