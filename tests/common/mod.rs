//! What the end-to-end tests share: run the `cascade` binary, read its output, write inputs.
#![allow(dead_code)] // each test crate uses its own subset

use std::process::{Command, Output};

/// Runs `cascade ARGS` in the repository root.
pub fn cascade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .output()
        .expect("run cascade")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `text` to `name` in this test process's own temporary folder for `suite`; returns
/// its path.
pub fn tmp_in(suite: &str, name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("cascade-{suite}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// The memory reports' two plots, `reports/memory/<stem>_bandwidth.{png,svg}` (grouped bars:
/// one series per preset over the patterns) and `<stem>_latency_cdf.{png,svg}` (one CDF line
/// per preset, log x).
pub struct PresetPlots {
    pub stem: &'static str,
    pub what: &'static str,
    pub bandwidth_label: &'static str,
    pub patterns: Vec<String>,
    pub bars: Vec<cascade::plot::Series>,
    pub cdf_title: &'static str,
    pub cdf_x_label: &'static str,
    pub cdfs: Vec<cascade::plot::Series>,
}

impl PresetPlots {
    pub fn draw(self) {
        use cascade::plot::{render, Chart, ChartKind};
        let dir = std::path::Path::new("reports/memory");
        let file = |kind: &str, ext: &str| dir.join(format!("{}_{kind}.{ext}", self.stem));
        let bw = Chart {
            title: format!("{} presets: bandwidth by access pattern", self.what),
            x_label: "pattern".into(),
            y_label: self.bandwidth_label.into(),
            series: self.bars,
            kind: ChartKind::GroupedBars {
                categories: self.patterns,
            },
            ..Chart::default()
        };
        render(&bw, &file("bandwidth", "png"), &file("bandwidth", "svg")).unwrap();
        let cdf = Chart {
            title: format!("{} presets: {}", self.what, self.cdf_title),
            x_label: self.cdf_x_label.into(),
            y_label: "fraction".into(),
            log_x: true,
            series: self.cdfs,
            kind: ChartKind::Lines,
            ..Chart::default()
        };
        render(
            &cdf,
            &file("latency_cdf", "png"),
            &file("latency_cdf", "svg"),
        )
        .unwrap();
    }
}
