//! The exact merge of results written by several load processes or hosts that ran at
//! the same time against the same targets (`loadgen merge`): one run per
//! (target, workload), as if one process had sent every request.
//!
//! What is exact: histograms are added bucket by bucket, so every percentile of the
//! merged run is the one a single process would have recorded; counts, bytes and
//! per-second requests and errors are sums. What is not: a per-second p50 / p99 cannot be
//! rebuilt from per-second summaries, so a merged timeline keeps the largest of the
//! inputs' (an upper bound); the latency summaries are recomputed from the merged
//! histograms.
//!
//! What is refused: a run given twice (the same results, or two files of one run id
//! holding the same target and workload, which would count its requests twice), and
//! shards of a run (files with `shard`) with one missing, duplicated or of another
//! count. The merged run's workload label and settings give the totals (connections,
//! threads, offered rate) of the runs it adds up.

use rayon::prelude::*;

use crate::histogram;
use crate::result::{OpenModel, Results, RunIdentity, RunResult, TimelinePoint, Window};

/// How far apart the inputs' starts (and ends) may be by default, milliseconds.
pub const DEFAULT_TOLERANCE_MS: u64 = 2_000;

/// (target, workload).
type RunKey = (String, String);

/// One input of a merge: its name (for messages) and its contents.
#[derive(Debug, Clone)]
pub struct MergeInput {
    /// The file name, as given.
    pub name: String,
    /// The results.
    pub results: Results,
}

/// Merges runs with the same (target, workload) across `inputs`; other runs are kept as
/// they are, in first-seen order. Refuses (one-line error) a run given twice, an
/// incomplete set of shards (see the module's comment), an input holding two runs of
/// the same target and workload, and runs to merge that do not cover the same time
/// (starts or ends more than `tolerance_ms` apart).
///
/// The merged file keeps the run id when every input has the same one (the shards of a
/// run); otherwise its `run_id` is `None`, for the caller to give it a new one.
pub fn merge(inputs: &[MergeInput], tolerance_ms: u64) -> Result<Results, String> {
    let first = inputs.first().ok_or("nothing to merge")?;
    check_distinct(inputs)?;
    check_shards(inputs)?;
    check_windows(inputs, tolerance_ms)?;
    let mut groups: Vec<(RunKey, Vec<(usize, &RunResult)>)> = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        for run in &input.results.runs {
            let key = (run.target.clone(), run.workload.clone());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, runs)) => {
                    if runs.iter().any(|(j, _)| *j == i) {
                        return Err(format!(
                            "{}: two runs of {} {}; merge takes one run per target and workload from each file",
                            input.name, key.0, key.1
                        ));
                    }
                    runs.push((i, run));
                }
                None => groups.push((key, vec![(i, run)])),
            }
        }
    }
    for ((target, workload), runs) in &groups {
        check_overlap(inputs, target, workload, runs, tolerance_ms)?;
    }
    let runs = groups
        .par_iter()
        .map(|(_, runs)| {
            let mut merged = merge_runs(&runs.iter().map(|(_, r)| *r).collect::<Vec<_>>())?;
            // The earliest start, with each input's file start standing in for runs
            // that do not record their own.
            if runs.len() > 1 {
                merged.started_unix_ms = runs.iter().map(|(i, r)| span_ms(&inputs[*i], r).0).min();
            }
            Ok(merged)
        })
        .collect::<Result<Vec<_>, String>>()?;
    let earliest = inputs
        .iter()
        .min_by_key(|i| i.results.started_unix_ms)
        .unwrap_or(first);
    Ok(Results {
        schema: first.results.schema.clone(),
        tool: first.results.tool.clone(),
        host: first.results.host.clone(),
        started_at: earliest.results.started_at.clone(),
        started_unix_ms: earliest.results.started_unix_ms,
        identity: RunIdentity {
            run_id: common_run_id(inputs),
            shard: None,
            window: merged_window(inputs),
        },
        runs,
    })
}

/// The window covering every input's, when they all record one.
fn merged_window(inputs: &[MergeInput]) -> Option<Window> {
    let windows: Vec<&Window> = inputs
        .iter()
        .map(|i| i.results.identity.window.as_ref())
        .collect::<Option<_>>()?;
    Some(Window {
        start_unix_ns: windows.iter().map(|w| w.start_unix_ns).min()?,
        end_unix_ns: windows.iter().map(|w| w.end_unix_ns).max()?,
        clock_offset_ns: None,
        clock_offset_source: format!(
            "merged from {} windows: each input gives its own offset",
            windows.len()
        ),
    })
}

/// The run id every input has, if they all have the same one.
fn common_run_id(inputs: &[MergeInput]) -> Option<String> {
    let id = inputs.first()?.results.identity.run_id.as_ref()?;
    inputs
        .iter()
        .all(|i| i.results.identity.run_id.as_ref() == Some(id))
        .then(|| id.clone())
}

/// Refuses a run given twice: the same results in two files, or two files of one run
/// id (neither of them a different shard than the other) that hold a run of the same
/// target and workload.
fn check_distinct(inputs: &[MergeInput]) -> Result<(), String> {
    for (j, b) in inputs.iter().enumerate() {
        for a in &inputs[..j] {
            if a.results == b.results {
                return Err(format!(
                    "{} and {} hold the same results: the same run given twice; give each run once",
                    a.name, b.name
                ));
            }
            let (ia, ib) = (&a.results.identity, &b.results.identity);
            let Some(id) = ia
                .run_id
                .as_ref()
                .filter(|id| ib.run_id.as_ref() == Some(*id))
            else {
                continue;
            };
            if let (Some(sa), Some(sb)) = (ia.shard, ib.shard) {
                if sa.index != sb.index {
                    continue;
                }
            }
            let shared = a.results.runs.iter().find(|ra| {
                b.results
                    .runs
                    .iter()
                    .any(|rb| rb.target == ra.target && rb.workload == ra.workload)
            });
            if let Some(r) = shared {
                let what = match (ia.shard, ib.shard) {
                    (Some(s), Some(_)) => format!("shard {} of {} of run {id}", s.index, s.count),
                    _ => format!("run {id}"),
                };
                return Err(format!(
                    "{} and {} are both {what} ({} {}): merging would count its requests twice; give each run once",
                    a.name, b.name, r.target, r.workload
                ));
            }
        }
    }
    Ok(())
}

/// Refuses shards of a run (inputs with `shard`, grouped by run id) unless each of its
/// shards is there exactly once (duplicates are [`check_distinct`]'s).
fn check_shards(inputs: &[MergeInput]) -> Result<(), String> {
    let mut runs: Vec<(&str, u32, Vec<&MergeInput>)> = Vec::new();
    for input in inputs {
        let identity = &input.results.identity;
        if let (Some(shard), Some(id), Some((first_id, first_count, files))) =
            (identity.shard, identity.run_id.as_deref(), runs.first())
        {
            if id != *first_id {
                return Err(format!(
                    "{} is shard {} of {} of run {id}, but {} is a shard of run {first_id} (of {first_count}): a foreign shard; merge the shards of one run at a time",
                    input.name, shard.index, shard.count, files[0].name
                ));
            }
        }
        let identity = &input.results.identity;
        let Some(shard) = identity.shard else {
            continue;
        };
        let Some(id) = identity.run_id.as_deref() else {
            return Err(format!(
                "{}: shard {} of {} without a run_id: shards are matched by their run's id; write them again with one",
                input.name, shard.index, shard.count
            ));
        };
        if shard.index >= shard.count {
            return Err(format!(
                "{}: shard index {} is not below the count {}: shards are numbered from 0",
                input.name, shard.index, shard.count
            ));
        }
        match runs.iter_mut().find(|(r, _, _)| *r == id) {
            Some((_, count, files)) => {
                if *count != shard.count {
                    return Err(format!(
                        "{} is one of {count} shards of run {id} but {} (shard {}) one of {}: a foreign shard; give the shards of one split",
                        files[0].name, input.name, shard.index, shard.count
                    ));
                }
                files.push(input);
            }
            None => runs.push((id, shard.count, vec![input])),
        }
    }
    for (id, count, files) in &runs {
        let has = |i: u32| {
            files
                .iter()
                .any(|f| f.results.identity.shard.map(|s| s.index) == Some(i))
        };
        if let Some(missing) = (0..*count).find(|i| !has(*i)) {
            let given: Vec<String> = files
                .iter()
                .filter_map(|f| {
                    let s = f.results.identity.shard?;
                    Some(format!("{} (shard {})", f.name, s.index))
                })
                .collect();
            return Err(format!(
                "run {id}: shard {missing} of {count} is missing (given: {}); merge needs every shard once",
                given.join(", ")
            ));
        }
    }
    Ok(())
}

/// Refuses inputs whose recorded measuring windows (sharded runs write them) start or
/// end more than `tolerance_ms` apart.
fn check_windows(inputs: &[MergeInput], tolerance_ms: u64) -> Result<(), String> {
    let with: Vec<(&MergeInput, &Window)> = inputs
        .iter()
        .filter_map(|i| Some((i, i.results.identity.window.as_ref()?)))
        .collect();
    let Some(&(first, w0)) = with.first() else {
        return Ok(());
    };
    let tolerance_ns = u128::from(tolerance_ms) * 1_000_000;
    // On the server's clock when every input knows its offset from it.
    let on_server = with.iter().all(|(_, w)| w.clock_offset_ns.is_some());
    let at = |w: &Window, t: u64| {
        let offset = if on_server {
            w.clock_offset_ns.unwrap_or(0)
        } else {
            0
        };
        i128::from(t) + i128::from(offset)
    };
    for &(input, w) in &with[1..] {
        let ds = at(w, w.start_unix_ns).abs_diff(at(w0, w0.start_unix_ns));
        let de = at(w, w.end_unix_ns).abs_diff(at(w0, w0.end_unix_ns));
        if ds.max(de) > tolerance_ns {
            let shard = |i: &MergeInput| match i.results.identity.shard {
                Some(s) => format!(" (shard {})", s.index),
                None => String::new(),
            };
            return Err(format!(
                "{}{} and {}{} measured different windows (starts {:.3} s apart, ends {:.3} s apart{}, tolerance {:.3} s): start the shards with the same --start-at, check the hosts' clocks, or raise --tolerance",
                first.name,
                shard(first),
                input.name,
                shard(input),
                ds as f64 / 1e9,
                de as f64 / 1e9,
                if on_server {
                    " on the server's clock"
                } else {
                    ""
                },
                tolerance_ms as f64 / 1000.0
            ));
        }
    }
    Ok(())
}

/// The run's measured time span: from its own start when the file records it (a bench
/// file holds many runs one after another), else from the file's start.
fn span_ms(input: &MergeInput, run: &RunResult) -> (u64, u64) {
    let start = run.started_unix_ms.unwrap_or(input.results.started_unix_ms);
    (start, start + (run.duration_s * 1000.0).round() as u64)
}

fn check_overlap(
    inputs: &[MergeInput],
    target: &str,
    workload: &str,
    runs: &[(usize, &RunResult)],
    tolerance_ms: u64,
) -> Result<(), String> {
    let Some(&(i0, r0)) = runs.first() else {
        return Ok(());
    };
    let (s0, e0) = span_ms(&inputs[i0], r0);
    for &(i, r) in &runs[1..] {
        let (s, e) = span_ms(&inputs[i], r);
        let ds = s.abs_diff(s0);
        let de = e.abs_diff(e0);
        if ds > tolerance_ms || de > tolerance_ms {
            return Err(format!(
                "{} and {} did not run at the same time ({target} {workload}: starts {:.1} s apart, ends {:.1} s apart, tolerance {:.1} s); merge combines runs made together",
                inputs[i0].name,
                inputs[i].name,
                ds as f64 / 1000.0,
                de as f64 / 1000.0,
                tolerance_ms as f64 / 1000.0
            ));
        }
    }
    Ok(())
}

fn add_histograms(encoded: &[&str]) -> Result<histogram::LatencyHistogram, String> {
    let mut sum = histogram::new_histogram();
    for e in encoded {
        let h = histogram::decode(e)?;
        sum.add(&h)
            .map_err(|e| format!("histograms do not add: {e:?}"))?;
    }
    Ok(sum)
}

fn merge_runs(runs: &[&RunResult]) -> Result<RunResult, String> {
    let first = runs[0];
    if runs.len() == 1 {
        return Ok(first.clone());
    }
    let label = format!("{} {}", first.target, first.workload);
    let hist = |f: fn(&RunResult) -> &str| {
        add_histograms(&runs.iter().map(|r| f(r)).collect::<Vec<_>>())
            .map_err(|e| format!("{label}: {e}"))
    };
    let corrected = hist(|r| &r.histogram_corrected)?;
    let uncorrected = hist(|r| &r.histogram_uncorrected)?;
    let errors_h = hist(|r| &r.histogram_errors)?;

    let mut out = first.clone();
    for r in &runs[1..] {
        out.requests += r.requests;
        out.errors.add(&r.errors);
        out.requests_per_s += r.requests_per_s;
        out.bytes_per_s += r.bytes_per_s;
        out.bytes_read += r.bytes_read;
        out.bytes_written += r.bytes_written;
        out.duration_s = out.duration_s.max(r.duration_s);
        for w in &r.warnings {
            if !out.warnings.contains(w) {
                out.warnings.push(w.clone());
            }
        }
    }
    out.latency_corrected = histogram::summarize(&corrected);
    out.latency_uncorrected = histogram::summarize(&uncorrected);
    out.latency_errors = histogram::summarize(&errors_h);
    out.histogram_corrected = histogram::encode(&corrected);
    out.histogram_uncorrected = histogram::encode(&uncorrected);
    out.histogram_errors = histogram::encode(&errors_h);
    out.timeline = merge_timelines(runs);
    out.open_model = merge_open_model(runs);
    out.client_cpu_s = runs.iter().map(|r| r.client_cpu_s).sum();
    // Every process saw the same server: its CPU time is not a sum, and which
    // process's reading to keep is arbitrary.
    out.server_cpu_s = None;
    out.config.merged_runs = Some(runs.len() as u64);
    label_totals(&mut out, runs);
    Ok(out)
}

/// Gives the merged run the totals of the runs it adds up: `connections`, `threads`
/// and `rate_per_s` in its settings, and in the workload label (`GET /, 8 conns,
/// open 500/s`, as `loadgen run` names it) the connections and the offered rate.
fn label_totals(out: &mut RunResult, runs: &[&RunResult]) {
    let setting = |r: &RunResult, key: &str| r.config.settings.get(key).and_then(|v| v.as_f64());
    let total = |key: &str| -> Option<f64> { runs.iter().map(|r| setting(r, key)).sum() };
    if let (Some(each), Some(sum)) = (setting(runs[0], "connections"), total("connections")) {
        out.workload =
            out.workload
                .replacen(&format!(", {each} conns"), &format!(", {sum} conns"), 1);
        out.config
            .settings
            .insert("connections".into(), (sum as u64).into());
    }
    if let Some(sum) = total("threads") {
        out.config
            .settings
            .insert("threads".into(), (sum as u64).into());
    }
    if let (Some(each), Some(sum)) = (setting(runs[0], "rate_per_s"), total("rate_per_s")) {
        out.workload =
            out.workload
                .replacen(&format!(", open {each}/s"), &format!(", open {sum}/s"), 1);
        out.config.settings.insert("rate_per_s".into(), sum.into());
    }
}

fn merge_timelines(runs: &[&RunResult]) -> Vec<TimelinePoint> {
    let mut out: Vec<TimelinePoint> = Vec::new();
    for p in runs.iter().flat_map(|r| r.timeline.iter()) {
        match out.iter_mut().find(|q| q.second == p.second) {
            Some(q) => {
                q.requests += p.requests;
                q.errors += p.errors;
                q.p50_us = q.p50_us.max(p.p50_us);
                q.p99_us = q.p99_us.max(p.p99_us);
                q.max_us = q.max_us.max(p.max_us);
            }
            None => out.push(p.clone()),
        }
    }
    out.sort_by_key(|p| p.second);
    out
}

fn merge_open_model(runs: &[&RunResult]) -> Option<OpenModel> {
    let models: Vec<&OpenModel> = runs.iter().filter_map(|r| r.open_model.as_ref()).collect();
    let first = models.first()?;
    let sent: Vec<f64> = runs.iter().map(|r| r.requests as f64).collect();
    let weight: f64 = sent.iter().sum();
    let mean_lag_us = if weight > 0.0 {
        runs.iter()
            .zip(&sent)
            .filter_map(|(r, w)| r.open_model.as_ref().map(|m| m.mean_lag_us * w))
            .sum::<f64>()
            / weight
    } else {
        first.mean_lag_us
    };
    Some(OpenModel {
        rate_per_s: models.iter().map(|m| m.rate_per_s).sum(),
        arrivals: if models.iter().all(|m| m.arrivals == first.arrivals) {
            first.arrivals.clone()
        } else {
            "mixed".to_string()
        },
        late: models.iter().map(|m| m.late).sum(),
        never_sent: models.iter().map(|m| m.never_sent).sum(),
        mean_lag_us,
        max_lag_us: models.iter().map(|m| m.max_lag_us).max().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{ErrorCounts, Host, LatencySummary, Tool};

    fn run(started_unix_ms: Option<u64>) -> RunResult {
        let empty = histogram::encode(&histogram::new_histogram());
        RunResult {
            target: "t".into(),
            workload: "w".into(),
            config: Default::default(),
            duration_s: 1.0,
            requests: 10,
            errors: ErrorCounts::default(),
            requests_per_s: 10.0,
            bytes_per_s: 100.0,
            bytes_read: 100,
            bytes_written: 100,
            latency_corrected: LatencySummary::default(),
            latency_uncorrected: LatencySummary::default(),
            latency_errors: LatencySummary::default(),
            histogram_corrected: empty.clone(),
            histogram_uncorrected: empty.clone(),
            histogram_errors: empty,
            timeline: Vec::new(),
            open_model: None,
            client_cpu_s: None,
            server_cpu_s: None,
            warnings: Vec::new(),
            started_unix_ms,
        }
    }

    fn input(name: &str, file_start: u64, run_start: Option<u64>) -> MergeInput {
        MergeInput {
            name: name.into(),
            results: Results {
                schema: crate::RESULT_SCHEMA.into(),
                tool: Tool {
                    name: "loadgen".into(),
                    version: "0".into(),
                    git_revision: None,
                },
                host: Host {
                    hostname: None,
                    kernel: "k".into(),
                    cpu_model: "c".into(),
                    cores: 1,
                    governor: None,
                },
                started_at: "1970-01-01T00:00:00.000Z".into(),
                started_unix_ms: file_start,
                identity: RunIdentity::default(),
                runs: vec![run(run_start)],
            },
        }
    }

    #[test]
    fn the_runs_own_start_counts_over_the_files() {
        // Files started a minute apart (a bench on each host ran other workloads
        // first), but this run ran at the same time on both: merged.
        let m = merge(
            &[
                input("a", 1_000_000, Some(1_100_000)),
                input("b", 1_040_000, Some(1_100_500)),
            ],
            DEFAULT_TOLERANCE_MS,
        )
        .unwrap();
        assert_eq!(m.runs.len(), 1);
        assert_eq!(m.runs[0].requests, 20);
        assert_eq!(m.runs[0].started_unix_ms, Some(1_100_000));
        // Files started together, but the runs did not.
        let e = merge(
            &[
                input("a", 1_000_000, Some(1_000_000)),
                input("b", 1_000_000, Some(1_060_000)),
            ],
            DEFAULT_TOLERANCE_MS,
        )
        .unwrap_err();
        assert!(e.contains("did not run at the same time"), "{e}");
        // Without run starts (older files), the files' starts stand for them.
        let e = merge(
            &[input("a", 1_000_000, None), input("b", 1_060_000, None)],
            DEFAULT_TOLERANCE_MS,
        )
        .unwrap_err();
        assert!(e.contains("did not run at the same time"), "{e}");
        let m = merge(
            &[input("a", 1_000_000, None), input("b", 1_001_000, None)],
            DEFAULT_TOLERANCE_MS,
        )
        .unwrap();
        assert_eq!(m.runs[0].started_unix_ms, Some(1_000_000));
    }

    /// Shard `index` of 2 of run `id`, its window from `start_s` on its host's clock
    /// with that clock `offset_ms` behind the server's.
    fn shard(id: &str, index: u32, start_s: u64, offset_ms: Option<i64>) -> MergeInput {
        let mut i = input(
            &format!("{id}-{index}"),
            start_s * 1000,
            Some(start_s * 1000),
        );
        i.results.identity = RunIdentity {
            run_id: Some(id.into()),
            shard: Some(crate::result::Shard { index, count: 2 }),
            window: Some(Window {
                start_unix_ns: start_s * 1_000_000_000,
                end_unix_ns: (start_s + 1) * 1_000_000_000,
                clock_offset_ns: offset_ms.map(|ms| ms * 1_000_000),
                clock_offset_source: "test".into(),
            }),
        };
        i.results.runs[0].requests = 10 + u64::from(index);
        i
    }

    #[test]
    fn shards_are_compared_on_the_servers_clock_when_they_know_it() {
        // The same window on both hosts' clocks, and the clocks agree: merged.
        let m = merge(
            &[shard("r", 0, 100, Some(2)), shard("r", 1, 100, Some(-1))],
            1000,
        )
        .unwrap();
        assert_eq!(m.runs[0].requests, 21);
        assert_eq!(m.identity.run_id.as_deref(), Some("r"));
        let w = m.identity.window.unwrap();
        assert_eq!(
            (w.start_unix_ns, w.end_unix_ns),
            (100_000_000_000, 101_000_000_000)
        );
        // Host 1's clock is 3 s behind: it started 3 s late on the server's clock.
        let e = merge(
            &[shard("r", 0, 100, Some(0)), shard("r", 1, 100, Some(3000))],
            1000,
        )
        .unwrap_err();
        assert!(
            e.contains("on the server's clock") && e.contains("r-1 (shard 1)"),
            "{e}"
        );
        // Without offsets the hosts' clocks are taken as they are.
        assert!(merge(
            &[shard("r", 0, 100, None), shard("r", 1, 100, Some(3000))],
            1000
        )
        .is_ok());
        let e = merge(&[shard("r", 0, 100, None), shard("r", 1, 103, None)], 1000).unwrap_err();
        assert!(e.contains("different windows"), "{e}");
    }

    #[test]
    fn a_foreign_shard_is_named() {
        let e = merge(&[shard("r", 0, 100, None), shard("q", 1, 100, None)], 1000).unwrap_err();
        assert!(
            e.contains("q-1 is shard 1 of 2 of run q") && e.contains("foreign"),
            "{e}"
        );
        let e = merge(&[shard("r", 0, 100, None), shard("r", 0, 100, None)], 1000).unwrap_err();
        assert!(
            e.contains("same results") || e.contains("both shard 0 of 2"),
            "{e}"
        );
        let e = merge(&[shard("r", 1, 100, None)], 1000).unwrap_err();
        assert!(e.contains("shard 0 of 2 is missing"), "{e}");
    }
}
