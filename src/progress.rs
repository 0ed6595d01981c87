//! A progress line for replays on a terminal: events read, events/s, the event time reached
//! and, when the number of events is known, a bar and an ETA. Nothing is drawn when stderr
//! is not a terminal (indicatif hides its bar there), so logs and pipes stay clean.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kaizen_model::Timestamp;

/// The bar of one replay; [`ReplayProgress::update`] is the engine's `on_progress` hook.
pub struct ReplayProgress {
    bar: ProgressBar,
}

impl ReplayProgress {
    /// A bar over `total` events when known, a spinner with counts otherwise.
    pub fn new(total: Option<u64>) -> Self {
        let bar = match total {
            Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
        };
        let template = if total.is_some() {
            "  replaying {bar:30} {percent:>3}% · {human_pos} events · {msg} · ETA {eta}"
        } else {
            "  replaying {spinner} {human_pos} events · {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        ReplayProgress { bar }
    }

    /// Events read so far and the newest event time.
    pub fn update(&self, events: u64, newest: Option<Timestamp>) {
        self.bar.set_position(events);
        let rate = self.bar.per_sec();
        let time = newest.map(|t| t.clock()).unwrap_or_default();
        self.bar
            .set_message(format!("{rate:.0} events/s · event time {time}"));
    }

    /// Removes the line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
