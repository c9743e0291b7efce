//! Where a plot's parts were drawn: what the layout tests assert on.

use plotters::coord::CoordTranslate;
use plotters::prelude::{DrawingArea, DrawingBackend, RGBColor};

use super::text::{Rect, TextBox};

/// Where a plot's parts were drawn, in pixels of its image: what the layout tests
/// assert on (the legend and every text inside the image, no text over a plot area
/// unless it is meant to be there).
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// The image's size.
    pub size: (u32, u32),
    /// The plotting areas (inside the axes) of its charts.
    pub plot_areas: Vec<Rect>,
    /// The legend's entries.
    pub legend: Vec<LegendBox>,
    /// Texts drawn inside a plot area on purpose (values beside bars, "failed").
    pub annotations: Vec<String>,
    /// Every text drawn, with its box.
    pub texts: Vec<TextBox>,
}

/// A legend entry as drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendBox {
    /// Its text (cut to fit, with an ellipsis, when it had to be).
    pub label: String,
    /// Its series' colour.
    pub color: RGBColor,
    /// The swatch and text.
    pub rect: Rect,
}

/// The pixel rectangle of a drawing area.
pub(super) fn pixel_rect<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
) -> Rect {
    let (x, y) = area.get_pixel_range();
    Rect {
        x0: x.start,
        y0: y.start,
        x1: x.end,
        y1: y.end,
    }
}
