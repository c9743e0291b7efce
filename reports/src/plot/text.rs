//! The plots' text, laid out and (in PNGs) rasterized here instead of by plotters.
//!
//! plotters' `ab_glyph` path puts each glyph at a baseline of half the font size,
//! truncating the glyph's offset from it towards zero (so a period, whose top lies below
//! that line, lands a pixel higher than the digits beside it), and drops each glyph's
//! left side bearing and the pen's fractional position (so the gaps between letters
//! vary by a pixel or more: "127·0·0·1", "m ean"). Here a glyph is placed at its pen
//! position with sub-pixel precision on one baseline at the font's ascent, the way a
//! text engine does it.
//!
//! [`Glyphs`] wraps a backend: every text it is asked to draw is measured with the same
//! metrics, its box recorded (what the layout tests assert on), and then rasterized
//! (bitmaps) or handed to the wrapped backend as text (SVG, where the viewer's engine
//! renders it).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Once, OnceLock};

use ab_glyph::{point, Font, FontRef, ScaleFont};
use plotters::style::{FontStyle, IntoFont, TextStyle, BLACK};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

/// DejaVu Sans (Bitstream Vera license: `reports/assets/DejaVuSans-LICENSE.txt`).
pub(crate) static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

const FAMILY: &str = "sans-serif";

static REGISTER_FONT: Once = Once::new();

pub(super) fn register_font() {
    REGISTER_FONT.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The bytes are the committed font: parsing them cannot fail at run time
            // unless the file was replaced, and then text is left out, not the plot.
            let _ = plotters::style::register_font(FAMILY, style, FONT);
        }
    });
}

/// The plots' text style at `size` pixels, black.
pub(super) fn font(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

fn face() -> Option<&'static FontRef<'static>> {
    static FACE: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    // The committed font parses; were it replaced by something that does not, text is
    // measured as empty and left out, not the plot.
    FACE.get_or_init(|| FontRef::try_from_slice(FONT).ok())
        .as_ref()
}

/// A pixel rectangle, `[x0, x1) × [y0, y1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x0: i32,
    /// Top edge.
    pub y0: i32,
    /// Right edge (exclusive).
    pub x1: i32,
    /// Bottom edge (exclusive).
    pub y1: i32,
}

impl Rect {
    /// The rectangle with corners `a` and `b`, in any order.
    pub fn spanning(a: (i32, i32), b: (i32, i32)) -> Rect {
        Rect {
            x0: a.0.min(b.0),
            y0: a.1.min(b.1),
            x1: a.0.max(b.0),
            y1: a.1.max(b.1),
        }
    }

    /// Whether the two share a pixel.
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }

    /// Whether `o` lies wholly inside.
    pub fn contains(&self, o: &Rect) -> bool {
        self.x0 <= o.x0 && o.x1 <= self.x1 && self.y0 <= o.y0 && o.y1 <= self.y1
    }
}

/// A text as drawn: the string and the box its line occupies (advance width × the
/// font's ascent to descent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextBox {
    /// The text.
    pub text: String,
    /// Where.
    pub rect: Rect,
}

/// Width and height in pixels of one line of `text` at `size` pixels.
pub fn text_size(text: &str, size: f64) -> (f64, f64) {
    let Some(face) = face() else {
        return (0.0, 0.0);
    };
    let font = face.as_scaled(size as f32);
    let mut width = 0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            width += font.kern(p, id);
        }
        width += font.h_advance(id);
        prev = Some(id);
    }
    (f64::from(width), f64::from(font.ascent() - font.descent()))
}

/// `text` cut, with an ellipsis, to at most `max_px` pixels wide at `size`.
pub fn fit_width(text: &str, size: f64, max_px: f64) -> String {
    if text_size(text, size).0 <= max_px {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let cut: String = chars.iter().collect::<String>() + "…";
        if text_size(&cut, size).0 <= max_px {
            return cut;
        }
    }
    String::new()
}

/// The texts a [`Glyphs`] backend drew, shared with whoever made it.
pub type TextLog = Rc<RefCell<Vec<TextBox>>>;

/// A backend that lays out text itself and records every text's box; `raster` draws
/// the glyphs as pixels, otherwise text goes to the wrapped backend as text.
#[derive(Debug)]
pub struct Glyphs<B> {
    inner: B,
    raster: bool,
    log: TextLog,
}

impl<B: DrawingBackend> Glyphs<B> {
    /// Wraps `inner`; texts are recorded into `log`.
    pub fn new(inner: B, raster: bool, log: TextLog) -> Self {
        Glyphs { inner, raster, log }
    }
}

type Res<E> = Result<(), DrawingErrorKind<E>>;

impl<B: DrawingBackend> DrawingBackend for Glyphs<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Res<B::ErrorType> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Res<B::ErrorType> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, p: BackendCoord, c: BackendColor) -> Res<B::ErrorType> {
        self.inner.draw_pixel(p, c)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Res<B::ErrorType> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Res<B::ErrorType> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Res<B::ErrorType> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Res<B::ErrorType> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Res<B::ErrorType> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Res<B::ErrorType> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<B::ErrorType>> {
        let (w, h) = text_size(text, style.size());
        Ok((w.ceil() as u32, h.ceil() as u32))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Res<B::ErrorType> {
        let size = style.size();
        let (w, h) = text_size(text, size);
        let anchor = style.anchor();
        // The line's box in its own (unrotated) frame, the anchor at the origin.
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -w / 2.0,
            HPos::Right => -w,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0.0,
            VPos::Center => -h / 2.0,
            VPos::Bottom => -h,
        };
        let trans = style.transform();
        let corner = |x: f64, y: f64| {
            let (x, y) = trans.transform(x.round() as i32, y.round() as i32);
            (pos.0 + x, pos.1 + y)
        };
        self.log.borrow_mut().push(TextBox {
            text: text.to_string(),
            rect: Rect::spanning(corner(dx, dy), corner(dx + w, dy + h)),
        });
        if !self.raster {
            return self.inner.draw_text(text, style, pos);
        }
        let Some(face) = face() else {
            return Ok(());
        };
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let font = face.as_scaled(size as f32);
        let baseline = dy as f32 + font.ascent();
        let mut pen = dx as f32;
        let mut prev = None;
        let mut pixels = Vec::new();
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                pen += font.kern(p, id);
            }
            prev = Some(id);
            let glyph = id.with_scale_and_position(font.scale(), point(pen, baseline));
            pen += font.h_advance(id);
            let Some(outline) = face.outline_glyph(glyph) else {
                continue;
            };
            let b = outline.px_bounds();
            outline.draw(|x, y, coverage| {
                if coverage > 0.0 {
                    let (x, y) = (b.min.x as i32 + x as i32, b.min.y as i32 + y as i32);
                    pixels.push((x, y, coverage.min(1.0)));
                }
            });
        }
        let (width, height) = self.inner.get_size();
        for (x, y, coverage) in pixels {
            let (x, y) = trans.transform(x, y);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && y >= 0 && (x as u32) < width && (y as u32) < height {
                let c = BackendColor {
                    alpha: color.alpha * f64::from(coverage),
                    rgb: color.rgb,
                };
                self.inner.draw_pixel((x, y), c)?;
            }
        }
        Ok(())
    }
}
