//! Plots, as PNG and SVG, drawn with `plotters` from values [`crate::stats`] computed:
//! nothing here computes a statistic. Text is drawn with the DejaVu Sans font committed
//! under `reports/assets/` (through `ab_glyph`), so rendering needs no system font.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use rayon::prelude::*;

use crate::output::Staged;

pub mod text;
use crate::scenarios::VerdictKind;
use crate::stats::{self, Comparison, RateCurve, RunSpectrum, TimelineSeries, VerdictMatrix};

use text::FONT;
const FAMILY: &str = "sans-serif";

static REGISTER_FONT: Once = Once::new();

fn register_font() {
    REGISTER_FONT.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The bytes are the committed font: parsing them cannot fail at run time
            // unless the file was replaced, and then text is left out, not the plot.
            let _ = plotters::style::register_font(FAMILY, style, FONT);
        }
    });
}

/// Line colours, one per run (cycled).
const SERIES: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

fn series_color(i: usize) -> RGBColor {
    SERIES[i % SERIES.len()]
}

/// One plot and the data it draws.
#[derive(Debug, Clone)]
pub enum Plot {
    /// Latency percentile spectra, corrected and uncorrected side by side.
    Spectrum(Vec<RunSpectrum>),
    /// Requests per second and p99 per second.
    Timeline(Vec<TimelineSeries>),
    /// Requests per second per target and workload, with 95 % confidence intervals.
    Comparison(Vec<Comparison>),
    /// Scenario verdicts: clause × results file.
    Verdicts(VerdictMatrix),
    /// Corrected p50 and p99 against the offered rate, one curve per target, with the
    /// sweep's SLO.
    LatencyVsRate(Vec<RateCurve>),
}

impl Plot {
    /// The file stem of its files (`spectrum` → `spectrum.png`, `spectrum.svg`).
    pub fn stem(&self) -> &'static str {
        match self {
            Plot::Spectrum(_) => "spectrum",
            Plot::Timeline(_) => "timeline",
            Plot::Comparison(_) => "comparison",
            Plot::Verdicts(_) => "verdicts",
            Plot::LatencyVsRate(_) => "latency-vs-rate",
        }
    }

    /// Its title.
    pub fn title(&self) -> &'static str {
        match self {
            Plot::Spectrum(_) => "Latency percentile spectrum",
            Plot::Timeline(_) => "Throughput and p99 over time",
            Plot::Comparison(_) => "Requests per second (mean, 95 % CI across repeats)",
            Plot::Verdicts(_) => "Scenario verdicts",
            Plot::LatencyVsRate(_) => "Latency vs offered rate (corrected p50 and p99)",
        }
    }

    /// Its size in pixels.
    pub fn size(&self) -> (u32, u32) {
        match self {
            Plot::Spectrum(_) => (1200, 520),
            Plot::Timeline(_) => (1000, 700),
            Plot::Comparison(c) => (1000, 90 + 56 * c.len().max(1) as u32),
            Plot::Verdicts(m) => verdicts_size(m),
            Plot::LatencyVsRate(_) => (1000, 600),
        }
    }

    /// Draws it on any plotters backend.
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        register_font();
        root.fill(&WHITE).map_err(err)?;
        match self {
            Plot::Spectrum(s) => draw_spectrum(root, s),
            Plot::Timeline(t) => draw_timeline(root, t),
            Plot::Comparison(c) => draw_comparison(root, c),
            Plot::Verdicts(m) => draw_verdicts(root, m),
            Plot::LatencyVsRate(c) => draw_latency_vs_rate(root, c),
        }?;
        root.present().map_err(err)
    }
}

/// The files one plot was written to.
#[derive(Debug, Clone)]
pub struct PlotFiles {
    /// The plot's file stem.
    pub stem: &'static str,
    /// The plot's title.
    pub title: &'static str,
    /// The PNG file.
    pub png: PathBuf,
    /// The SVG file.
    pub svg: PathBuf,
}

/// Writes `plot` as `DIR/STEM.png` and `DIR/STEM.svg`, each whole or not at all.
pub fn render(plot: &Plot, dir: &Path) -> Result<PlotFiles, String> {
    let staged = stage(plot, dir)?;
    commit(staged.staged)?;
    Ok(staged.files)
}

/// Renders every plot, in parallel; results in the order given.
pub fn render_all(plots: &[Plot], dir: &Path) -> Result<Vec<PlotFiles>, String> {
    let mut files = Vec::new();
    for s in stage_all(plots, dir)? {
        commit(s.staged)?;
        files.push(s.files);
    }
    Ok(files)
}

/// A plot drawn into temporary files, not yet in place.
#[derive(Debug)]
pub struct StagedPlot {
    /// Where it goes.
    pub files: PlotFiles,
    /// The SVG document (for pages that inline it).
    pub svg: String,
    /// The PNG and SVG files, to [`commit`].
    pub staged: Vec<Staged>,
}

/// Draws `plot` into temporary files beside `DIR/STEM.png` and `DIR/STEM.svg`;
/// nothing is in place until the staged files are committed.
pub fn stage(plot: &Plot, dir: &Path) -> Result<StagedPlot, String> {
    let png = dir.join(format!("{}.png", plot.stem()));
    let svg = dir.join(format!("{}.svg", plot.stem()));
    let size = plot.size();
    let cannot = |p: &Path, e: std::io::Error| format!("{}: cannot write: {e}", p.display());
    let png_tmp = Staged::new(&png).map_err(|e| cannot(&png, e))?;
    let log = text::TextLog::default();
    let bitmap = BitMapBackend::new(png_tmp.tmp_path(), size);
    plot.draw(&text::Glyphs::new(bitmap, true, log.clone()).into_drawing_area())
        .map_err(|e| format!("{}: {e}", png.display()))?;
    let mut text = String::new();
    plot.draw(
        &text::Glyphs::new(SVGBackend::with_string(&mut text, size), false, log)
            .into_drawing_area(),
    )
    .map_err(|e| format!("{}: {e}", svg.display()))?;
    let svg_tmp = Staged::write(&svg, text.as_bytes()).map_err(|e| cannot(&svg, e))?;
    Ok(StagedPlot {
        files: PlotFiles {
            stem: plot.stem(),
            title: plot.title(),
            png,
            svg,
        },
        svg: text,
        staged: vec![png_tmp, svg_tmp],
    })
}

/// [`stage`] for every plot, in parallel; results in the order given.
pub fn stage_all(plots: &[Plot], dir: &Path) -> Result<Vec<StagedPlot>, String> {
    plots.par_iter().map(|p| stage(p, dir)).collect()
}

/// Puts staged files in place, in order.
pub fn commit(staged: Vec<Staged>) -> Result<(), String> {
    for s in staged {
        let target = s.target().to_path_buf();
        s.commit()
            .map_err(|e| format!("{}: cannot write: {e}", target.display()))?;
    }
    Ok(())
}

/// Draws the series' legend at `position`, in the one style every plot uses.
fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font(font(12))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(err)
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn font(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

fn placeholder<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    what: &str,
) -> Result<(), String> {
    root.draw(&Text::new(format!("no {what}"), (20, 20), font(18)))
        .map_err(err)
}

fn draw_spectrum<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    runs: &[RunSpectrum],
) -> Result<(), String> {
    let values = runs
        .iter()
        .flat_map(|r| r.corrected.iter().chain(r.uncorrected.iter()))
        .map(|p| p.value_us.max(1) as f64 / 1000.0);
    let (lo, hi) = values.fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi <= 0.0 {
        return placeholder(root, "latency histograms");
    }
    let (lo, hi) = (lo / 1.5, hi * 1.5);
    let panels = root.split_evenly((1, 2));
    type Pick = fn(&RunSpectrum) -> &[stats::SpectrumPoint];
    let pick: [(&str, Pick); 2] = [
        ("corrected (from due time)", |r| &r.corrected),
        ("uncorrected (from send)", |r| &r.uncorrected),
    ];
    for (panel, (name, points)) in panels.iter().zip(pick) {
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("Latency by percentile, {name}"), font(17))
            .margin(12)
            .margin_right(36)
            .x_label_area_size(42)
            .y_label_area_size(64)
            .build_cartesian_2d(
                (1f64..stats::SPECTRUM_MAX_X).log_scale(),
                (lo..hi).log_scale(),
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (ms)")
            .x_label_formatter(&|x| stats::percentile_label(*x))
            .y_label_formatter(&|y| format_ms(*y))
            .label_style(font(13))
            .axis_desc_style(font(14))
            .draw()
            .map_err(err)?;
        for (i, run) in runs.iter().enumerate() {
            let color = series_color(i);
            chart
                .draw_series(LineSeries::new(
                    points(run)
                        .iter()
                        .map(|p| (p.x, p.value_us.max(1) as f64 / 1000.0)),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(run.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    Ok(())
}

fn format_ms(ms: f64) -> String {
    let s = if ms >= 1.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.3}")
    };
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn draw_timeline<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &[TimelineSeries],
) -> Result<(), String> {
    let max_s = series
        .iter()
        .flat_map(|s| s.seconds.iter().copied())
        .fold(0f64, f64::max);
    if series.iter().all(|s| s.seconds.is_empty()) {
        return placeholder(root, "timeline");
    }
    let panels = root.split_evenly((2, 1));
    type Pick = fn(&TimelineSeries) -> &[f64];
    let pick: [(&str, &str, Pick); 2] = [
        ("Successful requests per second", "req/s", |s| {
            &s.requests_per_s
        }),
        ("p99 latency per second (corrected)", "p99 (ms)", |s| {
            &s.p99_ms
        }),
    ];
    for (panel, (caption, unit, values)) in panels.iter().zip(pick) {
        let top = series
            .iter()
            .flat_map(|s| values(s).iter().copied())
            .fold(0f64, f64::max);
        // Headroom for the legend above the lines.
        let top = if top > 0.0 { top * 1.6 } else { 1.0 };
        let mut chart = ChartBuilder::on(panel)
            .caption(caption, font(17))
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..(max_s + 1.0), 0f64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("second")
            .y_desc(unit)
            .y_label_formatter(&|y| format_count(*y))
            .label_style(font(13))
            .axis_desc_style(font(14))
            .draw()
            .map_err(err)?;
        for (i, s) in series.iter().enumerate() {
            let color = series_color(i);
            // A value covers [second, second + 1): plot it at the interval's middle.
            let points: Vec<(f64, f64)> = s
                .seconds
                .iter()
                .zip(values(s))
                .map(|(x, y)| (x + 0.5, *y))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(err)?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(err)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }
    Ok(())
}

fn format_count(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn draw_comparison<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    bars: &[Comparison],
) -> Result<(), String> {
    if bars.is_empty() {
        return placeholder(root, "runs");
    }
    let top = bars
        .iter()
        .map(|b| b.requests_per_s.high.max(b.requests_per_s.mean))
        .fold(0f64, f64::max);
    let top = if top > 0.0 { top * 1.35 } else { 1.0 };
    let n = bars.len() as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Requests per second (mean and 95 % CI across repeats)",
            font(17),
        )
        .margin(12)
        .x_label_area_size(38)
        .y_label_area_size(10)
        .build_cartesian_2d(0f64..top, 0f64..n)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("req/s")
        .x_label_formatter(&|x| format_count(*x))
        .label_style(font(13))
        .axis_desc_style(font(14))
        .draw()
        .map_err(err)?;
    for (i, b) in bars.iter().enumerate() {
        // Top to bottom in the order given.
        let y = n - 1.0 - i as f64;
        let color = series_color(i);
        let ci = b.requests_per_s;
        chart
            .draw_series([Rectangle::new(
                [(0.0, y + 0.08), (ci.mean, y + 0.6)],
                color.mix(0.45).filled(),
            )])
            .map_err(err)?;
        let whisker = BLACK.stroke_width(2);
        chart
            .draw_series([
                PathElement::new(vec![(ci.low, y + 0.34), (ci.high, y + 0.34)], whisker),
                PathElement::new(vec![(ci.low, y + 0.2), (ci.low, y + 0.48)], whisker),
                PathElement::new(vec![(ci.high, y + 0.2), (ci.high, y + 0.48)], whisker),
            ])
            .map_err(err)?;
        let spread = if ci.n > 1 {
            format!(" ± {} (n={})", format_count(ci.high - ci.mean), ci.n)
        } else {
            " (n=1)".to_string()
        };
        chart
            .draw_series([
                Text::new(
                    format!("{} {}", b.target, b.workload),
                    (top * 0.005, y + 0.95),
                    font(13),
                ),
                Text::new(
                    format!("{}{spread}", format_count(ci.mean)),
                    (ci.high.max(ci.mean) + top * 0.01, y + 0.46),
                    font(13),
                ),
            ])
            .map_err(err)?;
    }
    Ok(())
}

const VERDICT_ROW_H: u32 = 22;
const VERDICT_COL_W: u32 = 120;
const VERDICT_ID_W: u32 = 340;
const VERDICT_TOP: u32 = 70;
const VERDICT_LEGEND_H: u32 = 50;

fn verdicts_size(m: &VerdictMatrix) -> (u32, u32) {
    let w = VERDICT_ID_W + VERDICT_COL_W * m.columns.len().max(1) as u32 + 20;
    let h = VERDICT_TOP + VERDICT_ROW_H * m.rows.len().max(1) as u32 + VERDICT_LEGEND_H;
    (w.max(640), h)
}

/// `text` cut to `max` characters, the cut marked with an ellipsis.
fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn verdict_color(v: Option<VerdictKind>) -> RGBColor {
    match v {
        Some(VerdictKind::Pass) => RGBColor(46, 160, 67),
        Some(VerdictKind::Fail) => RGBColor(214, 39, 40),
        Some(VerdictKind::NonStrict) => RGBColor(255, 160, 40),
        Some(VerdictKind::Skipped) => RGBColor(170, 170, 170),
        Some(VerdictKind::Error) => RGBColor(148, 103, 189),
        None => RGBColor(240, 240, 240),
    }
}

fn draw_verdicts<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    m: &VerdictMatrix,
) -> Result<(), String> {
    root.draw(&Text::new("Scenario verdicts", (12, 10), font(18)))
        .map_err(err)?;
    let (id_w, col_w, row_h, top) = (
        VERDICT_ID_W as i32,
        VERDICT_COL_W as i32,
        VERDICT_ROW_H as i32,
        VERDICT_TOP as i32,
    );
    for (c, title) in m.columns.iter().enumerate() {
        let x = id_w + c as i32 * col_w + 4;
        // Target above, fault below, each cut to the column (the page's table has them
        // whole).
        let (target, fault) = title.split_once(" + ").unwrap_or((title, ""));
        root.draw(&Text::new(fit(target, 17), (x, top - 36), font(12)))
            .map_err(err)?;
        if !fault.is_empty() {
            root.draw(&Text::new(fit(fault, 17), (x, top - 20), font(12)))
                .map_err(err)?;
        }
    }
    for (r, id) in m.rows.iter().enumerate() {
        let y = top + r as i32 * row_h;
        root.draw(&Text::new(id.clone(), (12, y + 4), font(13)))
            .map_err(err)?;
        for (c, v) in m.cells[r].iter().enumerate() {
            let x = id_w + c as i32 * col_w;
            root.draw(&Rectangle::new(
                [(x + 1, y + 1), (x + col_w - 1, y + row_h - 1)],
                verdict_color(*v).filled(),
            ))
            .map_err(err)?;
            let mut text = v.map_or("—", |v| v.name()).to_string();
            if m.flaky[r][c] {
                text.push_str(" (flaky)");
            }
            root.draw(&Text::new(text, (x + 6, y + 4), font(12)))
                .map_err(err)?;
        }
    }
    let y = top + m.rows.len().max(1) as i32 * row_h + 16;
    for (i, v) in VerdictKind::ALL.into_iter().enumerate() {
        let x = 12 + i as i32 * 110;
        root.draw(&Rectangle::new(
            [(x, y), (x + 16, y + 16)],
            verdict_color(Some(v)).filled(),
        ))
        .map_err(err)?;
        root.draw(&Text::new(v.name(), (x + 22, y + 1), font(13)))
            .map_err(err)?;
    }
    Ok(())
}

/// The SLO line's colour.
const SLO_COLOR: RGBColor = RGBColor(200, 30, 30);

fn draw_latency_vs_rate<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    curves: &[RateCurve],
) -> Result<(), String> {
    let points = || curves.iter().flat_map(|c| c.points.iter());
    if points().next().is_none() {
        return placeholder(root, "open-model runs");
    }
    let max_x = points().map(|p| p.offered_per_s).fold(0f64, f64::max);
    let latencies = points()
        .flat_map(|p| [p.p50_ms, p.p99_ms])
        .chain(curves.iter().filter_map(|c| c.slo_ms))
        .map(|v| v.max(0.001));
    let (lo, hi) = latencies.fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    // Headroom above for the legend.
    let (lo, hi) = (lo / 1.5, hi * 4.0);
    let mut chart = ChartBuilder::on(root)
        .caption("Latency vs offered rate (corrected)", font(17))
        .margin(12)
        .margin_right(36)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..max_x * 1.08, (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("offered rate (req/s)")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| format_count(*x))
        .y_label_formatter(&|y| format_ms(*y))
        .label_style(font(13))
        .axis_desc_style(font(14))
        .draw()
        .map_err(err)?;
    let mut slos: Vec<f64> = Vec::new();
    for slo in curves.iter().filter_map(|c| c.slo_ms) {
        if !slos.contains(&slo) {
            slos.push(slo);
        }
    }
    for slo in slos {
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, slo), (max_x * 1.08, slo)],
                8,
                5,
                SLO_COLOR.stroke_width(2),
            ))
            .map_err(err)?
            .label(format!("SLO: p99 <= {} ms", format_ms(slo)))
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], SLO_COLOR.stroke_width(2))
            });
    }
    for (i, c) in curves.iter().enumerate() {
        let color = series_color(i);
        let p99: Vec<(f64, f64)> = c
            .points
            .iter()
            .map(|p| (p.offered_per_s, p.p99_ms.max(0.001)))
            .collect();
        let p50: Vec<(f64, f64)> = c
            .points
            .iter()
            .map(|p| (p.offered_per_s, p.p50_ms.max(0.001)))
            .collect();
        chart
            .draw_series(LineSeries::new(p99.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(format!("{} p99", c.target))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(DashedLineSeries::new(
                p50.clone(),
                6,
                4,
                color.mix(0.7).stroke_width(1),
            ))
            .map_err(err)?
            .label(format!("{} p50", c.target))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.mix(0.7).stroke_width(1))
            });
        // Steps that held are filled dots, steps that did not are crosses.
        for (p, xy) in c.points.iter().zip(&p99) {
            if p.held == Some(false) {
                chart
                    .draw_series([Cross::new(*xy, 5, color.stroke_width(2))])
                    .map_err(err)?;
            } else {
                chart
                    .draw_series([Circle::new(*xy, 4, color.filled())])
                    .map_err(err)?;
            }
        }
        chart
            .draw_series(
                p50.iter()
                    .map(|xy| Circle::new(*xy, 2, color.mix(0.7).filled())),
            )
            .map_err(err)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}
