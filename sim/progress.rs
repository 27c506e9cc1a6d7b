//! Progress of long commands (`reproduce`, `regress`, `parity`, `map`), always on stderr so
//! that stdout stays the report.
//!
//! On a terminal: an `indicatif` bar with the elapsed time and an ETA. When stderr is not a
//! terminal (CI logs, `2> file`): plain lines such as
//! `reproduce fusemax: 12/40 points, 3.1 s elapsed, ETA 7.0 s`, at most one per 10% of the work
//! (and at least every 10 s while steps finish), nothing for runs shorter than 2 s, and a closing
//! line if any was printed. `CASCADE_PROGRESS` overrides the choice: `bar`, `lines` (every line,
//! no quiet start: for logs and tests), `off`.
//!
//! ```no_run
//! use cascade::progress::Progress;
//! use rayon::prelude::*;
//! let p = Progress::new("map llama3_8b", 40).unit("points");
//! (0..40).into_par_iter().for_each(|_| {
//!     let _step = p.step(); // counts the step when dropped, even on an early return
//! });
//! p.finish();
//! ```

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A thread-safe progress reporter (share it by reference across rayon workers).
pub struct Progress {
    label: String,
    unit: &'static str,
    total: u64,
    start: Instant,
    mode: Mode,
}

enum Mode {
    Off,
    Bar(indicatif::ProgressBar),
    Lines(Mutex<Lines>),
}

/// How plain lines are paced.
#[derive(Clone, Copy, Debug)]
struct Pace {
    /// No line before this much time has passed (short runs stay quiet).
    quiet: Duration,
    /// At most one line per this fraction of the work …
    every_fraction: f64,
    /// … and at least one per this interval while steps finish.
    every: Duration,
    /// A closing line even when nothing was printed before.
    always_close: bool,
}

const AUTO: Pace = Pace {
    quiet: Duration::from_secs(2),
    every_fraction: 0.1,
    every: Duration::from_secs(10),
    always_close: false,
};

const EVERY: Pace = Pace {
    quiet: Duration::ZERO,
    every_fraction: 0.0,
    every: Duration::ZERO,
    always_close: true,
};

struct Lines {
    done: u64,
    /// Work done at the last printed line.
    printed_at: u64,
    last: Option<Instant>,
    pace: Pace,
    out: Box<dyn Write + Send>,
}

impl Progress {
    /// Progress over `total` steps, shown as `label: done/total steps …` (see [`Progress::unit`]).
    pub fn new(label: impl Into<String>, total: u64) -> Progress {
        let mode = match std::env::var("CASCADE_PROGRESS").as_deref() {
            Ok("off") | Ok("0") | Ok("never") => Mode::Off,
            Ok("lines") => Mode::lines(EVERY, Box::new(std::io::stderr())),
            Ok("bar") => Mode::bar(total),
            _ if std::io::stderr().is_terminal() => Mode::bar(total),
            _ => Mode::lines(AUTO, Box::new(std::io::stderr())),
        };
        Progress::with_mode(label.into(), total, mode)
    }

    /// Plain lines for every step into `out` (tests).
    pub fn lines_to(label: impl Into<String>, total: u64, out: Box<dyn Write + Send>) -> Progress {
        Progress::with_mode(label.into(), total, Mode::lines(EVERY, out))
    }

    /// No output at all.
    pub fn hidden(total: u64) -> Progress {
        Progress::with_mode(String::new(), total, Mode::Off)
    }

    fn with_mode(label: String, total: u64, mode: Mode) -> Progress {
        let p = Progress {
            label,
            unit: "steps",
            total,
            start: Instant::now(),
            mode,
        };
        if let Mode::Bar(b) = &p.mode {
            b.set_prefix(p.label.clone());
        }
        p
    }

    /// What a step is called (`points`, `cases`, `cascades`); default `steps`.
    pub fn unit(mut self, unit: &'static str) -> Progress {
        self.unit = unit;
        if let Mode::Bar(b) = &self.mode {
            b.set_message(unit);
        }
        self
    }

    /// `n` more steps done.
    pub fn inc(&self, n: u64) {
        match &self.mode {
            Mode::Off => {}
            Mode::Bar(b) => b.inc(n),
            Mode::Lines(m) => {
                let mut l = m.lock().unwrap_or_else(|e| e.into_inner());
                l.done += n;
                let now = Instant::now();
                let elapsed = now - self.start;
                let since = now - l.last.unwrap_or(self.start);
                let step = (l.pace.every_fraction * self.total as f64).ceil() as u64;
                let advanced = l.done >= l.printed_at + step.max(1);
                if elapsed >= l.pace.quiet
                    && l.done < self.total
                    && (advanced || since >= l.pace.every)
                {
                    let eta = elapsed.as_secs_f64() / l.done as f64 * (self.total - l.done) as f64;
                    let line = format!(
                        "{}: {}/{} {}, {} elapsed, ETA {}",
                        self.label,
                        l.done,
                        self.total,
                        self.unit,
                        duration(elapsed.as_secs_f64()),
                        duration(eta)
                    );
                    l.say(&line);
                    l.printed_at = l.done;
                    l.last = Some(now);
                }
            }
        }
    }

    /// One step, counted when the guard is dropped (however the step ends).
    pub fn step(&self) -> Step<'_> {
        Step(self)
    }

    /// The work is over: clear the bar, or print the closing line.
    pub fn finish(&self) {
        match &self.mode {
            Mode::Off => {}
            Mode::Bar(b) => b.finish_and_clear(),
            Mode::Lines(m) => {
                let mut l = m.lock().unwrap_or_else(|e| e.into_inner());
                let elapsed = self.start.elapsed();
                if l.last.is_some() || l.pace.always_close || elapsed >= l.pace.quiet {
                    let line = format!(
                        "{}: {}/{} {} in {}",
                        self.label,
                        l.done,
                        self.total,
                        self.unit,
                        duration(elapsed.as_secs_f64())
                    );
                    l.say(&line);
                    l.last = Some(Instant::now());
                }
            }
        }
    }
}

impl Mode {
    fn bar(total: u64) -> Mode {
        let b = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{prefix}: {wide_bar} {pos}/{len} {msg} ({elapsed}, ETA {eta})",
        ) {
            b.set_style(style);
        }
        Mode::Bar(b)
    }

    fn lines(pace: Pace, out: Box<dyn Write + Send>) -> Mode {
        Mode::Lines(Mutex::new(Lines {
            done: 0,
            printed_at: 0,
            last: None,
            pace,
            out,
        }))
    }
}

impl Lines {
    /// Write one line; a failed write (closed stderr) is not worth failing the command for.
    fn say(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }
}

/// Counts one step of a [`Progress`] when dropped.
pub struct Step<'a>(&'a Progress);

impl Drop for Step<'_> {
    fn drop(&mut self) {
        self.0.inc(1);
    }
}

/// `3.1 s`, `2 min 05 s`, `1 h 02 min`.
fn duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "?".into();
    }
    if s < 60.0 {
        return format!("{s:.1} s");
    }
    let t = s.round() as u64;
    if t < 3600 {
        format!("{} min {:02} s", t / 60, t % 60)
    } else {
        format!("{} h {:02} min", t / 3600, t % 3600 / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A shared buffer to read back what a `Progress` wrote.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn lines_count_every_step_across_threads_and_close() {
        use rayon::prelude::*;
        let buf = Buf::default();
        let p = Progress::lines_to("job", 40, Box::new(buf.clone())).unit("points");
        (0..40).into_par_iter().for_each(|_| {
            let _s = p.step();
        });
        p.finish();
        let text = buf.text();
        let lines: Vec<&str> = text.lines().collect();
        // One line per step but the last, then the closing line.
        assert_eq!(lines.len(), 40, "{text}");
        assert!(lines[0].starts_with("job: 1/40 points, "), "{text}");
        assert!(lines[0].contains(" elapsed, ETA "), "{text}");
        assert!(lines[38].starts_with("job: 39/40 points"), "{text}");
        assert!(lines[39].starts_with("job: 40/40 points in "), "{text}");
    }

    #[test]
    fn auto_pace_is_quiet_for_short_runs() {
        let buf = Buf::default();
        let p = Progress::with_mode("quick".into(), 10, Mode::lines(AUTO, Box::new(buf.clone())));
        for _ in 0..10 {
            p.inc(1);
        }
        p.finish();
        assert_eq!(buf.text(), "");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(3.06), "3.1 s");
        assert_eq!(duration(125.0), "2 min 05 s");
        assert_eq!(duration(3720.0), "1 h 02 min");
        assert_eq!(duration(f64::INFINITY), "?");
    }
}
