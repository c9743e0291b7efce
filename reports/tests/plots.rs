//! Every plot kind renders, from results built here, to a valid PNG and SVG of
//! non-trivial size; the report pages reference nothing outside themselves.

use std::path::{Path, PathBuf};

use reports::histogram::{self, encode, new_histogram, record};
use reports::plot::{self, Plot};
use reports::scenarios::{ScenarioResult, ScenarioResults, ScenarioRun, Totals, VerdictKind};
use reports::{stats, ErrorCounts, Host, Results, RunResult, TimelinePoint, Tool};

fn tool() -> Tool {
    Tool {
        name: "loadgen".into(),
        version: "0.1.0".into(),
        git_revision: None,
    }
}

fn host() -> Host {
    Host {
        hostname: Some("testhost".into()),
        kernel: "6.1".into(),
        cpu_model: "test".into(),
        cores: 2,
        governor: None,
    }
}

/// A run whose latencies spread from `base_us` with a long tail.
fn run(target: &str, workload: &str, base_us: u64, rps: f64) -> RunResult {
    let mut corrected = new_histogram();
    let mut uncorrected = new_histogram();
    for i in 0..20_000u64 {
        let v = base_us + (i * 7919) % (base_us * 4) + if i % 500 == 0 { base_us * 50 } else { 0 };
        record(&mut corrected, v + v / 10);
        record(&mut uncorrected, v);
    }
    let timeline = (0..5)
        .map(|s| TimelinePoint {
            second: s,
            requests: (rps as u64) + s * 100,
            errors: s % 2,
            p50_us: base_us * 2,
            p99_us: base_us * 5 + s * 30,
            max_us: base_us * 50,
        })
        .collect();
    RunResult {
        target: target.into(),
        workload: workload.into(),
        config: Default::default(),
        duration_s: 5.0,
        requests: 20_000,
        errors: ErrorCounts::default(),
        requests_per_s: rps,
        bytes_per_s: rps * 100.0,
        bytes_read: 2_000_000,
        bytes_written: 1_000_000,
        latency_corrected: histogram::summarize(&corrected),
        latency_uncorrected: histogram::summarize(&uncorrected),
        latency_errors: Default::default(),
        histogram_corrected: encode(&corrected),
        histogram_uncorrected: encode(&uncorrected),
        histogram_errors: encode(&new_histogram()),
        timeline,
        open_model: None,
        client_cpu_s: Some(1.0),
        server_cpu_s: None,
        warnings: Vec::new(),
        started_unix_ms: None,
    }
}

fn results(runs: Vec<RunResult>) -> Results {
    Results {
        schema: reports::RESULT_SCHEMA.into(),
        tool: tool(),
        host: host(),
        started_at: "2025-01-01T00:00:00Z".into(),
        started_unix_ms: 1_735_689_600_000,
        identity: Default::default(),
        runs,
    }
}

fn fixture_results() -> Vec<Results> {
    // Two repeats of two targets: the comparison has confidence intervals.
    (0..2)
        .map(|k| {
            results(vec![
                run(
                    "http://127.0.0.1:8080/",
                    "plaintext",
                    80 + k * 5,
                    50_000.0 + k as f64 * 900.0,
                ),
                run(
                    "http://127.0.0.1:8081/",
                    "plaintext",
                    120 + k * 7,
                    41_000.0 - k as f64 * 700.0,
                ),
            ])
        })
        .collect()
}

/// A sweep of one target: open-model runs at rising rates, p99 climbing past a 10 ms
/// SLO, tagged the way `loadgen sweep` tags them.
fn fixture_sweep() -> Results {
    let steps = [
        (1000.0, 100, true),
        (1500.0, 150, true),
        (2000.0, 400, true),
        (2500.0, 3000, false),
    ];
    let runs = steps
        .iter()
        .enumerate()
        .map(|(i, &(rate, base_us, held))| {
            let mut r = run("http://127.0.0.1:8082/", "sweep", base_us, rate * 0.99);
            r.open_model = Some(reports::OpenModel {
                rate_per_s: rate,
                arrivals: "fixed".into(),
                ..Default::default()
            });
            r.config.sweep = Some(reports::SweepRecord {
                sweep_step: i as u64 + 1,
                sweep_rate: rate,
                sweep_slo_us: 10_000,
                sweep_held: held,
                ..Default::default()
            });
            r
        })
        .collect();
    results(runs)
}

fn fixture_scenarios(fault: Option<&str>) -> ScenarioResults {
    let verdicts = [
        VerdictKind::Pass,
        VerdictKind::Fail,
        VerdictKind::NonStrict,
        VerdictKind::Skipped,
        VerdictKind::Error,
        VerdictKind::Pass,
    ];
    let scenarios = verdicts
        .iter()
        .enumerate()
        .map(|(i, v)| ScenarioResult {
            id: format!("section.clause-{i}"),
            level: "MUST".into(),
            clause: "The engine does what it says.".into(),
            aliases: Vec::new(),
            verdict: if fault.is_some() {
                VerdictKind::Fail
            } else {
                *v
            },
            reason: None,
            flaky: i == 5,
            duration_ms: 10.0,
            runs: vec![ScenarioRun {
                verdict: *v,
                reason: None,
                duration_ms: 10.0,
            }],
            expected: Vec::new(),
            actual: Vec::new(),
            failures: Vec::new(),
        })
        .collect();
    ScenarioResults {
        schema: reports::scenarios::SCENARIOS_SCHEMA.into(),
        tool: tool(),
        host: host(),
        started_at: "2025-01-01T00:00:00Z".into(),
        started_unix_ms: 1_735_689_600_000,
        duration_ms: 60.0,
        slack: 1.0,
        workers: 2,
        fault: fault.map(str::to_string),
        target: "reference".into(),
        repeat: 1,
        parallel: 2,
        totals: Totals::default(),
        expectations: None,
        exit_code: 1,
        scenarios,
    }
}

fn out_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("plots-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A PNG: the signature, an IHDR chunk first with the expected size, and more than
/// 5 KB (a blank or text-less image compresses to far less).
#[track_caller]
fn assert_png(path: &Path, size: (u32, u32)) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{}: no PNG signature",
        path.display()
    );
    assert_eq!(
        &bytes[12..16],
        b"IHDR",
        "{}: IHDR is not first",
        path.display()
    );
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((w, h), size, "{}", path.display());
    assert!(
        bytes.len() > 5_000,
        "{}: only {} bytes",
        path.display(),
        bytes.len()
    );
}

#[track_caller]
fn assert_svg(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let head = text.trim_start();
    assert!(
        head.starts_with("<svg") || head.starts_with("<?xml"),
        "{}: {}",
        path.display(),
        &text[..80.min(text.len())]
    );
    assert!(
        text.trim_end().ends_with("</svg>"),
        "{}: no </svg> at the end",
        path.display()
    );
    assert!(text.contains("<text"), "{}: no text", path.display());
    assert!(
        text.len() > 2_000,
        "{}: only {} bytes",
        path.display(),
        text.len()
    );
}

#[test]
fn every_plot_kind_renders_to_valid_png_and_svg() {
    let files = fixture_results();
    let scenarios = [
        fixture_scenarios(None),
        fixture_scenarios(Some("close-without-drain")),
    ];
    let plots = vec![
        Plot::Spectrum(stats::spectra(&files).unwrap()),
        Plot::Timeline(stats::timelines(&files)),
        Plot::Comparison(stats::comparisons(&files)),
        Plot::Verdicts(stats::verdict_matrix(&scenarios)),
        Plot::LatencyVsRate(stats::rate_curves(&[fixture_sweep()])),
    ];
    let dir = out_dir("kinds");
    let written = plot::render_all(&plots, &dir).unwrap();
    assert_eq!(written.len(), 5);
    for (p, f) in plots.iter().zip(&written) {
        assert_png(&f.png, p.size());
        assert_svg(&f.svg);
    }
}

#[test]
fn empty_inputs_still_draw() {
    let dir = out_dir("empty");
    let plots = vec![
        Plot::Spectrum(Vec::new()),
        Plot::Timeline(Vec::new()),
        Plot::Comparison(Vec::new()),
        Plot::LatencyVsRate(Vec::new()),
    ];
    for f in plot::render_all(&plots, &dir).unwrap() {
        assert!(std::fs::metadata(&f.png).unwrap().len() > 0);
        let svg = std::fs::read_to_string(&f.svg).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(
            svg.contains("\nno "),
            "{}: no placeholder text",
            f.svg.display()
        );
    }
}

#[test]
fn the_report_is_self_contained() {
    let dir = out_dir("report");
    let files = reports::report::write_report(&fixture_results(), &[fixture_scenarios(None)], &dir)
        .unwrap();
    let html = std::fs::read_to_string(&files.index).unwrap();
    for external in [
        "http://",
        "https://",
        "src=\"//",
        "<link",
        "<script src",
        "url(",
    ] {
        assert!(!html.contains(external), "index.html holds {external:?}");
    }
    assert_eq!(html.matches("<svg").count(), 4);
    let md = std::fs::read_to_string(&files.summary).unwrap();
    assert!(
        md.contains("| target | workload | runs | req/s (95 % CI) | p50 | p99 | errors |"),
        "{md}"
    );
    assert!(md.contains("| `127.0.0.1:8080/` | plaintext | 2 |"), "{md}");
    // No links: they would not resolve in a pull-request comment.
    assert!(!md.contains("](") && !md.contains(".png"), "{md}");
    assert!(md.contains("`index.html` in the report directory"), "{md}");
    // Without open-model runs there is no latency-vs-rate plot and no sweep table.
    assert!(
        !md.contains("latency-vs-rate") && !md.contains("sweep"),
        "{md}"
    );
}

#[test]
fn a_sweep_adds_the_latency_vs_rate_plot_and_its_answer() {
    let dir = out_dir("sweep-report");
    let mut files = fixture_results();
    files.push(fixture_sweep());
    let written = reports::report::write_report(&files, &[], &dir).unwrap();
    let stems: Vec<&str> = written.plots.iter().map(|p| p.stem).collect();
    assert_eq!(
        stems,
        ["spectrum", "timeline", "comparison", "latency-vs-rate"]
    );
    let html = std::fs::read_to_string(&written.index).unwrap();
    assert_eq!(html.matches("<svg").count(), 4);
    assert!(!html.contains("http://") && !html.contains("https://"));
    let md = std::fs::read_to_string(&written.summary).unwrap();
    assert!(
        md.contains("| `127.0.0.1:8082/` | 10.00 ms | 2000 req/s | 2500 req/s | 4 |"),
        "{md}"
    );
    // Each step is its own row, not a repeat of one `sweep` workload.
    assert!(
        md.contains("| `127.0.0.1:8082/` | sweep @ 2500/s | 1 |"),
        "{md}"
    );
    let svg = std::fs::read_to_string(dir.join("latency-vs-rate.svg")).unwrap();
    assert!(
        svg.contains("SLO: p99 &lt;= 10 ms") || svg.contains("SLO: p99 <= 10 ms"),
        "no SLO label"
    );
}

#[test]
fn verdict_columns_are_named_by_target_and_fault() {
    let mut url = fixture_scenarios(None);
    url.target = "http://127.0.0.1:8080/".into();
    let mut nginx = fixture_scenarios(None);
    nginx.target = "nginx (nginx/1.22.1)".into();
    let files = [
        fixture_scenarios(None),
        url,
        nginx,
        fixture_scenarios(Some("close-without-drain")),
        fixture_scenarios(None),
    ];
    assert_eq!(
        stats::verdict_matrix(&files).columns,
        [
            "reference",
            "http://127.0.0.1:8080/",
            "nginx (nginx/1.22.1)",
            "reference + close-without-drain",
            "reference #2",
        ]
    );
}

/// `groups` targets × one workload, each run `repeats` times, latencies and rates
/// spread so that every group is its own line.
fn many_runs(groups: usize, repeats: usize) -> Vec<Results> {
    (0..repeats)
        .map(|k| {
            let runs = (0..groups)
                .map(|g| {
                    run(
                        &format!("http://127.0.0.1:{}/", 8000 + g),
                        "plaintext",
                        60 + g as u64 * 9 + k as u64 * 3,
                        20_000.0 + g as f64 * 700.0 + k as f64 * 150.0,
                    )
                })
                .collect();
            results(runs)
        })
        .collect()
}

/// `targets` sweeps of four steps each.
fn many_sweeps(targets: usize) -> Vec<Results> {
    (0..targets)
        .map(|t| {
            let mut f = fixture_sweep();
            for r in &mut f.runs {
                r.target = format!("http://127.0.0.1:{}/", 9000 + t);
                r.latency_corrected.p99_us += t as u64 * 200;
            }
            f
        })
        .collect()
}

/// The checks of a drawn plot's layout: the legend and every text inside the image, no
/// text over a plot area (unless it is an annotation, which lies wholly inside one),
/// legend entries apart from each other, `entries` of them in `series` colours, each
/// far from every other.
#[track_caller]
fn assert_layout(plot: &Plot, entries: usize, series: usize) {
    let layout = plot::layout(plot).unwrap();
    let stem = plot.stem();
    let (w, h) = layout.size;
    assert_eq!((w, h), plot.size(), "{stem}");
    let image = plot::Rect {
        x0: 0,
        y0: 0,
        x1: w as i32,
        y1: h as i32,
    };
    assert!(!layout.plot_areas.is_empty(), "{stem}: no plot area");
    for t in &layout.texts {
        assert!(
            image.contains(&t.rect),
            "{stem}: {t:?} outside the image {image:?}"
        );
        if layout.annotations.contains(&t.text) {
            assert!(
                layout.plot_areas.iter().any(|a| a.contains(&t.rect)),
                "{stem}: annotation {t:?} not inside a plot area"
            );
        } else {
            for a in &layout.plot_areas {
                assert!(
                    !a.overlaps(&t.rect),
                    "{stem}: {t:?} over the plot area {a:?}"
                );
            }
        }
    }
    assert_eq!(layout.legend.len(), entries, "{stem}: legend entries");
    for (i, e) in layout.legend.iter().enumerate() {
        assert!(
            image.contains(&e.rect),
            "{stem}: legend {e:?} outside the image"
        );
        for a in &layout.plot_areas {
            assert!(
                !a.overlaps(&e.rect),
                "{stem}: legend {e:?} over the plot area {a:?}"
            );
        }
        for o in &layout.legend[i + 1..] {
            assert!(!o.rect.overlaps(&e.rect), "{stem}: legend {e:?} over {o:?}");
        }
    }
    let mut colors: Vec<_> = Vec::new();
    for e in &layout.legend {
        if !colors.contains(&e.color) {
            colors.push(e.color);
        }
    }
    assert_eq!(colors.len(), series, "{stem}: series colours");
    for (i, a) in colors.iter().enumerate() {
        for b in &colors[i + 1..] {
            assert!(
                plot::palette::distance(*a, *b) >= MIN_DELTA_E,
                "{stem}: colours {a:?} and {b:?} too close"
            );
        }
    }
}

/// The least CIE76 difference between two series' colours.
const MIN_DELTA_E: f64 = 12.0;

#[test]
fn forty_series_have_distinct_colours() {
    for i in 0..40 {
        for j in i + 1..40 {
            let (a, b) = (plot::palette::color(i), plot::palette::color(j));
            let d = plot::palette::distance(a, b);
            assert!(
                d >= MIN_DELTA_E,
                "colours {i} {a:?} and {j} {b:?}: ΔE {d:.1}"
            );
        }
        let white = plot::palette::distance(plot::palette::color(i), plotters::style::WHITE);
        assert!(
            white >= 25.0,
            "colour {i} too pale: ΔE {white:.1} from white"
        );
    }
}

#[test]
fn forty_runs_lay_out_inside_the_image() {
    let files = many_runs(40, 1);
    assert_layout(&Plot::Spectrum(stats::spectra(&files).unwrap()), 40, 40);
    // Ten targets × four workloads: small multiples, a row per workload.
    let mut mixed = many_runs(10, 1);
    for (i, r) in mixed[0].runs.iter_mut().enumerate() {
        r.workload = ["plaintext", "churn"][i % 2].into();
    }
    mixed.push(many_runs(10, 1).remove(0));
    mixed[1]
        .runs
        .iter_mut()
        .for_each(|r| r.workload = "post-4k".into());
    let spectrum = Plot::Spectrum(stats::spectra(&mixed).unwrap());
    assert_eq!(plot::layout(&spectrum).unwrap().plot_areas.len(), 3 * 2);
    assert_layout(&spectrum, 20, 20);
    let timeline = Plot::Timeline(stats::timelines(&mixed));
    assert_eq!(plot::layout(&timeline).unwrap().plot_areas.len(), 3 * 3);
    assert_layout(&timeline, 20, 20);
    assert_layout(&Plot::Timeline(stats::timelines(&files)), 40, 40);
    assert_layout(&Plot::Comparison(stats::comparisons(&files)), 0, 0);
    // One SLO entry, then p99 and p50 in one colour per target.
    let curves = stats::rate_curves(&many_sweeps(40));
    assert_layout(&Plot::LatencyVsRate(curves), 81, 41);
}

#[test]
fn repeats_are_one_line_per_target_and_workload() {
    let files = many_runs(2, 18);
    let spectra = stats::spectra(&files).unwrap();
    assert_eq!(spectra.len(), 2);
    assert_eq!(spectra[0].label, "127.0.0.1:8000/ plaintext (n=18)");
    let p = spectra[0].corrected[spectra[0].corrected.len() / 2];
    assert!(p.us.low < p.us.median && p.us.median < p.us.high, "{p:?}");
    assert_layout(&Plot::Spectrum(spectra), 2, 2);
    let timelines = stats::timelines(&files);
    assert_eq!(timelines.len(), 2);
    assert_layout(&Plot::Timeline(timelines), 2, 2);
}

#[test]
fn the_page_has_a_header_panel_from_the_results() {
    let dir = out_dir("header");
    let mut files = fixture_results();
    files[0].tool.git_revision = Some("84df908e69a1".into());
    files[0].host.governor = Some("performance".into());
    files[0].runs[0].config = serde_json::from_value(serde_json::json!({
        "url": "http://127.0.0.1:8080/", "connections": 64, "duration_ms": 10000.0
    }))
    .unwrap();
    files[1].runs[0].config = serde_json::from_value(serde_json::json!({
        "url": "http://127.0.0.1:8080/", "connections": 128
    }))
    .unwrap();
    files[0].runs[1].warnings.push(reports::Warning {
        kind: "client_bound".into(),
        message: "the client used 98 % of its CPU: add --threads".into(),
    });
    let written = reports::report::write_report(&files, &[], &dir).unwrap();
    let html = std::fs::read_to_string(&written.index).unwrap();
    let start = html
        .find("<section id=\"header\">")
        .expect("no header panel");
    let panel = &html[start..start + html[start..].find("</section>").unwrap()];
    for want in [
        "4 runs in 2 target × workload groups, from 2 results files",
        "<tr><th>targets</th><td>127.0.0.1:8080/, 127.0.0.1:8081/</td></tr>",
        "<tr><th>workloads</th><td>plaintext</td></tr>",
        "<tr><th>host</th><td>testhost</td></tr>",
        "<tr><th>kernel</th><td>6.1</td></tr>",
        "<tr><th>CPU model</th><td>test</td></tr>",
        "<tr><th>cores</th><td>2</td></tr>",
        "<tr><th>governor</th><td>performance</td></tr>",
        "<tr><th>tool</th><td>loadgen</td></tr>",
        "<tr><th>version</th><td>0.1.0</td></tr>",
        "<tr><th>git revision</th><td>84df908e69a1</td></tr>",
        "<tr><th>date (UTC)</th><td>2025-01-01T00:00:00Z</td></tr>",
        "<summary>Settings (3)</summary>",
        "<tr><th>connections</th><td>64; -; 128 (runs differ)</td></tr>",
        "<tr><th>duration_ms</th><td>10000.0; - (runs differ)</td></tr>",
        "<h3>Self-check warnings (1)</h3>",
        "<td>127.0.0.1:8081/ plaintext</td><td>client_bound</td>\
         <td>the client used 98 % of its CPU: add --threads</td>",
    ] {
        assert!(panel.contains(want), "no {want:?} in\n{panel}");
    }
    // The url setting is shown as targets are, without its scheme: the page links
    // nowhere.
    assert!(
        panel.contains("<tr><th>url</th><td>127.0.0.1:8080/; - (runs differ)</td></tr>"),
        "{panel}"
    );
    assert!(!html.contains("http://"), "the page holds a URL");
    // Nothing recorded: unknown, not an empty cell.
    let bare = reports::header::Header::new(&[], &[]);
    assert!(bare.build.iter().all(|(_, v)| v == "unknown"), "{bare:?}");
    let md = std::fs::read_to_string(&written.summary).unwrap();
    assert!(md.contains("| git revision | 84df908e69a1 |"), "{md}");
    assert!(md.contains("| self-check warnings | 1 |"), "{md}");
}

#[test]
fn a_run_where_every_request_failed_is_shown_as_failed() {
    let mut files = fixture_results();
    for f in &mut files {
        let r = &mut f.runs[1];
        r.requests = 0;
        r.requests_per_s = 0.0;
        r.errors.connect_refused = 5_000;
        r.latency_corrected = Default::default();
        let empty = encode(&new_histogram());
        r.histogram_corrected = empty.clone();
        r.histogram_uncorrected = empty;
    }
    let spectra = stats::spectra(&files).unwrap();
    assert_eq!(
        spectra[1].label,
        "127.0.0.1:8081/ plaintext (failed: every request of its 2 runs failed)"
    );
    assert!(spectra[1].corrected.is_empty());
    let layout = plot::layout(&Plot::Spectrum(spectra)).unwrap();
    assert!(
        layout.legend[1].label.contains("failed"),
        "{:?}",
        layout.legend
    );
    let dir = out_dir("failed");
    let written = reports::report::write_report(&files, &[], &dir).unwrap();
    let md = std::fs::read_to_string(&written.summary).unwrap();
    assert!(
        md.contains(
            "| `127.0.0.1:8081/` | plaintext | 2 (2 failed) | 0 ± 0 | failed | failed | 10000 |"
        ),
        "{md}"
    );
    assert!(!md.contains("| 0 µs |"), "{md}");
    let svg = std::fs::read_to_string(dir.join("comparison.svg")).unwrap();
    assert!(
        svg.contains("failed: every request failed"),
        "no failed label"
    );
}

#[test]
fn a_lone_open_model_run_is_not_on_the_latency_vs_rate_plot() {
    let mut files = vec![fixture_sweep()];
    let mut lone = fixture_results().remove(0);
    lone.runs[0].open_model = Some(reports::OpenModel {
        rate_per_s: 40_000.0,
        arrivals: "poisson".into(),
        ..Default::default()
    });
    files.push(lone.clone());
    let curves = stats::rate_curves(&files);
    assert_eq!(curves.len(), 1);
    assert_eq!(curves[0].points.len(), 4);
    assert!(stats::rate_curves(&[lone]).is_empty());
}

#[test]
fn verdict_labels_are_cut_to_their_cells() {
    let mut long = fixture_scenarios(None);
    long.target = "a-very-long-command --with many --arguments that do not fit".into();
    long.scenarios[0].id = "section.a-clause-id-far-longer-than-the-id-column-is-wide".into();
    let plot = Plot::Verdicts(stats::verdict_matrix(&[long, fixture_scenarios(None)]));
    let layout = plot::layout(&plot).unwrap();
    let (w, h) = layout.size;
    let image = plot::Rect {
        x0: 0,
        y0: 0,
        x1: w as i32,
        y1: h as i32,
    };
    for (i, a) in layout.texts.iter().enumerate() {
        assert!(image.contains(&a.rect), "{a:?} outside the image");
        for b in &layout.texts[i + 1..] {
            assert!(!a.rect.overlaps(&b.rect), "{a:?} over {b:?}");
        }
    }
    assert!(layout.texts.iter().any(|t| t.text.ends_with('…')));
}
