//! Progress of a fetch: one indicatif bar (bytes, files done of total, rate,
//! ETA) on a terminal, nothing per file otherwise; the start and end lines are
//! logged by the caller in both cases, so CI logs stay short.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How to show progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Progress {
    /// A bar when stderr is a terminal and `CI` is not set, else plain lines.
    #[default]
    Auto,
    Bar,
    Plain,
}

/// Environment variable that CI systems (GitHub Actions, GitLab, ...) set;
/// a bar redrawn into a CI log is noise.
const CI_ENV: &str = "CI";
/// Redraws per second; more is wasted work over a slow terminal.
const REFRESH_HZ: u8 = 8;
const BAR_TEMPLATE: &str = "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} \
     {msg} {binary_bytes_per_sec} ETA {eta}";

impl Progress {
    fn wants_bar(self) -> bool {
        match self {
            Self::Auto => std::io::stderr().is_terminal() && std::env::var_os(CI_ENV).is_none(),
            Self::Bar => true,
            Self::Plain => false,
        }
    }
}

/// The shared meter that download threads report to.
pub(super) struct Meter {
    bar: Option<ProgressBar>,
    files: usize,
    done: AtomicUsize,
}

impl Meter {
    pub(super) fn new(mode: Progress, files: usize, bytes: u64) -> Self {
        let bar = (mode.wants_bar() && files > 0).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(bytes),
                ProgressDrawTarget::stderr_with_hz(REFRESH_HZ),
            );
            if let Ok(style) = ProgressStyle::with_template(BAR_TEMPLATE) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(1000 / u64::from(REFRESH_HZ)));
            bar
        });
        let meter = Self {
            bar,
            files,
            done: AtomicUsize::new(0),
        };
        meter.set_files(0);
        meter
    }

    pub(super) fn add_bytes(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
            // Items of unknown size (artifacts) are not in the total.
            if bar.position() > bar.length().unwrap_or(0) {
                bar.set_length(bar.position());
            }
        }
    }

    /// Takes back the bytes of a failed try before it is retried.
    pub(super) fn take_back(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.dec(n);
        }
    }

    pub(super) fn file_done(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.set_files(done);
    }

    fn set_files(&self, done: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{done}/{} files", self.files));
        }
    }

    /// Runs `f` (which logs) with the bar hidden, so lines do not tear it.
    pub(super) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
