//! `loadgen report`: reads results files, computes what to show ([`crate::stats`]),
//! renders the plots ([`crate::plot`]) and writes `index.html` (self-contained: plots
//! inline as SVG, CSS inline, no reference outside the file) and `summary.md` (a
//! Markdown table fit for a pull-request comment).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::header::Header;
use crate::output::Staged;
use crate::plot::{self, Plot, PlotFiles};
use crate::result::{Results, RESULT_SCHEMA};
use crate::scenarios::{ScenarioResults, SCENARIOS_SCHEMA};
use crate::stats::{self, Comparison, SweepSummary};

/// A file given to `loadgen report`.
#[derive(Debug, Clone)]
pub enum Input {
    /// `loadgen.result/v1`.
    Results(Box<Results>),
    /// `loadgen.scenarios/v1`.
    Scenarios(Box<ScenarioResults>),
}

/// Reads a results or scenario results file; the error is one line naming the file.
pub fn load(path: &Path) -> Result<Input, String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{name}: not JSON: {e}"))?;
    let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("");
    match schema {
        RESULT_SCHEMA => serde_json::from_value(value)
            .map(|r| Input::Results(Box::new(r)))
            .map_err(|e| format!("{name}: not a valid {RESULT_SCHEMA} file: {e}")),
        SCENARIOS_SCHEMA => serde_json::from_value(value)
            .map(|r| Input::Scenarios(Box::new(r)))
            .map_err(|e| format!("{name}: not a valid {SCENARIOS_SCHEMA} file: {e}")),
        other => Err(format!(
            "{name}: schema {other:?} is neither {RESULT_SCHEMA} nor {SCENARIOS_SCHEMA}"
        )),
    }
}

/// What [`write_report`] wrote.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    /// `DIR/index.html`.
    pub index: PathBuf,
    /// `DIR/summary.md`.
    pub summary: PathBuf,
    /// Every plot's PNG and SVG.
    pub plots: Vec<PlotFiles>,
}

/// Computes, renders and writes the whole report into `dir` (created if missing).
pub fn write_report(
    results: &[Results],
    scenarios: &[ScenarioResults],
    dir: &Path,
) -> Result<ReportFiles, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("{}: cannot create the directory: {e}", dir.display()))?;
    let comparisons = stats::comparisons(results);
    let mut plots = Vec::new();
    if !results.is_empty() {
        // A sweep's steps have their own plot (latency vs rate): beside other runs they
        // would only crowd the spectrum, timeline and comparison. The tables keep them.
        let others = without_sweep_steps(results);
        let plotted = others.as_deref().unwrap_or(results);
        plots.push(Plot::Spectrum(stats::spectra(plotted)?));
        plots.push(Plot::Timeline(stats::timelines(plotted)));
        plots.push(Plot::Comparison(stats::comparisons(plotted)));
        let curves = stats::rate_curves(results);
        if !curves.is_empty() {
            plots.push(Plot::LatencyVsRate(curves));
        }
    }
    let sweeps = stats::sweep_summaries(results);
    if !scenarios.is_empty() {
        plots.push(Plot::Verdicts(stats::verdict_matrix(scenarios)));
    }
    // Every file is drawn or written under a temporary name first and put in place
    // only when all of them are: a report that fails half-way leaves the last one.
    let drawn = plot::stage_all(&plots, dir)?;
    let files: Vec<PlotFiles> = drawn.iter().map(|d| d.files.clone()).collect();
    let svgs: Vec<&str> = drawn.iter().map(|d| d.svg.as_str()).collect();
    let header = Header::new(results, scenarios);
    let summary = summary_markdown(&header, &comparisons, &sweeps, scenarios, !files.is_empty());
    let summary_path = dir.join("summary.md");
    let summary_file = stage(&summary_path, &summary)?;
    let html = index_html(&header, &comparisons, &sweeps, scenarios, &files, &svgs);
    let mut staged: Vec<Staged> = drawn.into_iter().flat_map(|d| d.staged).collect();
    staged.push(summary_file);
    let index = dir.join("index.html");
    staged.push(stage(&index, &html)?);
    plot::commit(staged)?;
    Ok(ReportFiles {
        index,
        summary: summary_path,
        plots: files,
    })
}

/// The files without their sweep steps, when some run is not a sweep step; `None`
/// when every run is one (or none is).
fn without_sweep_steps(results: &[Results]) -> Option<Vec<Results>> {
    let runs = || results.iter().flat_map(|f| f.runs.iter());
    let is_step = |r: &crate::result::RunResult| r.config.sweep.is_some();
    if !runs().any(is_step) || runs().all(is_step) {
        return None;
    }
    let kept = results
        .iter()
        .map(|f| Results {
            runs: f.runs.iter().filter(|r| !is_step(r)).cloned().collect(),
            ..f.clone()
        })
        .filter(|f| !f.runs.is_empty())
        .collect();
    Some(kept)
}

fn stage(path: &Path, text: &str) -> Result<Staged, String> {
    Staged::write(path, text.as_bytes())
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

/// A latency for people: `85 µs`, `1.25 ms`, `2.10 s`.
pub fn format_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.0} µs")
    }
}

fn format_rate(c: &stats::MeanCi) -> String {
    if c.n > 1 {
        format!("{:.0} ± {:.0}", c.mean, c.high - c.mean)
    } else {
        format!("{:.0}", c.mean)
    }
}

/// A mean latency, or `failed` when every run of the group failed (it has none).
fn latency_cell(ci: Option<stats::MeanCi>) -> String {
    ci.map_or_else(|| "failed".to_string(), |c| format_us(c.mean))
}

/// Runs in a group, with how many failed: `18`, `18 (2 failed)`.
fn runs_cell(c: &Comparison) -> String {
    match c.failed_runs {
        0 => c.requests_per_s.n.to_string(),
        f => format!("{} ({f} failed)", c.requests_per_s.n),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A sweep's answer: `12345 req/s`, or `none`.
fn sweep_answer(s: &SweepSummary) -> String {
    s.max_rate_per_s
        .map_or_else(|| "none".to_string(), |r| format!("{r:.0} req/s"))
}

/// The first rate that did not hold: `13000 req/s`, or `-` (all held).
fn sweep_failed(s: &SweepSummary) -> String {
    s.first_failed_per_s
        .map_or_else(|| "-".to_string(), |r| format!("{r:.0} req/s"))
}

/// The Markdown summary, made to be pasted where links to files do not resolve (a
/// pull-request comment, a job summary): tables only (one row per target and workload,
/// sweep answers, scenario totals, the machine and build) and one line that says where
/// the plots are.
pub fn summary_markdown(
    header: &Header,
    comparisons: &[Comparison],
    sweeps: &[SweepSummary],
    scenarios: &[ScenarioResults],
    plots: bool,
) -> String {
    let mut md = String::from("## loadgen report\n\n");
    md_row(&mut md, &["measured", &header.measured]);
    md.push_str("|---|---|\n");
    for (name, value) in header.machine.iter().chain(&header.build) {
        md_row(&mut md, &[*name, &md_cell(value)]);
    }
    md_row(
        &mut md,
        &["self-check warnings", &header.warnings.len().to_string()],
    );
    md.push('\n');
    if !comparisons.is_empty() {
        md_row(
            &mut md,
            &[
                "target",
                "workload",
                "runs",
                "req/s (95 % CI)",
                "p50",
                "p99",
                "errors",
            ],
        );
        md.push_str("|---|---|---:|---:|---:|---:|---:|\n");
        for c in comparisons {
            md_row(
                &mut md,
                &[
                    format!("`{}`", c.target),
                    c.workload.clone(),
                    runs_cell(c),
                    format_rate(&c.requests_per_s),
                    latency_cell(c.p50_us),
                    latency_cell(c.p99_us),
                    c.errors.to_string(),
                ],
            );
        }
        md.push_str(
            "\nLatencies are corrected (from each request's due time), means across runs.\n",
        );
    }
    if !sweeps.is_empty() {
        md.push('\n');
        md_row(
            &mut md,
            &[
                "sweep target",
                "p99 SLO",
                "max rate under the SLO",
                "first rate over it",
                "steps",
            ],
        );
        md.push_str("|---|---:|---:|---:|---:|\n");
        for s in sweeps {
            md_row(
                &mut md,
                &[
                    format!("`{}`", s.target),
                    format_us(s.slo_us as f64),
                    sweep_answer(s),
                    sweep_failed(s),
                    s.steps.to_string(),
                ],
            );
        }
    }
    if !scenarios.is_empty() {
        md.push('\n');
        md_row(
            &mut md,
            &[
                "scenarios",
                "pass",
                "fail",
                "non-strict",
                "skipped",
                "error",
                "flaky",
            ],
        );
        md.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
        let columns = stats::verdict_matrix(scenarios).columns;
        for (f, col) in scenarios.iter().zip(columns) {
            let t = &f.totals;
            let counts = [t.pass, t.fail, t.non_strict, t.skipped, t.error, t.flaky];
            let mut cells = vec![col];
            cells.extend(counts.iter().map(u32::to_string));
            md_row(&mut md, &cells);
        }
    }
    if plots {
        md.push_str(
            "\nPlots, the full settings and the warnings: `index.html` in the report \
             directory (self-contained; each plot is also beside it as PNG and SVG).\n",
        );
    }
    md
}

/// Text fit for a Markdown table cell: no pipe or line break to end the cell early.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// One Markdown table row: `| a | b |`.
fn md_row(md: &mut String, cells: &[impl AsRef<str>]) {
    md.push('|');
    for c in cells {
        md.push(' ');
        md.push_str(c.as_ref());
        md.push_str(" |");
    }
    md.push('\n');
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG file's text made fit to inline in HTML: the XML prolog and the namespace
/// declarations (which the HTML parser does not need) removed, so the page holds no
/// URL at all.
fn inline_svg(svg: &str) -> String {
    let start = svg.find("<svg").unwrap_or(0);
    svg[start..]
        .replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
        .replacen(" xmlns:xlink=\"http://www.w3.org/1999/xlink\"", "", 1)
}

const CSS: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1250px;color:#222}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 10px}\
td.n{text-align:right}th{background:#f3f3f3}figure{margin:2em 0}svg{max-width:100%;height:auto}\
figcaption{font-weight:bold;margin-bottom:.5em}\
#header{background:#f7f7f9;border:1px solid #ddd;padding:.5em 1.2em;margin-bottom:1.5em}\
table.kv th{text-align:left;font-weight:normal;color:#555;background:none}";

/// The header panel: what was measured, where, with what, and the warnings.
/// One `name | value` row of the header panel's tables, both escaped.
fn kv_row(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(
        out,
        "<tr><th>{}</th><td>{}</td></tr>",
        escape(name),
        escape(value)
    );
}

fn header_html(h: &Header) -> String {
    let mut out = String::from("<section id=\"header\">\n<h2>What was measured</h2>\n");
    let _ = writeln!(out, "<p>{}</p>", escape(&h.measured));
    out.push_str("<table class=\"kv\">\n");
    let joined = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(", ")
        }
    };
    let rows = [
        ("targets", joined(&h.targets)),
        ("workloads", joined(&h.workloads)),
    ];
    for (name, value) in rows
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .chain(h.machine.iter().map(|(n, v)| (*n, v.as_str())))
        .chain(h.build.iter().map(|(n, v)| (*n, v.as_str())))
    {
        kv_row(&mut out, name, value);
    }
    out.push_str("</table>\n");
    let _ = writeln!(
        out,
        "<details open>\n<summary>Settings ({})</summary>",
        h.settings.len()
    );
    if h.settings.is_empty() {
        out.push_str("<p>none recorded</p>\n");
    } else {
        out.push_str("<table class=\"kv\">\n");
        for (name, value) in &h.settings {
            kv_row(&mut out, name, value);
        }
        out.push_str("</table>\n");
    }
    out.push_str("</details>\n");
    let _ = writeln!(out, "<h3>Self-check warnings ({})</h3>", h.warnings.len());
    if h.warnings.is_empty() {
        out.push_str("<p>none</p>\n");
    } else {
        out.push_str("<table>\n<tr><th>runs</th><th>kind</th><th>message</th></tr>\n");
        for (at, kind, message) in &h.warnings {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(at),
                escape(kind),
                escape(message)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
    out
}

/// The self-contained HTML page; `svgs` are the plots' SVG documents, in order.
pub fn index_html(
    header: &Header,
    comparisons: &[Comparison],
    sweeps: &[SweepSummary],
    scenarios: &[ScenarioResults],
    plots: &[PlotFiles],
    svgs: &[&str],
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>loadgen report</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
         <h1>loadgen report</h1>\n"
    );
    h.push_str(&header_html(header));
    if !comparisons.is_empty() {
        h.push_str(
            "<table>\n<tr><th>target</th><th>workload</th><th>runs</th>\
             <th>req/s (95 % CI)</th><th>p50</th><th>p99</th><th>errors</th></tr>\n",
        );
        for c in comparisons {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&c.target),
                escape(&c.workload),
                runs_cell(c),
                format_rate(&c.requests_per_s),
                latency_cell(c.p50_us),
                latency_cell(c.p99_us),
                c.errors
            );
        }
        h.push_str("</table>\n");
    }
    if !sweeps.is_empty() {
        h.push_str(
            "<table>\n<tr><th>sweep target</th><th>p99 SLO</th><th>max rate under the SLO</th>\
             <th>first rate over it</th><th>steps</th></tr>\n",
        );
        for s in sweeps {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&s.target),
                format_us(s.slo_us as f64),
                sweep_answer(s),
                sweep_failed(s),
                s.steps
            );
        }
        h.push_str("</table>\n");
    }
    if !scenarios.is_empty() {
        let columns = stats::verdict_matrix(scenarios).columns;
        h.push_str(
            "<table>\n<tr><th>scenarios</th><th>pass</th><th>fail</th><th>non-strict</th>\
             <th>skipped</th><th>error</th><th>flaky</th></tr>\n",
        );
        for (f, col) in scenarios.iter().zip(columns) {
            let t = &f.totals;
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td></tr>",
                escape(&col),
                t.pass,
                t.fail,
                t.non_strict,
                t.skipped,
                t.error,
                t.flaky
            );
        }
        h.push_str("</table>\n");
    }
    for (p, svg) in plots.iter().zip(svgs) {
        let _ = write!(
            h,
            "<figure id=\"{}\">\n<figcaption>{}</figcaption>\n{}\n\
             <p><a href=\"{}\">PNG</a> · <a href=\"{}\">SVG</a></p>\n</figure>\n",
            p.stem,
            escape(p.title),
            inline_svg(svg),
            file_name(&p.png),
            file_name(&p.svg)
        );
    }
    h.push_str("</body>\n</html>\n");
    h
}
