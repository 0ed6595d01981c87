//! A progress bar for the harnesses on a terminal: units done out of the total (files, cases,
//! events…), their rate, the ETA and a message (the current file, case or event time reached).
//!
//! It is drawn on stderr only, and only when stderr is a terminal (indicatif hides a stderr
//! target otherwise), and it is cleared when done or dropped, so the JSON lines on stdout are
//! the same with or without it.

use std::borrow::Cow;
use std::time::Duration;

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// One stage's bar; a new stage is a new `Progress` (the previous one clears when dropped).
pub struct Progress {
    bar: ProgressBar,
    label: String,
    unit: &'static str,
}

impl Progress {
    /// A bar labelled `label` over `total` units named `unit` (plural: "files", "events"); with
    /// `total` unknown (`None`) until [`Progress::set_length`], a count without bar or ETA.
    pub fn new(label: &str, total: Option<u64>, unit: &'static str) -> Self {
        let progress = Progress {
            // Hidden by indicatif when stderr is not a terminal (or TERM is dumb).
            bar: ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr()),
            label: label.to_owned(),
            unit,
        };
        progress.style(total.is_some());
        if !progress.bar.is_hidden() {
            progress.bar.enable_steady_tick(Duration::from_millis(200));
        }
        progress
    }

    fn style(&self, known_total: bool) {
        let (label, unit) = (&self.label, self.unit);
        let template = if known_total {
            format!(
                "  {label} {{bar:20}} {{human_pos}}/{{human_len}} {unit} · {{rate}} · \
                 ETA {{eta}} · {{wide_msg}}"
            )
        } else {
            format!("  {label} {{spinner}} {{human_pos}} {unit} · {{rate}} · {{wide_msg}}")
        };
        let rate = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let r = state.per_sec();
            let _ = if !r.is_finite() {
                write!(w, "- {unit}/s")
            } else if r >= 10.0 {
                write!(w, "{} {unit}/s", HumanCount(r.round() as u64))
            } else {
                write!(w, "{r:.1} {unit}/s")
            };
        };
        if let Ok(style) = ProgressStyle::with_template(&template) {
            self.bar.set_style(style.with_key("rate", rate));
        }
    }

    /// Sets the total, once known or re-estimated.
    pub fn set_length(&self, total: u64) {
        if self.bar.length().is_none() {
            self.style(true);
        }
        self.bar.set_length(total);
    }

    /// Units done so far.
    pub fn set_position(&self, done: u64) {
        self.bar.set_position(done);
    }

    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// What is being worked on now.
    pub fn set_message(&self, message: impl Into<Cow<'static, str>>) {
        self.bar.set_message(message);
    }

    /// Prints `line` and a newline to stdout with the bar off the screen (stdout may be the
    /// same terminal): the same bytes as `println!("{line}")`.
    pub fn println(&self, line: impl std::fmt::Display) {
        self.bar.suspend(|| println!("{line}"));
    }

    /// Runs `f` with the bar off the screen (for output to stderr), then draws it again.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the bar (dropping it does the same).
    pub fn finish(self) {}
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
