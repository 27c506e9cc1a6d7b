//! Plots with an embedded font.
//!
//! Report plots on top of `plotters`: lines, scatter (optionally with the `y = x`
//! diagonal for measured-vs-modeled plots) and grouped bars, each written as PNG
//! and SVG. DejaVu Sans is compiled in and registered as `"sans-serif"`, so no
//! system font is looked up; output is byte-identical for identical input.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use plotters::coord::combinators::{IntoLogRange, LogCoord};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::{types::RangedCoordf64, Shift};
use plotters::prelude::*;
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

/// One axis: linear, logarithmic, or categories `0..n` with ticks at centres `j + 0.5`.
enum Axis {
    Lin(RangedCoordf64),
    Log(LogCoord<f64>),
    Cat(RangedCoordf64, usize),
}

impl Axis {
    fn new((lo, hi): Span, log: bool, cats: Option<usize>) -> Self {
        match (cats, log) {
            (Some(n), _) => Axis::Cat((lo..hi).into(), n),
            (None, true) => Axis::Log((lo..hi).log_scale().into()),
            (None, false) => Axis::Lin((lo..hi).into()),
        }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        match self {
            Axis::Lin(a) | Axis::Cat(a, _) => a.map(v, limit),
            Axis::Log(a) => a.map(v, limit),
        }
    }
    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        match self {
            Axis::Lin(a) => a.key_points(hint),
            Axis::Log(a) => a.key_points(hint),
            Axis::Cat(_, n) => (0..*n).map(|j| j as f64 + 0.5).collect(),
        }
    }
    fn range(&self) -> std::ops::Range<f64> {
        match self {
            Axis::Lin(a) | Axis::Cat(a, _) => a.range(),
            Axis::Log(a) => a.range(),
        }
    }
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
    let x = Axis::new(x, c.log_x, Some(cats.len()).filter(|&n| n > 0));
    let y = Axis::new(y, c.log_y, None);
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let (xr, yr) = (x.range(), y.range());
    let mut ctx = ChartBuilder::on(root)
        .caption(&c.title, ("sans-serif", 28))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x, y)
        .map_err(e)?;
    let xfmt = |v: &f64| match cats.is_empty() {
        true => fmt_num(*v),
        false => cats.get(v.max(0.0) as usize).cloned().unwrap_or_default(),
    };
    let mut mesh = ctx.configure_mesh();
    mesh.x_desc(&c.x_label)
        .y_desc(&c.y_label)
        .x_label_formatter(&xfmt)
        .y_label_formatter(&|v| fmt_num(*v))
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(235, 235, 235));
    if !cats.is_empty() {
        mesh.disable_x_mesh();
    }
    mesh.draw().map_err(e)?;

    let (w, base) = (
        0.8 / c.series.len() as f64,
        if c.log_y { yr.start } else { 0.0 },
    );
    for (i, s) in c.series.iter().enumerate() {
        let col = color(i);
        let pts = s.points.iter().copied();
        let anno = match &c.kind {
            ChartKind::Lines => ctx.draw_series(LineSeries::new(pts, col.stroke_width(2))),
            ChartKind::Scatter => ctx.draw_series(pts.map(|p| Circle::new(p, 4, col.filled()))),
            ChartKind::GroupedBars { .. } => ctx.draw_series(pts.enumerate().map(|(j, (_, v))| {
                let left = j as f64 + 0.1 + i as f64 * w;
                Rectangle::new([(left, base), (left + w, v)], col.filled())
            })),
        }
        .map_err(e)?;
        let mark = match &c.kind {
            ChartKind::Lines => 0,
            ChartKind::Scatter => 1,
            ChartKind::GroupedBars { .. } => 2,
        };
        anno.label(s.name.as_str()).legend(
            move |(px, py)| -> DynElement<'static, DB, (i32, i32)> {
                match mark {
                    0 => {
                        PathElement::new([(px, py), (px + 20, py)], col.stroke_width(2)).into_dyn()
                    }
                    1 => Circle::new((px + 10, py), 4, col.filled()).into_dyn(),
                    _ => Rectangle::new([(px, py - 6), (px + 20, py + 6)], col.filled()).into_dyn(),
                }
            },
        );
    }
    if c.diagonal && cats.is_empty() {
        let (lo, hi) = (xr.start.max(yr.start), xr.end.min(yr.end));
        let at = |t: f64| {
            if c.log_x {
                lo * (hi / lo).powf(t)
            } else {
                lo + (hi - lo) * t
            }
        };
        let pts = (0..=200).map(|k| at(k as f64 / 200.0)).map(|v| (v, v));
        let grey = BLACK.mix(0.5);
        ctx.draw_series(LineSeries::new(pts, grey))
            .map_err(e)?
            .label("y = x")
            .legend(move |(px, py)| PathElement::new([(px, py), (px + 20, py)], grey));
    }
    ctx.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(e)?;
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
            diagonal: false,
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

    #[test]
    fn number_format() {
        let got: Vec<String> = [0.0, 2.5, 1000.0, 0.125, 1e6, 2.5e-5, -3.0]
            .map(fmt_num)
            .to_vec();
        assert_eq!(got, ["0", "2.5", "1000", "0.125", "1e6", "2.5e-5", "-3"]);
    }
}
