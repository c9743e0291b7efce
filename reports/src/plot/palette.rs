//! Series colours that stay apart at 40 and more series.
//!
//! The first eight are the familiar hand-picked ones; the rest are chosen greedily from
//! a grid of hues, saturations and lightnesses, each the candidate farthest (CIE76
//! ΔE in L*a*b*) from every colour chosen before it. Too light a colour vanishes on
//! the white background and too dark a one reads as the black of the axes, so the
//! grid stays between L* 30 and 72.

use std::sync::OnceLock;

use plotters::style::RGBColor;

/// How many colours there are before they repeat.
pub const LEN: usize = 64;

const FIRST: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// The colour of series `i` (they repeat after [`LEN`]).
pub fn color(i: usize) -> RGBColor {
    static PALETTE: OnceLock<Vec<RGBColor>> = OnceLock::new();
    let p = PALETTE.get_or_init(build);
    p[i % p.len()]
}

fn build() -> Vec<RGBColor> {
    let mut chosen: Vec<RGBColor> = FIRST.to_vec();
    let mut candidates: Vec<RGBColor> = Vec::new();
    for h in (0..360).step_by(6) {
        for s in [0.55, 0.8, 1.0] {
            for l in [0.28, 0.38, 0.48, 0.58] {
                let c = hsl(f64::from(h), s, l);
                let lightness = lab(c)[0];
                if (30.0..=72.0).contains(&lightness) {
                    candidates.push(c);
                }
            }
        }
    }
    let chosen_lab = |chosen: &[RGBColor]| chosen.iter().map(|c| lab(*c)).collect::<Vec<_>>();
    let mut labs = chosen_lab(&chosen);
    while chosen.len() < LEN {
        let best = candidates
            .iter()
            .map(|c| {
                let l = lab(*c);
                let nearest = labs.iter().map(|o| delta_e(&l, o)).fold(f64::MAX, f64::min);
                (*c, nearest)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((c, _)) => {
                chosen.push(c);
                labs.push(lab(c));
            }
            None => break,
        }
    }
    chosen
}

/// HSL (hue in degrees, saturation and lightness 0..=1) to sRGB.
fn hsl(h: f64, s: f64, l: f64) -> RGBColor {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = h / 60.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let byte = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    RGBColor(byte(r), byte(g), byte(b))
}

/// sRGB (D65) to CIE L*a*b*.
pub fn lab(c: RGBColor) -> [f64; 3] {
    let lin = |u: u8| {
        let v = f64::from(u) / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let (r, g, b) = (lin(c.0), lin(c.1), lin(c.2));
    let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
    let f = |t: f64| {
        if t > 0.008856 {
            t.cbrt()
        } else {
            7.787 * t + 16.0 / 116.0
        }
    };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// CIE76 colour difference: about 2.3 is just noticeable, 10 and more is a
/// different colour at a glance.
pub fn delta_e(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// The ΔE between two colours.
pub fn distance(a: RGBColor, b: RGBColor) -> f64 {
    delta_e(&lab(a), &lab(b))
}
