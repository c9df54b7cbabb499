//! What a run shows while it works: one progress bar per running stage (on a terminal), lasting
//! lines above them, and the begin/end event log (JSON lines) that tests and post-mortems read.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cairn_stages::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress bars of a run; hidden when not on a terminal (then lines go to stderr).
pub struct Bars(MultiProgress);

impl Bars {
    pub fn new(visible: bool) -> Bars {
        Bars(MultiProgress::with_draw_target(if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        }))
    }

    /// A new bar for a stage that starts, labelled with its id.
    pub fn stage_bar(&self, id: &str) -> ProgressBar {
        let bar = self.0.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>14.bold} {spinner} [{bar:30}] {pos}/{len} {msg} {elapsed}/{eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        bar.set_prefix(id.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// A lasting line above the bars, or on stderr when there are none (not a terminal): a
    /// failure's whole message, with its hint, must reach CI logs too.
    pub fn say(&self, line: &str) {
        if self.0.is_hidden() {
            warn(line);
        } else {
            let _ = self.0.println(line);
        }
    }

    /// A line for people watching a terminal only (the summary tells the rest).
    pub fn mention(&self, line: &str) {
        let _ = self.0.println(line);
    }
}

/// A stage's view of its bar.
pub struct BarProgress(pub ProgressBar);

impl Progress for BarProgress {
    fn set_total(&self, total: u64, unit: &str) {
        // A new phase (e.g. the next epoch) starts its bar and ETA from zero.
        self.0.reset();
        self.0.set_length(total);
        self.0.set_message(unit.to_string());
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn message(&self, msg: &str) {
        self.0.set_message(msg.to_string());
    }
    fn println(&self, line: &str) {
        if self.0.is_hidden() {
            warn(line);
        } else {
            self.0.println(line);
        }
    }
}

/// Start/end events with one global sequence, written by the thread that runs the stage.
pub struct EventLog {
    file: Option<Mutex<std::fs::File>>,
    seq: AtomicU64,
    t0: Instant,
}

impl EventLog {
    pub fn open(path: Option<&Path>) -> std::io::Result<EventLog> {
        let file = match path {
            Some(p) => Some(Mutex::new(fs_err::File::create(p)?.into_parts().0)),
            None => None,
        };
        Ok(EventLog {
            file,
            seq: AtomicU64::new(0),
            t0: Instant::now(),
        })
    }

    pub fn record(&self, event: &str, stage: &str, device: bool) {
        if let Some(f) = &self.file {
            let mut f = f.lock().expect("event log");
            let seq = self.seq.fetch_add(1, Ordering::SeqCst);
            let line = serde_json::json!({
                "seq": seq, "event": event, "stage": stage, "device": device,
                "t_ms": self.t0.elapsed().as_secs_f64() * 1e3,
            });
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Writes a warning to stderr; a closed terminal (SIGHUP) must not turn it into a panic.
pub fn warn(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
