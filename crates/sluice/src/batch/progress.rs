//! Progress on stderr: an indicatif bar on a terminal, one plain line per file otherwise (logs, CI, pipes).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::{FileReport, Outcome};

/// Shows how far a batch has got. Shared by reference between worker threads or tasks.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    done: Mutex<usize>,
}

impl Progress {
    /// Progress over `total` files; a bar when stderr is a terminal.
    pub fn new(total: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            let style = ProgressStyle::with_template("{elapsed_precise} [{bar:32}] {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self { bar, total, done: Mutex::new(0) }
    }

    /// Says what is happening without advancing (e.g. a job's state while it runs).
    pub fn note(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_owned());
        }
    }

    /// Records one finished file.
    pub fn finished(&self, report: &FileReport) {
        let mut done = self.done.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *done += 1;
        let path = super::report::display_path(&report.path);
        let detail = match (&report.problem, report.outcome) {
            (Some(problem), Outcome::Rejected | Outcome::Failed | Outcome::Skipped) => {
                format!(" ({}: {})", problem.code, problem.message)
            }
            _ if !report.outputs.is_empty() => format!(" ({} outputs)", report.outputs.len()),
            _ => String::new(),
        };
        let line = format!("{:<9} {path}{detail}", report.outcome.as_str());
        match &self.bar {
            Some(bar) => {
                if matches!(report.outcome, Outcome::Rejected | Outcome::Failed) {
                    bar.println(&line);
                }
                bar.set_message(path);
                bar.inc(1);
            }
            None => {
                let width = self.total.to_string().len();
                let mut stderr = std::io::stderr().lock();
                let _ = writeln!(stderr, "[{:>width$}/{}] {line}", *done, self.total);
            }
        }
    }

    /// Removes the bar (before the summary is printed).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
