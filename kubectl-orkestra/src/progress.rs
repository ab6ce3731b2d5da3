//! Progress on stderr: indicatif spinners on a terminal, plain lines (one per outcome) otherwise,
//! so logs of scripts and CI stay readable.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether stderr is a terminal worth animating (and NO_COLOR is not asking for plain output).
pub fn interactive_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Whether a person can answer prompts: stdin and stderr (where prompts are drawn) are terminals.
pub fn interactive_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// A group of spinners.
pub struct Progress {
    multi: MultiProgress,
    live: bool,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    /// Spinners on a terminal, plain lines elsewhere.
    pub fn new() -> Self {
        let live = interactive_stderr();
        let target = if live {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            multi: MultiProgress::with_draw_target(target),
            live,
        }
    }

    /// A spinner labelled `label`.
    pub fn spinner(&self, label: &str) -> Spinner {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(label.to_string());
        if self.live {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        Spinner {
            bar,
            label: label.to_string(),
            live: self.live,
            finished: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// One spinner.
pub struct Spinner {
    bar: ProgressBar,
    label: String,
    live: bool,
    finished: Arc<AtomicBool>,
}

impl Spinner {
    /// Update the message.
    pub fn message(&self, m: &str) {
        self.bar.set_message(m.to_string());
    }

    /// Finish with success (idempotent).
    pub fn done(&self, m: &str) {
        self.finish("✓", m);
    }

    /// Finish with failure (idempotent).
    pub fn fail(&self, m: &str) {
        self.finish("✗", m);
    }

    fn finish(&self, mark: &str, m: &str) {
        if self.finished.swap(true, Ordering::SeqCst) {
            return;
        }
        if self.live {
            self.bar.set_style(
                ProgressStyle::with_template("{prefix} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            self.bar.finish_with_message(format!("{mark} {m}"));
        } else {
            self.bar.finish_and_clear();
            eprintln!("{}: {m}", self.label);
        }
    }
}
