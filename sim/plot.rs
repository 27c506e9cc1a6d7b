//! Plots with an embedded font.
//!
//! Report plots on top of `plotters`: lines, scatter (optionally with the `y = x`
//! diagonal for measured-vs-modeled plots) and grouped bars, each written as PNG
//! and SVG. DejaVu Sans is compiled in and registered as `"sans-serif"`, so no
//! system font is looked up; output is byte-identical for identical input.
//!
//! Every series of points is drawn with a marker of its own shape (lines too), paper or
//! reference figures as dashed lines ([`Reference`]), and the legend in a panel right of the
//! plotting area, so that it covers no data. Log axes are labelled at decades (1, 10, 100,
//! 1000, 10k, …) unless the chart gives its ticks ([`Chart::x_ticks`], e.g. [`seq_ticks`]:
//! 1K, 4K, 16K …).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use plotters::coord::combinators::{IntoLogRange, LogCoord};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::{types::RangedCoordf64, CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
static FONT_INIT: Once = Once::new();
static FONT_OK: AtomicBool = AtomicBool::new(false);

/// Output size in pixels (PNG and SVG).
pub const SIZE: (u32, u32) = (1000, 600);

/// One named data series.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        let name = name.into();
        Series { name, points }
    }
}

/// How the series of a [`Chart`] are drawn.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ChartKind {
    #[default]
    Lines,
    Scatter,
    /// `series[i].points[j].1` is the value of series `i` in category `j`; x (and
    /// `log_x`) is ignored. Every series needs exactly `categories.len()` points.
    GroupedBars {
        categories: Vec<String>,
    },
}

/// A chart description; see [`render`]. `Default` gives an empty linear line chart.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
    pub kind: ChartKind,
    /// Draw the `y = x` line; both axes then share one range. Ignored for bars.
    pub diagonal: bool,
    /// Dashed horizontal lines, e.g. the paper's figure. Ignored for bars.
    pub references: Vec<Reference>,
    /// Labelled x ticks (value, label) instead of automatic ones; ignored for bars.
    pub x_ticks: Vec<(f64, String)>,
}

/// A dashed horizontal line at `y` (over the x span `x`, or the whole axis), in the legend as
/// `label`; a span of one x value is drawn as a marker.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reference {
    pub label: String,
    pub y: f64,
    pub x: Option<(f64, f64)>,
}

impl Reference {
    pub fn new(label: impl Into<String>, y: f64) -> Self {
        Reference {
            label: label.into(),
            y,
            x: None,
        }
    }
    /// Only over `from..=to` on the x axis.
    pub fn over(mut self, from: f64, to: f64) -> Self {
        self.x = Some((from, to));
        self
    }
}

/// Ticks for sequence lengths and other powers of two: 1024 → `1K`, 1048576 → `1M`.
pub fn seq_ticks(values: &[f64]) -> Vec<(f64, String)> {
    values.iter().map(|&v| (v, binary_label(v))).collect()
}

fn binary_label(v: f64) -> String {
    const K: f64 = 1024.0;
    if v >= K * K * K && (v / (K * K * K)).fract() == 0.0 {
        format!("{}G", v / (K * K * K))
    } else if v >= K * K && (v / (K * K)).fract() == 0.0 {
        format!("{}M", v / (K * K))
    } else if v >= K && (v / K).fract() == 0.0 {
        format!("{}K", v / K)
    } else {
        fmt_num(v)
    }
}

/// Log-log scatter with the `y = x` diagonal (measured vs. modeled).
pub fn scatter_with_diagonal(title: &str, x: &str, y: &str, series: Vec<Series>) -> Chart {
    let (title, x_label, y_label) = (title.into(), x.into(), y.into());
    let (log_x, log_y, diagonal, kind) = (true, true, true, ChartKind::Scatter);
    Chart {
        title,
        x_label,
        y_label,
        log_x,
        log_y,
        series,
        kind,
        diagonal,
        ..Chart::default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot plot {}: {reason}", path.display())]
    InvalidData { path: PathBuf, reason: String },
    #[error("failed to draw {}: {reason}", path.display())]
    Draw { path: PathBuf, reason: String },
    #[error("failed to write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl PlotError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        let path = path.to_path_buf();
        PlotError::Io { path, source }
    }
}

/// Writes `chart` as a PNG (`SIZE`; the path should end in `.png`) and an SVG,
/// creating parent directories. Invalid data is reported before any file is written.
pub fn render(chart: &Chart, png_path: &Path, svg_path: &Path) -> Result<(), PlotError> {
    let path = png_path.to_path_buf();
    let (xr, yr) = ranges(chart).map_err(|reason| PlotError::InvalidData { path, reason })?;
    FONT_INIT.call_once(|| {
        let ok = register_font("sans-serif", FontStyle::Normal, FONT).is_ok();
        FONT_OK.store(ok, Ordering::SeqCst);
    });
    let draw_err = |p: &Path, reason| PlotError::Draw {
        path: p.into(),
        reason,
    };
    if !FONT_OK.load(Ordering::SeqCst) {
        return Err(draw_err(
            png_path,
            "embedded font could not be registered".into(),
        ));
    }
    for p in [png_path, svg_path] {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| PlotError::io(p, e))?;
        }
    }
    let root = BitMapBackend::new(png_path, SIZE).into_drawing_area();
    draw(&root, chart, (xr, yr))
        .and_then(|_| root.present().map_err(|e| e.to_string()))
        .map_err(|e| draw_err(png_path, e))?;
    let mut svg = String::new();
    let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
    draw(&root, chart, (xr, yr))
        .and_then(|_| root.present().map_err(|e| e.to_string()))
        .map_err(|e| draw_err(svg_path, e))?;
    drop(root);
    std::fs::write(svg_path, svg).map_err(|e| PlotError::io(svg_path, e))
}

type Span = (f64, f64);

/// Validates the data and returns padded (x, y) axis ranges.
fn ranges(c: &Chart) -> Result<(Span, Span), String> {
    if c.series.is_empty() {
        return Err("chart has no series".into());
    }
    let bars = match &c.kind {
        ChartKind::GroupedBars { categories } if categories.is_empty() => {
            return Err("grouped bars need at least one category".into())
        }
        ChartKind::GroupedBars { categories } => Some(categories.len()),
        _ => None,
    };
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for s in &c.series {
        let (name, len) = (&s.name, s.points.len());
        if len == 0 {
            return Err(format!("series '{name}' is empty"));
        }
        if let Some(n) = bars.filter(|&n| n != len) {
            return Err(format!(
                "series '{name}' has {len} values for {n} categories"
            ));
        }
        let check = |v: f64, log: bool, axis: &str| match () {
            _ if !v.is_finite() => Err(format!("series '{name}' has non-finite {axis} value {v}")),
            _ if log && v <= 0.0 => Err(format!("series '{name}' has {axis} = {v} on a log axis")),
            _ => Ok(v),
        };
        for &(x, y) in &s.points {
            if bars.is_none() {
                xs.push(check(x, c.log_x, "x")?);
            }
            ys.push(check(y, c.log_y, "y")?);
        }
    }
    if bars.is_none() {
        for r in &c.references {
            let name = &r.label;
            if !r.y.is_finite() || (c.log_y && r.y <= 0.0) {
                return Err(format!("reference '{name}' has y = {} on this axis", r.y));
            }
            if let Some((a, b)) = r.x {
                if !(a.is_finite() && b.is_finite() && a <= b) || (c.log_x && a <= 0.0) {
                    return Err(format!("reference '{name}' has the x span {a}..{b}"));
                }
            }
            ys.push(r.y);
        }
        for (v, l) in &c.x_ticks {
            if !v.is_finite() || (c.log_x && *v <= 0.0) {
                return Err(format!("x tick '{l}' is at {v}"));
            }
        }
    }
    let span = |v: &[f64]| {
        v.iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)))
    };
    let (mut x, mut y) = (span(&xs), span(&ys));
    if let Some(n) = bars {
        let y = (y.0.min(if c.log_y { y.0 } else { 0.0 }), y.1.max(0.0));
        return Ok(((0.0, n as f64), pad(y, c.log_y)));
    }
    if c.diagonal {
        x = (x.0.min(y.0), x.1.max(y.1));
        y = x;
    }
    Ok((pad(x, c.log_x), pad(y, c.log_y)))
}

/// Widens a range by 5% on each side (multiplicatively on log axes); a range
/// starting at exactly 0 keeps 0 as its lower end.
fn pad((lo, hi): Span, log: bool) -> Span {
    if log {
        let f = if lo == hi { 2.0 } else { (hi / lo).powf(0.05) };
        return (lo / f, hi * f);
    }
    let w = lo.abs().max(1.0) * 0.5;
    let (lo, hi) = if lo == hi { (lo - w, hi + w) } else { (lo, hi) };
    let d = (hi - lo) * 0.05;
    (if lo == 0.0 { 0.0 } else { lo - d }, hi + d)
}

/// Tick label: up to 3 significant digits, scientific for very large/small values.
fn fmt_num(v: f64) -> String {
    let trim = |s: &str| match s.contains('.') {
        true => s.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => s.to_string(),
    };
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.2e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        format!("{}e{e}", trim(m))
    } else {
        let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
        trim(&format!("{v:.decimals$}"))
    }
}

/// Distinct colour per series: Tableau 10, then plotters' 99-colour palette.
fn color(i: usize) -> RGBColor {
    const TAB10: [u32; 10] = [
        0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22,
        0x17becf,
    ];
    let (r, g, b) = match TAB10.get(i) {
        Some(&c) => ((c >> 16) as u8, (c >> 8) as u8, c as u8),
        None => Palette99::pick(i).rgb(),
    };
    RGBColor(r, g, b)
}

/// Label of a log-axis tick: decades as 1, 10, 100, 1000, 10k, 100k, 1M …; others as numbers.
fn fmt_log(v: f64) -> String {
    let a = v.abs();
    let decade = a > 0.0 && (a.log10() - a.log10().round()).abs() < 1e-9;
    if !decade || a < 1e4 {
        return fmt_num(v);
    }
    let e = a.log10().round() as i32;
    match e {
        4 => "10k".into(),
        5 => "100k".into(),
        6 => "1M".into(),
        7 => "10M".into(),
        8 => "100M".into(),
        9 => "1G".into(),
        _ => format!("1e{e}"),
    }
}

/// One axis: linear, logarithmic, or categories `0..n` with ticks at centres `j + 0.5`;
/// `ticks` replaces the automatic key points.
struct Axis {
    kind: AxisKind,
    ticks: Option<Vec<f64>>,
}

enum AxisKind {
    Lin(RangedCoordf64),
    Log(LogCoord<f64>),
    Cat(RangedCoordf64, usize),
}

impl Axis {
    fn new((lo, hi): Span, log: bool, cats: Option<usize>, ticks: Option<Vec<f64>>) -> Self {
        let kind = match (cats, log) {
            (Some(n), _) => AxisKind::Cat((lo..hi).into(), n),
            (None, true) => AxisKind::Log((lo..hi).log_scale().into()),
            (None, false) => AxisKind::Lin((lo..hi).into()),
        };
        Axis { kind, ticks }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        match &self.kind {
            AxisKind::Lin(a) | AxisKind::Cat(a, _) => a.map(v, limit),
            AxisKind::Log(a) => a.map(v, limit),
        }
    }
    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if let Some(t) = &self.ticks {
            let r = self.range();
            return t
                .iter()
                .copied()
                .filter(|v| r.start <= *v && *v <= r.end)
                .collect();
        }
        match &self.kind {
            AxisKind::Lin(a) => a.key_points(hint),
            // Decades only when the hint asks for bold points (labels): no crowding.
            AxisKind::Log(a) => {
                let light = hint.weight().allow_light_points();
                let pts = a.key_points(hint);
                let decades: Vec<f64> = pts
                    .iter()
                    .copied()
                    .filter(|v| (v.log10() - v.log10().round()).abs() < 1e-9)
                    .collect();
                if light || decades.len() < 2 {
                    pts
                } else {
                    decades
                }
            }
            AxisKind::Cat(_, n) => (0..*n).map(|j| j as f64 + 0.5).collect(),
        }
    }
    fn range(&self) -> std::ops::Range<f64> {
        match &self.kind {
            AxisKind::Lin(a) | AxisKind::Cat(a, _) => a.range(),
            AxisKind::Log(a) => a.range(),
        }
    }
}

/// Draws marker `i` at `at`: circle, triangle, square, cross (then larger ones), one shape
/// per series.
fn draw_marker<DB: DrawingBackend, X: CoordTranslate>(
    area: &DrawingArea<DB, X>,
    i: usize,
    at: X::From,
    col: RGBColor,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    X::From: Clone + 'static,
{
    // Hollow shapes of different sizes: series that coincide stay visible one inside another.
    let style = col.stroke_width(2);
    let k = (i / 4) as i32;
    match i % 4 {
        0 => area.draw(&Circle::new(at, 7 + 3 * k, style)),
        1 => area.draw(&TriangleMarker::new(at, 7 + 3 * k, style)),
        2 => area.draw(
            &(EmptyElement::at(at) + Rectangle::new([(-4 - k, -4 - k), (4 + k, 4 + k)], style)),
        ),
        _ => area.draw(&Cross::new(at, 5 + 2 * k, col.stroke_width(2))),
    }
}

/// Grey shades for reference lines.
fn reference_color(k: usize) -> RGBColor {
    [RGBColor(60, 60, 60), RGBColor(140, 140, 140)][k % 2]
}

/// What one legend entry shows.
enum Key {
    Line(usize, RGBColor),
    Marker(usize, RGBColor),
    Bar(RGBColor),
    Dashed(RGBColor),
    Point(RGBColor),
    Plain(RGBColor),
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &Chart,
    (x, y): (Span, Span),
) -> Result<(), String> {
    let cats: &[String] = match &c.kind {
        ChartKind::GroupedBars { categories } => categories,
        _ => &[],
    };
    let bars = !cats.is_empty();
    let ticks = (!bars && !c.x_ticks.is_empty())
        .then(|| c.x_ticks.iter().map(|t| t.0).collect::<Vec<f64>>());
    let x = Axis::new(x, c.log_x, Some(cats.len()).filter(|&n| n > 0), ticks);
    let y = Axis::new(y, c.log_y, None, None);
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let (xr, yr) = (x.range(), y.range());

    // The legend's entries, then a panel right of the plot wide enough for the longest.
    let mut keys: Vec<(String, Key)> = Vec::new();
    for (i, s) in c.series.iter().enumerate() {
        let key = match &c.kind {
            ChartKind::Lines => Key::Line(i, color(i)),
            ChartKind::Scatter => Key::Marker(i, color(i)),
            ChartKind::GroupedBars { .. } => Key::Bar(color(i)),
        };
        keys.push((s.name.clone(), key));
    }
    if c.diagonal && !bars {
        keys.push(("y = x".into(), Key::Plain(RGBColor(128, 128, 128))));
    }
    if !bars {
        for (k, r) in c.references.iter().enumerate() {
            let point = r.x.is_some_and(|(a, b)| a == b);
            let col = reference_color(k);
            let key = if point {
                Key::Point(col)
            } else {
                Key::Dashed(col)
            };
            keys.push((r.label.clone(), key));
        }
    }
    let longest = keys.iter().map(|k| k.0.chars().count()).max().unwrap_or(0);
    let legend_w = (longest as u32 * 8 + 60).clamp(120, 340);
    let area = root
        .margin(12, 0, 0, 0)
        .titled(&c.title, ("sans-serif", 28))
        .map_err(e)?;
    let (w, _) = area.dim_in_pixel();
    let (plot, legend) = area.split_horizontally(w.saturating_sub(legend_w));

    let mut ctx = ChartBuilder::on(&plot)
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x, y)
        .map_err(e)?;
    let labels: &[(f64, String)] = if bars { &[] } else { &c.x_ticks };
    let xfmt = |v: &f64| {
        if bars {
            return cats.get(v.max(0.0) as usize).cloned().unwrap_or_default();
        }
        if let Some((_, l)) = labels.iter().find(|(t, _)| (t - v).abs() <= 1e-9 * t.abs()) {
            return l.clone();
        }
        if c.log_x {
            fmt_log(*v)
        } else {
            fmt_num(*v)
        }
    };
    let yfmt = |v: &f64| if c.log_y { fmt_log(*v) } else { fmt_num(*v) };
    let mut mesh = ctx.configure_mesh();
    mesh.x_desc(&c.x_label)
        .y_desc(&c.y_label)
        .x_label_formatter(&xfmt)
        .y_label_formatter(&yfmt)
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(235, 235, 235));
    if bars {
        mesh.disable_x_mesh();
    }
    mesh.draw().map_err(e)?;

    // Reference lines below the data.
    if !bars {
        for (k, r) in c.references.iter().enumerate() {
            let col = reference_color(k);
            let (a, b) = r.x.unwrap_or((xr.start, xr.end));
            let (a, b) = (a.max(xr.start), b.min(xr.end));
            if a == b {
                ctx.draw_series(std::iter::once(Cross::new(
                    (a, r.y),
                    7,
                    col.stroke_width(2),
                )))
                .map_err(e)?;
            } else if a < b {
                ctx.draw_series(DashedLineSeries::new(
                    [(a, r.y), (b, r.y)],
                    10,
                    6,
                    col.stroke_width(2),
                ))
                .map_err(e)?;
            }
        }
    }
    let (bw, base) = (
        0.8 / c.series.len() as f64,
        if c.log_y { yr.start } else { 0.0 },
    );
    for (i, s) in c.series.iter().enumerate() {
        let col = color(i);
        let pts = s.points.iter().copied();
        match &c.kind {
            ChartKind::Lines => {
                ctx.draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))
                    .map_err(e)?;
                for p in pts {
                    draw_marker(ctx.plotting_area(), i, p, col).map_err(e)?;
                }
            }
            ChartKind::Scatter => {
                for p in pts {
                    draw_marker(ctx.plotting_area(), i, p, col).map_err(e)?;
                }
            }
            ChartKind::GroupedBars { .. } => {
                ctx.draw_series(pts.enumerate().map(|(j, (_, v))| {
                    let left = j as f64 + 0.1 + i as f64 * bw;
                    Rectangle::new([(left, base), (left + bw, v)], col.filled())
                }))
                .map_err(e)?;
            }
        }
    }
    if c.diagonal && !bars {
        let (lo, hi) = (xr.start.max(yr.start), xr.end.min(yr.end));
        let at = |t: f64| {
            if c.log_x {
                lo * (hi / lo).powf(t)
            } else {
                lo + (hi - lo) * t
            }
        };
        let pts = (0..=200).map(|k| at(k as f64 / 200.0)).map(|v| (v, v));
        ctx.draw_series(LineSeries::new(pts, BLACK.mix(0.5)))
            .map_err(e)?;
    }

    // The legend panel: one row per entry, from the top of the plotting area.
    let font = ("sans-serif", 14).into_font().color(&BLACK);
    let (x0, mut y0) = (8i32, 30i32);
    let rows = keys.len() as i32;
    legend
        .draw(&Rectangle::new(
            [(x0 - 6, y0 - 14), (legend_w as i32 - 8, y0 + 22 * rows - 8)],
            BLACK.stroke_width(1),
        ))
        .map_err(e)?;
    for (label, key) in &keys {
        let mid = (x0 + 12, y0);
        match key {
            Key::Line(i, col) => {
                legend
                    .draw(&PathElement::new(
                        [(x0, y0), (x0 + 24, y0)],
                        col.stroke_width(2),
                    ))
                    .map_err(e)?;
                draw_marker(&legend, *i, mid, *col).map_err(e)?;
            }
            Key::Marker(i, col) => draw_marker(&legend, *i, mid, *col).map_err(e)?,
            Key::Bar(col) => legend
                .draw(&Rectangle::new(
                    [(x0, y0 - 6), (x0 + 24, y0 + 6)],
                    col.filled(),
                ))
                .map_err(e)?,
            Key::Plain(col) => legend
                .draw(&PathElement::new([(x0, y0), (x0 + 24, y0)], col))
                .map_err(e)?,
            Key::Point(col) => legend
                .draw(&Cross::new(mid, 7, col.stroke_width(2)))
                .map_err(e)?,
            Key::Dashed(col) => {
                for k in 0..2 {
                    let a = x0 + k * 14;
                    legend
                        .draw(&PathElement::new(
                            [(a, y0), (a + 9, y0)],
                            col.stroke_width(2),
                        ))
                        .map_err(e)?;
                }
            }
        }
        legend
            .draw(&Text::new(
                label.clone(),
                (x0 + 32, y0),
                font.pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(e)?;
        y0 += 22;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cascade-plot-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn chart(kind: ChartKind, log: bool, series: Vec<Series>) -> Chart {
        let (title, x_label, y_label) = ("Test & title".into(), "x axis".into(), "y axis".into());
        Chart {
            title,
            x_label,
            y_label,
            log_x: log,
            log_y: log,
            series,
            kind,
            ..Chart::default()
        }
    }

    /// Renders twice, checks the files, the SVG `<text>` labels and byte-identical output.
    fn check(c: &Chart, name: &str, labels: &[&str]) {
        let d = tmp(name);
        let (p1, s1, p2, s2) = (
            d.join("a.png"),
            d.join("a.svg"),
            d.join("b.png"),
            d.join("sub/b.svg"),
        );
        render(c, &p1, &s1).unwrap();
        render(c, &p2, &s2).unwrap();
        let (png, svg) = (
            std::fs::read(&p1).unwrap(),
            std::fs::read_to_string(&s1).unwrap(),
        );
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(png, std::fs::read(&p2).unwrap(), "PNG not deterministic");
        assert_eq!(
            svg,
            std::fs::read_to_string(&s2).unwrap(),
            "SVG not deterministic"
        );
        for l in ["Test &amp; title", "x axis", "y axis"]
            .iter()
            .chain(labels)
        {
            assert!(
                svg.contains(&format!(">\n{l}\n</text>")),
                "SVG lacks <text> {l}"
            );
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn lines_chart() {
        let line = |k: usize| (0..20).map(|i| (i as f64, (i * k) as f64 - 5.0)).collect();
        let s = (1..4)
            .map(|k| Series::new(format!("s{k}"), line(k)))
            .collect();
        check(
            &chart(ChartKind::Lines, false, s),
            "lines",
            &["s1", "s2", "s3"],
        );
    }

    #[test]
    fn log_log_scatter_with_diagonal() {
        let pts = |f: f64| {
            (1..40)
                .map(|i| (1e3 * i as f64, 1e3 * i as f64 * f))
                .collect()
        };
        let s = vec![
            Series::new("measured", pts(1.3)),
            Series::new("other", pts(0.7)),
        ];
        let c = scatter_with_diagonal("Test & title", "x axis", "y axis", s);
        check(&c, "scatter", &["measured", "other", "y = x"]);
    }

    #[test]
    fn grouped_bars() {
        let categories = ["gemm", "attn", "ffn", "norm"].map(String::from).to_vec();
        let vals = |v: [f64; 4]| v.iter().map(|&y| (0.0, y)).collect();
        let s = vec![
            Series::new("model", vals([3.0, 5.0, 2.0, 0.5])),
            Series::new("hw", vals([2.5, 6.0, 1.0, 0.7])),
        ];
        let mut c = chart(ChartKind::GroupedBars { categories }, false, s);
        check(&c, "bars", &["model", "hw", "gemm", "norm"]);
        c.log_y = true;
        check(&c, "bars-log", &["model", "hw", "attn"]);
    }

    #[test]
    fn errors() {
        let d = tmp("errors");
        let (png, svg) = (d.join("e.png"), d.join("e.svg"));
        let err = |c: &Chart| {
            let e = render(c, &png, &svg).unwrap_err();
            assert!(
                matches!(e, PlotError::InvalidData { .. }) && e.to_string().contains("e.png"),
                "{e}"
            );
            e.to_string()
        };
        let one = |p: &[(f64, f64)]| vec![Series::new("s", p.to_vec())];
        let bars = |c: &[&str]| ChartKind::GroupedBars {
            categories: c.iter().map(|s| s.to_string()).collect(),
        };
        assert!(err(&chart(ChartKind::Lines, false, vec![])).contains("no series"));
        assert!(err(&chart(ChartKind::Lines, false, one(&[]))).contains("'s' is empty"));
        assert!(
            err(&chart(ChartKind::Scatter, false, one(&[(1.0, f64::NAN)]))).contains("non-finite")
        );
        assert!(err(&chart(
            ChartKind::Lines,
            false,
            one(&[(f64::INFINITY, 1.0)])
        ))
        .contains("non-finite"));
        assert!(err(&chart(ChartKind::Scatter, true, one(&[(1.0, 0.0)]))).contains("log axis"));
        assert!(err(&chart(ChartKind::Scatter, true, one(&[(-1.0, 2.0)]))).contains("log axis"));
        assert!(err(&chart(bars(&[]), false, one(&[(0.0, 1.0)]))).contains("category"));
        assert!(err(&chart(bars(&["a", "b"]), false, one(&[(0.0, 1.0)]))).contains("2 categories"));
        assert!(err(&chart(bars(&["a"]), true, one(&[(0.0, -1.0)]))).contains("log axis"));
        assert!(!png.exists() && !svg.exists());
        // I/O failures name the path too.
        let ok = chart(ChartKind::Lines, false, one(&[(0.0, 1.0), (1.0, 2.0)]));
        std::fs::write(d.join("file"), "x").unwrap();
        let e = render(&ok, &png, &d.join("file/x.svg")).unwrap_err();
        assert!(
            matches!(e, PlotError::Io { .. }) && e.to_string().contains("x.svg"),
            "{e}"
        );
        // A single point (degenerate ranges) still renders, linear and log.
        render(
            &chart(ChartKind::Scatter, true, one(&[(5.0, 5.0)])),
            &png,
            &svg,
        )
        .unwrap();
        render(
            &chart(ChartKind::Lines, false, one(&[(0.0, 0.0)])),
            &png,
            &svg,
        )
        .unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// The x positions of the SVG `<text>` elements reading `label`.
    fn text_x(svg: &str, label: &str) -> Vec<f64> {
        let needle = format!(">\n{label}\n</text>");
        svg.match_indices(&needle)
            .map(|(i, _)| {
                let open = svg[..i].rfind("<text x=\"").unwrap() + 9;
                let end = open + svg[open..].find('"').unwrap();
                svg[open..end].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn lines_have_markers_references_labelled_ticks_and_a_legend_outside_the_data() {
        let seqs = [1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0];
        let s = vec![
            Series::new("first", seqs.iter().map(|&x| (x, 7.0)).collect()),
            // Coincides with the first: both stay visible (different hollow shapes).
            Series::new("second", seqs.iter().map(|&x| (x, 7.0)).collect()),
            Series::new("third", seqs.iter().map(|&x| (x, 3.5)).collect()),
        ];
        let mut c = chart(ChartKind::Lines, false, s);
        c.log_x = true;
        c.x_ticks = seq_ticks(&seqs);
        c.references = vec![
            Reference::new("paper: mean 6.72", 6.72),
            Reference::new("paper: 0.89 at 1K", 0.89).over(1024.0, 1024.0),
        ];
        check(
            &c,
            "lines-refs",
            &["first", "third", "paper: mean 6.72", "1K", "16K", "1M"],
        );
        let d = tmp("lines-refs-svg");
        render(&c, &d.join("c.png"), &d.join("c.svg")).unwrap();
        let svg = std::fs::read_to_string(d.join("c.svg")).unwrap();
        // A marker per point: circles for the first series (and its legend key).
        assert!(svg.matches("<circle").count() > seqs.len(), "{svg}");
        // A dashed reference: many short segments at one y.
        assert!(svg.matches("<polyline").count() > 10);
        // The y range reaches down to the 0.89 reference, below the data (3.5 to 7).
        assert!(!text_x(&svg, "1").is_empty(), "{svg}");
        // The legend panel (keys 20 px, labels 40 px right of its edge) lies right of every
        // data marker: the only circle that far right is the first series' legend key.
        let legend = text_x(&svg, "first")[0];
        let cx: Vec<f64> = svg
            .match_indices("<circle cx=\"")
            .map(|(i, _)| {
                let a = i + 12;
                svg[a..a + svg[a..].find('"').unwrap()].parse().unwrap()
            })
            .collect();
        assert_eq!(
            cx.iter().filter(|&&x| x >= legend - 40.0).count(),
            1,
            "{cx:?}"
        );
        for l in ["second", "third", "paper: mean 6.72", "paper: 0.89 at 1K"] {
            assert_eq!(text_x(&svg, l), [legend], "{l}");
        }
        // Tick labels do not overlap: 6 labels at increasing x, ≥ 40 px apart.
        let xs: Vec<f64> = ["1K", "4K", "16K", "64K", "256K", "1M"]
            .iter()
            .map(|l| text_x(&svg, l)[0])
            .collect();
        assert!(xs.windows(2).all(|w| w[1] - w[0] >= 40.0), "{xs:?}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_references_and_ticks_are_refused() {
        let d = tmp("bad-refs");
        let one = vec![Series::new("s", vec![(1.0, 1.0), (2.0, 2.0)])];
        let mut c = chart(ChartKind::Lines, true, one);
        c.references = vec![Reference::new("r", f64::NAN)];
        let e = render(&c, &d.join("a.png"), &d.join("a.svg")).unwrap_err();
        assert!(e.to_string().contains("reference 'r'"), "{e}");
        c.references = vec![Reference::new("r", 0.0)];
        assert!(render(&c, &d.join("a.png"), &d.join("a.svg")).is_err());
        c.references = vec![Reference::new("r", 1.0).over(3.0, 2.0)];
        assert!(render(&c, &d.join("a.png"), &d.join("a.svg")).is_err());
        c.references = vec![];
        c.x_ticks = vec![(0.0, "zero".into())];
        let e = render(&c, &d.join("a.png"), &d.join("a.svg")).unwrap_err();
        assert!(e.to_string().contains("x tick 'zero'"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn tick_labels() {
        let t: Vec<String> = seq_ticks(&[512.0, 1024.0, 16384.0, 1048576.0, 3.0 * 1048576.0])
            .into_iter()
            .map(|t| t.1)
            .collect();
        assert_eq!(t, ["512", "1K", "16K", "1M", "3M"]);
        let l: Vec<String> = [1.0, 10.0, 1000.0, 1e4, 1e5, 1e6, 1e9, 1e12, 0.01, 2.0]
            .map(fmt_log)
            .to_vec();
        assert_eq!(
            l,
            ["1", "10", "1000", "10k", "100k", "1M", "1G", "1e12", "0.01", "2"]
        );
    }

    #[test]
    fn number_format() {
        let got: Vec<String> = [0.0, 2.5, 1000.0, 0.125, 1e6, 2.5e-5, -3.0]
            .map(fmt_num)
            .to_vec();
        assert_eq!(got, ["0", "2.5", "1000", "0.125", "1e6", "2.5e-5", "-3"]);
    }
}
