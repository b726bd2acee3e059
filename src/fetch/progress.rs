//! Progress of a fetch: one indicatif bar (bytes, files done of total, rate,
//! ETA) on a terminal; otherwise nothing per file, only a line every
//! [`PLAIN_INTERVAL`] so a long fetch in CI does not look hung. The start and
//! end lines are logged by the caller in both cases.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
/// How often plain mode says how far it got: rare enough for a CI log, often
/// enough that a slow mirror is visible before a CI timeout.
const PLAIN_INTERVAL: Duration = Duration::from_secs(30);
/// Bytes in a MiB, for the plain progress line.
const MIB: f64 = 1024.0 * 1024.0;
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
    /// Plain mode: bytes so far (net of taken-back tries), the expected
    /// total, and when the last line was logged.
    bytes: AtomicU64,
    total_bytes: u64,
    last_line: Mutex<Instant>,
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
            bytes: AtomicU64::new(0),
            total_bytes: bytes,
            last_line: Mutex::new(Instant::now()),
        };
        meter.set_files(0);
        meter
    }

    pub(super) fn add_bytes(&self, n: u64) {
        match &self.bar {
            Some(bar) => {
                bar.inc(n);
                // Items of unknown size (artifacts) are not in the total.
                if bar.position() > bar.length().unwrap_or(0) {
                    bar.set_length(bar.position());
                }
            }
            None => {
                let bytes = self.bytes.fetch_add(n, Ordering::Relaxed) + n;
                self.maybe_log(bytes);
            }
        }
    }

    /// Takes back the bytes of a failed try before it is retried.
    pub(super) fn take_back(&self, n: u64) {
        match &self.bar {
            Some(bar) => bar.dec(n),
            None => {
                self.bytes.fetch_sub(n, Ordering::Relaxed);
            }
        }
    }

    /// Plain mode: one line when [`PLAIN_INTERVAL`] has passed since the last.
    fn maybe_log(&self, bytes: u64) {
        // Another thread holding the lock is about to log: skip, no waiting.
        let Ok(mut last) = self.last_line.try_lock() else {
            return;
        };
        if last.elapsed() < PLAIN_INTERVAL {
            return;
        }
        *last = Instant::now();
        tracing::info!(
            "fetched {} of {} files, {:.1} of {:.1} MiB",
            self.done.load(Ordering::Relaxed),
            self.files,
            bytes as f64 / MIB,
            self.total_bytes as f64 / MIB
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_meter_counts_bytes_net_of_failed_tries() {
        let meter = Meter::new(Progress::Plain, 2, 100);
        assert!(meter.bar.is_none());
        meter.add_bytes(60);
        meter.take_back(60);
        meter.add_bytes(100);
        meter.file_done();
        assert_eq!(meter.bytes.load(Ordering::Relaxed), 100);
        assert_eq!(meter.done.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn bar_template_is_valid() {
        assert!(ProgressStyle::with_template(BAR_TEMPLATE).is_ok());
    }
}
