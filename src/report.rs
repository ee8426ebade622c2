//! How a run shows itself on the terminal: stage output streamed with a
//! `stage |` prefix, a progress bar when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mlcycle_pipeline::exec::Reporter;
use mlcycle_pipeline::fingerprint::StaleReason;
use mlcycle_pipeline::summary::{Outcome, StageResult};

pub struct TermReporter {
    quiet: bool,
    verbose: bool,
    bar: Option<ProgressBar>,
    lock: Mutex<()>,
    running: Mutex<Vec<String>>,
}

impl TermReporter {
    pub fn new(quiet: bool, verbose: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b.set_style(
                ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {wide_msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b
        });
        Self {
            quiet,
            verbose,
            bar,
            lock: Mutex::new(()),
            running: Mutex::new(Vec::new()),
        }
    }

    fn say(&self, line: &str) {
        match &self.bar {
            Some(b) => b.println(line),
            None => {
                let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }
}

impl Reporter for TermReporter {
    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
    fn waiting(&self, holder: &str) {
        self.say(&format!(
            "Waiting for another mlcycle process to finish with this workspace{holder}…"
        ));
    }
    fn begin(&self, total: usize) {
        if let Some(b) = &self.bar {
            b.set_length(total as u64);
        }
    }

    fn started(&self, stage: &str, reasons: &[StaleReason]) {
        if self.quiet {
            return;
        }
        if let Some(b) = &self.bar {
            let mut r = self.running.lock().unwrap_or_else(|e| e.into_inner());
            r.push(stage.to_string());
            b.set_message(format!("running {}", r.join(", ")));
        }
        if self.verbose {
            let why: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
            self.say(&format!("▶ {stage}: {}", why.join("; ")));
        }
    }

    fn line(&self, stage: &str, line: &str, _stderr: bool) {
        if !self.quiet {
            self.say(&format!("{stage} | {line}"));
        }
    }

    fn finished(&self, r: &StageResult) {
        if let Some(b) = &self.bar {
            b.inc(1);
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = running.iter().position(|s| *s == r.stage) {
                running.remove(i);
                b.set_message(if running.is_empty() {
                    String::new()
                } else {
                    format!("running {}", running.join(", "))
                });
            }
        }
        if self.verbose && !self.quiet {
            match &r.outcome {
                Outcome::Fresh => self.say(&format!("✓ {}: fresh", r.stage)),
                Outcome::Restored => {
                    self.say(&format!("✓ {}: restored from the run-cache", r.stage))
                }
                _ => {}
            }
        }
    }
}
