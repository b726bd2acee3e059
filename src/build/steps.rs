//! Step headers for the recipe: each stage's name when it starts and its
//! elapsed time when it ends, on stderr through the log (plain lines, so CI
//! logs read the same as a terminal; the fetch stage draws its own progress
//! bar on a terminal), an interrupt check between stages, and the times
//! kept for `craton build --json`.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use crate::signal;

/// How long one stage took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepTime {
    pub stage: &'static str,
    pub seconds: f64,
}

/// The stages run so far.
#[derive(Debug)]
pub struct Steps {
    start: Instant,
    done: Vec<StepTime>,
}

impl Default for Steps {
    fn default() -> Self {
        Self::new()
    }
}

impl Steps {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            done: Vec::new(),
        }
    }

    /// Runs one stage between its two header lines. An interrupt that came
    /// during the previous stage stops the build here.
    pub fn run<T>(&mut self, stage: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        signal::check()?;
        tracing::info!("‣ {stage}");
        let t = Instant::now();
        let out = f()?;
        let seconds = t.elapsed().as_secs_f64();
        tracing::info!(
            "‣ {stage} done in {seconds:.1}s ({:.1}s in all)",
            self.start.elapsed().as_secs_f64()
        );
        self.done.push(StepTime { stage, seconds });
        Ok(out)
    }

    /// The times of every stage that ran, in order.
    pub fn finish(self) -> Vec<StepTime> {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_stage_in_order_and_stops_on_error() {
        let mut steps = Steps::new();
        assert_eq!(steps.run("one", || Ok(1)).unwrap(), 1);
        assert!(
            steps
                .run("two", || -> Result<()> { anyhow::bail!("no") })
                .is_err()
        );
        steps.run("three", || Ok(())).unwrap();
        let names: Vec<&str> = steps.finish().iter().map(|s| s.stage).collect();
        assert_eq!(names, ["one", "three"]);
    }
}
