//! Plots, as PNG and SVG, drawn with `plotters` from values [`crate::stats`] computed:
//! nothing here computes a statistic. Text is drawn with the DejaVu Sans font committed
//! under `reports/assets/` (through `ab_glyph`), so rendering needs no system font.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rayon::prelude::*;

use crate::output::Staged;
use crate::scenarios::VerdictKind;
use crate::stats::{self, Comparison, GroupSpectrum, RateCurve, TimelineGroup, VerdictMatrix};

mod layout;
mod legend;
pub mod palette;
pub mod text;

use layout::pixel_rect;
pub use layout::{Layout, LegendBox};
use legend::{Entry, Swatch};
use text::{font, register_font};
pub use text::{Rect, TextBox};

fn series_color(i: usize) -> RGBColor {
    palette::color(i)
}

/// One plot and the data it draws.
#[derive(Debug, Clone)]
pub enum Plot {
    /// Latency percentile spectra, corrected and uncorrected side by side, one median
    /// line and min–max band per target and workload.
    Spectrum(Vec<GroupSpectrum>),
    /// Requests, p99 and errors per second, one median line and band per group.
    Timeline(Vec<TimelineGroup>),
    /// Requests per second per target and workload, with 95 % confidence intervals.
    Comparison(Vec<Comparison>),
    /// Scenario verdicts: clause × results file.
    Verdicts(VerdictMatrix),
    /// Corrected p50 and p99 against the offered rate, one curve per swept target, with
    /// the sweep's SLO.
    LatencyVsRate(Vec<RateCurve>),
}

const COMPARISON_ROW_H: u32 = 30;
const COMPARISON_LABEL_W: u32 = 300;
const SPECTRUM_W: u32 = 1200;
const SPECTRUM_H: u32 = 520;
const TIMELINE_W: u32 = 1000;
const TIMELINE_H: u32 = 860;
/// Past this many groups the spectrum and the timeline are drawn as small multiples,
/// a row of panels per workload.
const FACET_OVER: usize = 10;
const TIMELINE_FACET_W: u32 = 1200;
const FACET_ROW_H: u32 = 240;
const FACET_TOP: u32 = 10;
const SPECTRUM_ROW_H: u32 = 330;
const RATE_W: u32 = 1000;
const RATE_H: u32 = 600;

const BAND_NOTE: &str = "Lines: the median of a target and workload's runs; pale bands: their smallest to largest value.";
const RATE_NOTE: &str =
    "Solid: p99, dashed: p50. Dots: steps that held the SLO; crosses: steps that did not.";

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
            Plot::Timeline(_) => "Throughput, p99 and errors over time",
            Plot::Comparison(_) => "Requests per second (mean, 95 % CI across repeats)",
            Plot::Verdicts(_) => "Scenario verdicts",
            Plot::LatencyVsRate(_) => "Latency vs offered rate (corrected p50 and p99)",
        }
    }

    /// The legend's entries, in series order, and its note.
    fn legend(&self) -> (Vec<Entry>, Option<&'static str>) {
        let banded = |many: bool| if many { Swatch::Band } else { Swatch::Line };
        match self {
            Plot::Spectrum(groups) => {
                let entries = groups
                    .iter()
                    .enumerate()
                    .map(|(i, g)| Entry {
                        label: g.label.clone(),
                        color: series_color(i),
                        swatch: if g.corrected.is_empty() {
                            Swatch::Failed
                        } else {
                            banded(g.runs - g.failed > 1)
                        },
                    })
                    .collect::<Vec<_>>();
                let note = groups
                    .iter()
                    .any(|g| g.runs - g.failed > 1)
                    .then_some(BAND_NOTE);
                (entries, note)
            }
            Plot::Timeline(groups) => {
                let entries = groups
                    .iter()
                    .enumerate()
                    .map(|(i, g)| Entry {
                        label: g.label.clone(),
                        color: series_color(i),
                        swatch: banded(g.requests_per_s.iter().any(|b| b.low < b.high)),
                    })
                    .collect::<Vec<_>>();
                let note = groups
                    .iter()
                    .any(|g| g.label.contains("(n="))
                    .then_some(BAND_NOTE);
                (entries, note)
            }
            Plot::LatencyVsRate(curves) => {
                let mut entries = Vec::new();
                let mut slos: Vec<f64> = Vec::new();
                for slo in curves.iter().filter_map(|c| c.slo_ms) {
                    if !slos.contains(&slo) {
                        slos.push(slo);
                        entries.push(Entry {
                            label: format!("SLO: p99 <= {} ms", format_ms(slo)),
                            color: SLO_COLOR,
                            swatch: Swatch::Dashed,
                        });
                    }
                }
                for (i, c) in curves.iter().enumerate() {
                    let color = series_color(i);
                    let failed = c.points.iter().filter(|p| p.failed).count();
                    let note = match failed {
                        0 => String::new(),
                        1 => " (1 step failed: not drawn)".to_string(),
                        n => format!(" ({n} steps failed: not drawn)"),
                    };
                    let swatch = if failed == c.points.len() {
                        Swatch::Failed
                    } else {
                        Swatch::Line
                    };
                    entries.push(Entry {
                        label: format!("{} p99{note}", c.target),
                        color,
                        swatch,
                    });
                    entries.push(Entry {
                        label: format!("{} p50", c.target),
                        color,
                        swatch: if swatch == Swatch::Failed {
                            swatch
                        } else {
                            Swatch::Dashed
                        },
                    });
                }
                (entries, Some(RATE_NOTE))
            }
            Plot::Comparison(_) | Plot::Verdicts(_) => (Vec::new(), None),
        }
    }

    /// Its size in pixels: a legend adds its height.
    pub fn size(&self) -> (u32, u32) {
        let (w, h) = match self {
            Plot::Spectrum(s) => match spectrum_facets(s).len() {
                0 => (SPECTRUM_W, SPECTRUM_H),
                rows => (SPECTRUM_W, FACET_TOP + SPECTRUM_ROW_H * rows as u32),
            },
            Plot::Timeline(t) => match timeline_facets(t).len() {
                0 => (TIMELINE_W, TIMELINE_H),
                rows => (TIMELINE_FACET_W, FACET_TOP + FACET_ROW_H * rows as u32),
            },
            Plot::Comparison(c) => (1000, 96 + COMPARISON_ROW_H * c.len().max(1) as u32),
            Plot::Verdicts(m) => verdicts_size(m),
            Plot::LatencyVsRate(_) => (RATE_W, RATE_H),
        };
        let (entries, note) = self.legend();
        (w, h + legend::height(&entries, note, w))
    }

    /// Draws it on any plotters backend; the layout's texts are left empty (a
    /// [`text::Glyphs`] backend records them, see [`layout`]).
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<Layout, String> {
        register_font();
        root.fill(&WHITE).map_err(err)?;
        let size = root.dim_in_pixel();
        let mut layout = Layout {
            size,
            ..Layout::default()
        };
        let (entries, note) = self.legend();
        let legend_h = legend::height(&entries, note, size.0);
        let chart_h = size.1.saturating_sub(legend_h);
        let (area, _) = root.split_vertically(chart_h);
        match self {
            Plot::Spectrum(s) => draw_spectrum(&area, s, &mut layout),
            Plot::Timeline(t) => draw_timeline(&area, t, &mut layout),
            Plot::Comparison(c) => draw_comparison(&area, c, &mut layout),
            Plot::Verdicts(m) => draw_verdicts(&area, m),
            Plot::LatencyVsRate(c) => draw_latency_vs_rate(&area, c, &mut layout),
        }?;
        if legend_h > 0 {
            root.draw(&PathElement::new(
                vec![(10, chart_h as i32), (size.0 as i32 - 10, chart_h as i32)],
                BLACK.mix(0.15),
            ))
            .map_err(err)?;
        }
        legend::draw(root, chart_h as i32, &entries, note, &mut layout)?;
        root.present().map_err(err)?;
        Ok(layout)
    }
}

/// Draws `plot` into a bitmap in memory and returns where everything went, texts
/// included.
pub fn layout(plot: &Plot) -> Result<Layout, String> {
    draw_bitmap(plot).map(|(_, layout)| layout)
}

/// `plot` drawn as RGB pixels, and its layout.
fn draw_bitmap(plot: &Plot) -> Result<(Vec<u8>, Layout), String> {
    let (w, h) = plot.size();
    let mut pixels = vec![0u8; w as usize * h as usize * 3];
    let log = text::TextLog::default();
    let backend = BitMapBackend::with_buffer(&mut pixels, (w, h));
    let mut layout =
        plot.draw(&text::Glyphs::new(backend, true, log.clone()).into_drawing_area())?;
    layout.texts = log.take();
    Ok((pixels, layout))
}

/// RGB pixels as a PNG file, compressed as well as the encoder can (plots are flat
/// colours and thin lines: a fourth of the size plotters' encoder writes).
fn encode_png(pixels: &[u8], (w, h): (u32, u32)) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut writer = encoder.write_header().map_err(err)?;
    writer.write_image_data(pixels).map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(out)
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
    /// Where the PNG's parts were drawn.
    pub layout: Layout,
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
    let (pixels, layout) = draw_bitmap(plot).map_err(|e| format!("{}: {e}", png.display()))?;
    let bytes = encode_png(&pixels, size).map_err(|e| format!("{}: {e}", png.display()))?;
    let png_tmp = Staged::write(&png, &bytes).map_err(|e| cannot(&png, e))?;
    let log = text::TextLog::default();
    let mut text = String::new();
    let vector = SVGBackend::with_string(&mut text, size);
    plot.draw(&text::Glyphs::new(vector, false, log).into_drawing_area())
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
        layout,
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

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn placeholder<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    what: &str,
) -> Result<(), String> {
    root.draw(&Text::new(format!("no {what}"), (20, 20), font(18)))
        .map_err(err)
}

/// A series' pale band between `low` and `high` (points in x order).
fn band_polygon<X: Copy, Y: Copy>(
    low: &[(X, Y)],
    high: &[(X, Y)],
    color: RGBColor,
) -> Polygon<(X, Y)> {
    let mut outline: Vec<(X, Y)> = high.to_vec();
    outline.extend(low.iter().rev().copied());
    Polygon::new(outline, color.mix(0.16).filled())
}

/// The workloads of `groups`, in first-seen order, to draw as rows of small
/// multiples; none (one chart) up to [`FACET_OVER`] groups or with one workload.
fn facets<'a>(groups: impl Iterator<Item = &'a str> + Clone) -> Vec<String> {
    if groups.clone().count() <= FACET_OVER {
        return Vec::new();
    }
    let mut facets: Vec<String> = Vec::new();
    for w in groups {
        if !facets.iter().any(|f| f == w) {
            facets.push(w.to_string());
        }
    }
    if facets.len() > 1 {
        facets
    } else {
        Vec::new()
    }
}

fn spectrum_facets(groups: &[GroupSpectrum]) -> Vec<String> {
    facets(groups.iter().map(|g| g.workload.as_str()))
}

fn draw_spectrum<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    groups: &[GroupSpectrum],
    layout: &mut Layout,
) -> Result<(), String> {
    if groups.iter().all(|g| g.corrected.is_empty()) {
        let what = if groups.is_empty() {
            "latency histograms"
        } else {
            "latency: every run failed"
        };
        return placeholder(root, what);
    }
    let all: Vec<(usize, &GroupSpectrum)> = groups.iter().enumerate().collect();
    let facets = spectrum_facets(groups);
    if facets.is_empty() {
        let panels = root.split_evenly((1, 2));
        for (c, panel) in panels.iter().enumerate() {
            spectrum_panel(panel, &all, c == 0, None, layout)?;
        }
        return Ok(());
    }
    // Small multiples: a row per workload, corrected beside uncorrected, each row on
    // its own latency axis.
    let (_, rest) = root.split_vertically(FACET_TOP);
    let cells = rest.split_evenly((facets.len(), 2));
    for (r, workload) in facets.iter().enumerate() {
        let row: Vec<(usize, &GroupSpectrum)> = all
            .iter()
            .copied()
            .filter(|(_, g)| g.workload == *workload)
            .collect();
        for c in 0..2 {
            spectrum_panel(&cells[r * 2 + c], &row, c == 0, Some(workload), layout)?;
        }
    }
    Ok(())
}

/// One spectrum chart: `corrected` or uncorrected latency of `groups` (with their
/// colour indices); `workload` names a small multiple's row.
fn spectrum_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    groups: &[(usize, &GroupSpectrum)],
    corrected: bool,
    workload: Option<&str>,
    layout: &mut Layout,
) -> Result<(), String> {
    let points = |g: &GroupSpectrum| -> Vec<stats::BandPoint> {
        if corrected {
            g.corrected.clone()
        } else {
            g.uncorrected.clone()
        }
    };
    let ms = |us: f64| us.max(1.0) / 1000.0;
    let values = groups
        .iter()
        .flat_map(|(_, g)| g.corrected.iter().chain(g.uncorrected.iter()))
        .flat_map(|p| [ms(p.us.low), ms(p.us.high)]);
    let (lo, hi) = values.fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if hi > 0.0 {
        (decade_floor(lo), hi * 1.5)
    } else {
        (0.001, 1.0)
    };
    let name = if corrected {
        "corrected (from due time)"
    } else {
        "uncorrected (from send)"
    };
    let (caption, size) = match workload {
        Some(w) => (format!("{w}: {name}"), 14),
        None => (format!("Latency by percentile, {name}"), 17),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, font(size))
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
        .y_labels(40)
        .y_max_light_lines(1)
        .bold_line_style(BLACK.mix(0.16))
        .light_line_style(BLACK.mix(0.05))
        .y_label_formatter(&|y| format_log_ms(*y))
        .label_style(font(13))
        .axis_desc_style(font(14))
        .draw()
        .map_err(err)?;
    layout.plot_areas.push(pixel_rect(chart.plotting_area()));
    for (i, g) in groups {
        if g.runs - g.failed > 1 {
            let pts = points(g);
            let low: Vec<(f64, f64)> = pts.iter().map(|p| (p.x, ms(p.us.low))).collect();
            let high: Vec<(f64, f64)> = pts.iter().map(|p| (p.x, ms(p.us.high))).collect();
            chart
                .draw_series([band_polygon(&low, &high, series_color(*i))])
                .map_err(err)?;
        }
    }
    for (i, g) in groups {
        chart
            .draw_series(LineSeries::new(
                points(g).iter().map(|p| (p.x, ms(p.us.median))),
                series_color(*i).stroke_width(2),
            ))
            .map_err(err)?;
    }
    Ok(())
}

/// Consecutive runs of `Some` points, each a line of its own.
fn segments(points: &[(f64, Option<f64>)]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for &(x, y) in points {
        match y {
            Some(y) => out.last_mut().into_iter().for_each(|s| s.push((x, y))),
            None => out.push(Vec::new()),
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn draw_timeline<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    groups: &[TimelineGroup],
    layout: &mut Layout,
) -> Result<(), String> {
    if groups.iter().all(|g| g.seconds.is_empty()) {
        return placeholder(root, "timeline");
    }
    let max_s = groups
        .iter()
        .flat_map(|g| g.seconds.iter().copied())
        .fold(0f64, f64::max);
    let facets = timeline_facets(groups);
    if !facets.is_empty() {
        return draw_timeline_facets(root, groups, &facets, max_s, layout);
    }
    let (_, h) = root.dim_in_pixel();
    let (top, rest) = root.split_vertically(h * 38 / 100);
    let (middle, bottom) = rest.split_vertically(h * 36 / 100);
    type Pick = fn(&TimelineGroup) -> Vec<Option<stats::Band>>;
    let pick: [(&DrawingArea<DB, Shift>, &str, &str, Pick); 3] = [
        (&top, "Successful requests per second", "req/s", |g| {
            g.requests_per_s.iter().copied().map(Some).collect()
        }),
        (
            &middle,
            "p99 latency per second (corrected)",
            "p99 (ms)",
            |g| g.p99_ms.clone(),
        ),
        (&bottom, "Failed requests per second", "errors/s", |g| {
            g.errors_per_s.iter().copied().map(Some).collect()
        }),
    ];
    let markers = groups.len() <= 4 && max_s <= 60.0;
    for (area, caption, unit, values) in pick {
        let series: Vec<Series> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (i, per_second(g, values)))
            .collect();
        let panel = Panel {
            caption: caption.to_string(),
            unit,
            max_s,
            markers,
            series: &series,
            font_px: 16,
        };
        draw_panel(area, panel, layout)?;
    }
    Ok(())
}

/// One series of a timeline panel: its colour's index and its values by second.
type Series = (usize, Vec<(f64, Option<stats::Band>)>);

/// A group's values of one panel, each at the middle of its second (a value covers
/// [second, second + 1)).
fn per_second(
    g: &TimelineGroup,
    values: fn(&TimelineGroup) -> Vec<Option<stats::Band>>,
) -> Vec<(f64, Option<stats::Band>)> {
    g.seconds.iter().map(|s| s + 0.5).zip(values(g)).collect()
}

fn timeline_facets(groups: &[TimelineGroup]) -> Vec<String> {
    facets(groups.iter().map(|g| g.workload.as_str()))
}

/// The timeline as small multiples: a row per workload, req/s, p99 and errors side by
/// side, each group in the colour it has everywhere.
fn draw_timeline_facets<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    groups: &[TimelineGroup],
    facets: &[String],
    max_s: f64,
    layout: &mut Layout,
) -> Result<(), String> {
    type Pick = fn(&TimelineGroup) -> Vec<Option<stats::Band>>;
    let metrics: [(&str, &str, Pick); 3] = [
        ("req/s", "req/s", |g| {
            g.requests_per_s.iter().copied().map(Some).collect()
        }),
        ("p99 (ms)", "p99 (ms)", |g| g.p99_ms.clone()),
        ("errors/s", "errors/s", |g| {
            g.errors_per_s.iter().copied().map(Some).collect()
        }),
    ];
    let (_, rest) = root.split_vertically(FACET_TOP);
    let rows = rest.split_evenly((facets.len(), 3));
    for (r, workload) in facets.iter().enumerate() {
        for (c, (name, unit, values)) in metrics.iter().enumerate() {
            let series: Vec<Series> = groups
                .iter()
                .enumerate()
                .filter(|(_, g)| g.workload == *workload)
                .map(|(i, g)| (i, per_second(g, *values)))
                .collect();
            let panel = Panel {
                caption: format!("{workload}: {name}"),
                unit,
                max_s,
                markers: false,
                series: &series,
                font_px: 14,
            };
            draw_panel(&rows[r * 3 + c], panel, layout)?;
        }
    }
    Ok(())
}

/// One timeline panel, its y axis linear or (past a 20-fold spread) logarithmic.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: Panel<'_>,
    layout: &mut Layout,
) -> Result<(), String> {
    let (caption, unit) = (panel.caption.clone(), panel.unit);
    let is_latency = unit.starts_with("p99");
    let bands = || {
        panel
            .series
            .iter()
            .flat_map(|(_, s)| s.iter())
            .filter_map(|(_, b)| b.as_ref())
    };
    let top = bands().map(|b| b.high).fold(0f64, f64::max);
    let top = if top > 0.0 { top * 1.1 } else { 1.0 };
    // Series a hundred times apart on a linear axis leave the small ones flat on the
    // floor: past a 20-fold spread of medians the axis is logarithmic.
    let least = bands()
        .map(|b| b.median)
        .filter(|m| *m > 0.0)
        .fold(f64::MAX, f64::min);
    let log = unit != "errors/s" && least < f64::MAX && top / 1.1 / least >= 20.0;
    if log {
        let floor = least / 2.0;
        let format = |y: &f64| {
            if is_latency {
                format_ms(*y)
            } else {
                format_count(*y)
            }
        };
        timeline_panel(
            area,
            panel,
            (floor..top * 1.5).log_scale(),
            floor,
            &format,
            layout,
        )
    } else {
        let format = |y: &f64| {
            if is_latency {
                format_ms(*y)
            } else if top <= 8.0 && (y - y.round()).abs() > 1e-6 {
                // A handful of errors: whole numbers only.
                String::new()
            } else {
                format_count(*y)
            }
        };
        timeline_panel(area, panel, 0f64..top, 0.0, &format, layout)
    }
    .map_err(|e| format!("{caption}: {e}"))?;
    Ok(())
}

/// One timeline panel's data.
struct Panel<'a> {
    caption: String,
    unit: &'a str,
    max_s: f64,
    markers: bool,
    series: &'a [Series],
    font_px: u32,
}

/// Draws one panel of the timeline on `area` with the y axis `y`; values under
/// `floor` are drawn at it (a log axis has no 0).
fn timeline_panel<DB, Y>(
    area: &DrawingArea<DB, Shift>,
    p: Panel<'_>,
    y: Y,
    floor: f64,
    y_format: &dyn Fn(&f64) -> String,
    layout: &mut Layout,
) -> Result<(), String>
where
    DB: DrawingBackend,
    Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    Y::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(&p.caption, font(p.font_px))
        .margin(10)
        .margin_right(24)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..(p.max_s + 1.0), y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("second")
        .y_desc(p.unit)
        .y_labels(6)
        .x_label_formatter(&|x| format_second(*x))
        .y_label_formatter(y_format)
        .label_style(font(13))
        .axis_desc_style(font(14))
        .draw()
        .map_err(err)?;
    layout.plot_areas.push(pixel_rect(chart.plotting_area()));
    let nothing = p
        .series
        .iter()
        .flat_map(|(_, s)| s.iter())
        .filter_map(|(_, b)| b.as_ref())
        .all(|b| b.high <= 0.0);
    if nothing && p.unit == "errors/s" {
        let note = "no failed requests".to_string();
        layout.annotations.push(note.clone());
        // The axis is 0 to 1 when nothing failed: the note at its middle.
        let grey = BLACK.mix(0.6);
        let style = font(14)
            .color(&grey)
            .pos(Pos::new(HPos::Center, VPos::Center));
        chart
            .draw_series([Text::new(note, ((p.max_s + 1.0) / 2.0, 0.5), style)])
            .map_err(err)?;
    }
    let at = |v: f64| v.max(floor);
    for (i, s) in p.series.iter() {
        let color = series_color(*i);
        if s.iter().flat_map(|(_, b)| b).any(|b| b.low < b.high) {
            let pick = |f: fn(&stats::Band) -> f64| {
                s.iter()
                    .map(|(x, b)| (*x, b.as_ref().map(|b| at(f(b)))))
                    .collect::<Vec<_>>()
            };
            for (low, high) in segments(&pick(|b| b.low))
                .iter()
                .zip(segments(&pick(|b| b.high)))
            {
                chart
                    .draw_series([band_polygon(low, &high, color)])
                    .map_err(err)?;
            }
        }
    }
    for (i, s) in p.series.iter() {
        let color = series_color(*i);
        let median: Vec<(f64, Option<f64>)> = s
            .iter()
            .map(|(x, b)| (*x, b.map(|b| at(b.median))))
            .collect();
        for line in segments(&median) {
            chart
                .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
                .map_err(err)?;
            if p.markers {
                chart
                    .draw_series(line.iter().map(|q| Circle::new(*q, 3, color.filled())))
                    .map_err(err)?;
            }
        }
    }
    Ok(())
}

fn draw_comparison<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    bars: &[Comparison],
    layout: &mut Layout,
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
        .margin_right(20)
        .x_label_area_size(44)
        .y_label_area_size(COMPARISON_LABEL_W)
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
    layout.plot_areas.push(pixel_rect(chart.plotting_area()));
    for (i, b) in bars.iter().enumerate() {
        // Top to bottom in the order given.
        let y = n - 1.0 - i as f64;
        let color = series_color(i);
        let ci = b.requests_per_s;
        chart
            .draw_series([Rectangle::new(
                [(0.0, y + 0.18), (ci.mean, y + 0.82)],
                color.mix(0.45).filled(),
            )])
            .map_err(err)?;
        let whisker = BLACK.stroke_width(2);
        // Fewer than no requests per second cannot happen: the interval stops at 0.
        let low = ci.low.max(0.0);
        chart
            .draw_series([
                PathElement::new(vec![(low, y + 0.5), (ci.high, y + 0.5)], whisker),
                PathElement::new(vec![(low, y + 0.3), (low, y + 0.7)], whisker),
                PathElement::new(vec![(ci.high, y + 0.3), (ci.high, y + 0.7)], whisker),
            ])
            .map_err(err)?;
        let spread = if ci.n > 1 {
            format!(" ± {} (n={})", format_count(ci.high - ci.mean), ci.n)
        } else {
            " (n=1)".to_string()
        };
        let value = if b.failed_runs == ci.n {
            "failed: every request failed".to_string()
        } else if b.failed_runs > 0 {
            format!(
                "{}{spread}, {} failed",
                format_count(ci.mean),
                b.failed_runs
            )
        } else {
            format!("{}{spread}", format_count(ci.mean))
        };
        // The name left of the axis, cut to the label area; the value inside.
        let name = format!("{} {}", b.target, b.workload);
        let name = text::fit_width(&name, 13.0, f64::from(COMPARISON_LABEL_W) - 16.0);
        let (x0, mid) = chart.backend_coord(&(0.0, y + 0.5));
        let right = Pos::new(HPos::Right, VPos::Center);
        root.draw(&Text::new(name, (x0 - 8, mid), font(13).pos(right)))
            .map_err(err)?;
        layout.annotations.push(value.clone());
        let mut value_font = font(13).pos(Pos::new(HPos::Left, VPos::Center));
        if b.failed_runs == ci.n {
            value_font = value_font.color(&RGBColor(200, 30, 30));
        }
        chart
            .draw_series([Text::new(
                value,
                (ci.high.max(ci.mean) + top * 0.01, y + 0.5),
                value_font,
            )])
            .map_err(err)?;
    }
    Ok(())
}

/// Where a log latency axis starts for data from `lo` up: a power of ten (plotters
/// puts its grid lines, and so its labels, only from the first power of ten in the
/// range on), the one under `lo` with some room, or `lo`'s own when the data start
/// at or above it.
fn decade_floor(lo: f64) -> f64 {
    let d = 10f64.powf((lo / 1.5).log10().floor());
    let d = if d * 10.0 <= lo { d * 10.0 } else { d };
    // A hair under it: plotters rounds the start's logarithm up, and -1.9999… would
    // lose the 0.01 line.
    d * 0.999
}

/// A log axis' label: 1, 2 and 5 times a power of ten labelled, the other grid lines
/// left bare (every one labelled crowds the axis, decades alone leave too few).
fn format_log_ms(ms: f64) -> String {
    if ms <= 0.0 {
        return String::new();
    }
    let mantissa = ms / 10f64.powf(ms.log10().floor());
    let near = |m: f64| (mantissa - m).abs() < 0.01 * m;
    if near(1.0) || near(2.0) || near(5.0) || near(10.0) {
        format_ms(ms)
    } else {
        String::new()
    }
}

fn format_ms(ms: f64) -> String {
    let s = if ms >= 1.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.3}")
    };
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A count or rate for axes and labels, one style throughout: `950`, `1.5k`, `54k`,
/// `1.2M`; three significant digits at most.
fn format_count(v: f64) -> String {
    let (scaled, unit) = if v.abs() >= 1e6 {
        (v / 1e6, "M")
    } else if v.abs() >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let decimals = if scaled.abs() >= 100.0 || scaled == scaled.round() {
        0
    } else if scaled.abs() >= 10.0 {
        usize::from(unit.is_empty())
    } else {
        1
    };
    let s = format!("{scaled:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{unit}")
}

/// Whole seconds on the timeline's x axis (fractional ticks unlabelled).
fn format_second(x: f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{x:.0}")
    } else {
        String::new()
    }
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
        root.draw(&Text::new(
            text::fit_width(target, 12.0, f64::from(VERDICT_COL_W) - 8.0),
            (x, top - 36),
            font(12),
        ))
        .map_err(err)?;
        if !fault.is_empty() {
            root.draw(&Text::new(
                text::fit_width(fault, 12.0, f64::from(VERDICT_COL_W) - 8.0),
                (x, top - 20),
                font(12),
            ))
            .map_err(err)?;
        }
    }
    for (r, id) in m.rows.iter().enumerate() {
        let y = top + r as i32 * row_h;
        let id = text::fit_width(id, 13.0, f64::from(VERDICT_ID_W) - 20.0);
        root.draw(&Text::new(id, (12, y + 4), font(13)))
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

/// The SLO line's colour: a dark grey, darker than any series colour.
const SLO_COLOR: RGBColor = RGBColor(55, 55, 55);

fn draw_latency_vs_rate<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    curves: &[RateCurve],
    layout: &mut Layout,
) -> Result<(), String> {
    let drawn = |c: &RateCurve| {
        c.points
            .iter()
            .filter(|p| !p.failed)
            .copied()
            .collect::<Vec<_>>()
    };
    let points = || {
        curves
            .iter()
            .flat_map(|c| c.points.iter().filter(|p| !p.failed))
    };
    if points().next().is_none() {
        let what = if curves.is_empty() {
            "sweeps"
        } else {
            "latency: every sweep step failed"
        };
        return placeholder(root, what);
    }
    let max_x = curves
        .iter()
        .flat_map(|c| c.points.iter())
        .map(|p| p.offered_per_s)
        .fold(0f64, f64::max);
    let latencies = points()
        .flat_map(|p| [p.p50_ms, p.p99_ms])
        .chain(curves.iter().filter_map(|c| c.slo_ms))
        .map(|v| v.max(0.001));
    let (lo, hi) = latencies.fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = (decade_floor(lo), hi * 1.5);
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
        .y_labels(40)
        .y_max_light_lines(1)
        .y_label_formatter(&|y| format_log_ms(*y))
        .label_style(font(13))
        .axis_desc_style(font(14))
        .draw()
        .map_err(err)?;
    layout.plot_areas.push(pixel_rect(chart.plotting_area()));
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
            .map_err(err)?;
    }
    for (i, c) in curves.iter().enumerate() {
        let color = series_color(i);
        let pts = drawn(c);
        let p99: Vec<(f64, f64)> = pts
            .iter()
            .map(|p| (p.offered_per_s, p.p99_ms.max(0.001)))
            .collect();
        let p50: Vec<(f64, f64)> = pts
            .iter()
            .map(|p| (p.offered_per_s, p.p50_ms.max(0.001)))
            .collect();
        chart
            .draw_series(LineSeries::new(p99.clone(), color.stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series(DashedLineSeries::new(
                p50.clone(),
                6,
                4,
                color.mix(0.8).stroke_width(2),
            ))
            .map_err(err)?;
        // Steps that held are filled dots, steps that did not are crosses.
        for (p, xy) in pts.iter().zip(&p99) {
            if p.held {
                chart
                    .draw_series([Circle::new(*xy, 4, color.filled())])
                    .map_err(err)?;
            } else {
                chart
                    .draw_series([Cross::new(*xy, 5, color.stroke_width(2))])
                    .map_err(err)?;
            }
        }
        chart
            .draw_series(
                p50.iter()
                    .map(|xy| Circle::new(*xy, 2, color.mix(0.8).filled())),
            )
            .map_err(err)?;
    }
    Ok(())
}
