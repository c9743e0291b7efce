//! Legends drawn under the plot area, in as many columns as fit the width: the image
//! grows by the legend's height, so no entry covers a line however many series there
//! are. Every entry's box is recorded in the [`Layout`].

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::layout::{Layout, LegendBox};
use super::text::{fit_width, font, text_size, Rect};

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// How an entry's swatch looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swatch {
    /// A solid line.
    Line,
    /// A solid line over a pale band (median and range across repeats).
    Band,
    /// A dashed line.
    Dashed,
    /// A cross: the series failed and has nothing to draw.
    Failed,
}

/// One legend entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its text.
    pub label: String,
    /// Its colour.
    pub color: RGBColor,
    /// Its swatch.
    pub swatch: Swatch,
}

const FONT_PX: u32 = 12;
const ROW_H: i32 = 20;
const SWATCH_W: i32 = 28;
const GAP: i32 = 7;
const COL_GAP: i32 = 18;
const SIDE: i32 = 14;
const PAD: i32 = 8;

/// Columns, column width and rows of the entries' grid in `width` pixels.
fn grid(entries: &[Entry], width: u32) -> (usize, i32, usize) {
    let avail = (width as i32 - 2 * SIDE).max(1);
    let widest = entries
        .iter()
        .map(|e| text_size(&e.label, f64::from(FONT_PX)).0.ceil() as i32)
        .max()
        .unwrap_or(0);
    let col_w = (widest + SWATCH_W + GAP + COL_GAP).clamp(120.min(avail), avail);
    let cols = ((avail / col_w) as usize).clamp(1, entries.len().max(1));
    let rows = entries.len().div_ceil(cols);
    (cols, col_w, rows)
}

/// The legend's height in pixels at `width` (0 without entries); `note` is a line of
/// explanation above the entries.
pub fn height(entries: &[Entry], note: Option<&str>, width: u32) -> u32 {
    if entries.is_empty() {
        return 0;
    }
    let (_, _, rows) = grid(entries, width);
    let note_h = if note.is_some() { ROW_H } else { 0 };
    (2 * PAD + note_h + rows as i32 * ROW_H) as u32
}

/// Draws the legend on `root` from pixel row `top` down, column by column.
pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    top: i32,
    entries: &[Entry],
    note: Option<&str>,
    layout: &mut Layout,
) -> Result<(), String> {
    if entries.is_empty() {
        return Ok(());
    }
    let (width, _) = root.dim_in_pixel();
    let (_, col_w, rows) = grid(entries, width);
    let left = Pos::new(HPos::Left, VPos::Center);
    let mut y0 = top + PAD;
    if let Some(note) = note {
        let text = fit_width(note, 12.0, f64::from(width) - 2.0 * f64::from(SIDE));
        root.draw(&Text::new(
            text,
            (SIDE, y0 + ROW_H / 2),
            font(12).color(&BLACK.mix(0.7)).pos(left),
        ))
        .map_err(err)?;
        y0 += ROW_H;
    }
    for (i, e) in entries.iter().enumerate() {
        let (col, row) = ((i / rows) as i32, (i % rows) as i32);
        let x = SIDE + col * col_w;
        let y = y0 + row * ROW_H;
        let mid = y + ROW_H / 2;
        let sw = (x + 2, x + SWATCH_W - 2);
        match e.swatch {
            Swatch::Line => {
                root.draw(&PathElement::new(
                    vec![(sw.0, mid), (sw.1, mid)],
                    e.color.stroke_width(2),
                ))
                .map_err(err)?;
            }
            Swatch::Band => {
                root.draw(&Rectangle::new(
                    [(sw.0, mid - 6), (sw.1, mid + 6)],
                    e.color.mix(0.22).filled(),
                ))
                .map_err(err)?;
                root.draw(&PathElement::new(
                    vec![(sw.0, mid), (sw.1, mid)],
                    e.color.stroke_width(2),
                ))
                .map_err(err)?;
            }
            Swatch::Dashed => {
                for k in 0..3 {
                    let a = sw.0 + k * 9;
                    root.draw(&PathElement::new(
                        vec![(a, mid), ((a + 5).min(sw.1), mid)],
                        e.color.stroke_width(2),
                    ))
                    .map_err(err)?;
                }
            }
            Swatch::Failed => {
                let c = (x + SWATCH_W / 2, mid);
                root.draw(&Cross::new(c, 5, e.color.stroke_width(2)))
                    .map_err(err)?;
            }
        }
        let max_text = f64::from(col_w - SWATCH_W - GAP - COL_GAP / 2);
        let label = fit_width(&e.label, f64::from(FONT_PX), max_text);
        let text_w = text_size(&label, f64::from(FONT_PX)).0.ceil() as i32;
        root.draw(&Text::new(
            label.clone(),
            (x + SWATCH_W + GAP, mid),
            font(FONT_PX).pos(left),
        ))
        .map_err(err)?;
        layout.legend.push(LegendBox {
            label,
            color: e.color,
            rect: Rect::spanning((x, y), (x + SWATCH_W + GAP + text_w, y + ROW_H)),
        });
    }
    Ok(())
}
