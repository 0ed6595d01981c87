//! Frames: batches of generated events in emission order.
//!
//! A frame's event slots are reused from batch to batch (metric slots keep their series, log
//! and span slots keep their strings' capacity), so steady-state generation allocates little;
//! and a whole frame can be handed to another thread for encoding without cloning an event.

use kaizen_model::{Attributes, Event, EventBody, Level, Log, Symbol, Timestamp};

/// Marks an `order` entry that refers to `others` rather than `metrics`.
const OTHER: u32 = 1 << 31;

/// A batch of events: one or more ticks' metrics, alerts and window events.
#[derive(Default)]
pub(crate) struct Frame {
    /// Metric slots: tick `k` of the frame uses `k * series .. (k + 1) * series`.
    metrics: Vec<Event>,
    metric_ticks: usize,
    /// Alerts, changes, logs and spans.
    others: Vec<Event>,
    others_len: usize,
    /// Emission order: indices into `metrics`, or into `others` with [`OTHER`] set.
    order: Vec<u32>,
    /// The current window's `(ts, others index)`, sorted by [`Frame::finish_window`].
    window: Vec<(u64, u32)>,
}

impl Frame {
    /// Events in the frame.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// The events, in emission order.
    pub(crate) fn events(&self) -> impl Iterator<Item = &Event> + '_ {
        self.order.iter().map(|&r| {
            if r & OTHER == 0 {
                &self.metrics[r as usize]
            } else {
                &self.others[(r & !OTHER) as usize]
            }
        })
    }

    /// Empties the frame, keeping its slots for reuse.
    pub(crate) fn reset(&mut self) {
        self.metric_ticks = 0;
        self.others_len = 0;
        self.order.clear();
        self.window.clear();
    }

    /// Starts a tick's metrics: returns the slot index of its first series, creating the
    /// slots from `templates` (one event per series) the first time.
    pub(crate) fn metric_tick(&mut self, templates: &[Event]) -> usize {
        let base = self.metric_ticks * templates.len();
        if self.metrics.len() < base + templates.len() {
            self.metrics.extend_from_slice(templates);
        }
        self.metric_ticks += 1;
        base
    }

    /// Metric slot `i` (from [`Frame::metric_tick`]), queued for emission now.
    pub(crate) fn metric(&mut self, i: usize) -> &mut Event {
        self.order.push(i as u32);
        &mut self.metrics[i]
    }

    fn other_slot(&mut self, ts: u64, service: &Symbol) -> (u32, &mut Event) {
        if self.others_len == self.others.len() {
            self.others.push(Event {
                ts: Timestamp::from_millis(ts),
                service: service.clone(),
                body: EventBody::Log(Log {
                    level: Level::Info,
                    message: String::new(),
                    attributes: Attributes::default(),
                }),
            });
        }
        let i = self.others_len as u32;
        self.others_len += 1;
        let e = &mut self.others[i as usize];
        e.ts = Timestamp::from_millis(ts);
        if !e.service.ptr_eq(service) {
            e.service = service.clone();
        }
        (i, e)
    }

    /// Queues `e` for emission now (an alert at the tick time, right after the metrics).
    pub(crate) fn push_now(&mut self, e: Event) {
        let (i, slot) = self.other_slot(e.ts.as_millis(), &e.service);
        *slot = e;
        self.order.push(i | OTHER);
    }

    /// A slot for an event at `ts` in the current window, stamped with `ts` and `service`;
    /// its body is whatever it last held.
    pub(crate) fn window_slot(&mut self, ts: u64, service: &Symbol) -> &mut Event {
        let (i, _) = self.other_slot(ts, service);
        self.window.push((ts, i));
        &mut self.others[i as usize]
    }

    /// Queues a log line in the current window.
    pub(crate) fn push_log(
        &mut self,
        ts: u64,
        service: &Symbol,
        level: Level,
        message: &str,
        attributes: Attributes,
    ) {
        let e = self.window_slot(ts, service);
        if let EventBody::Log(l) = &mut e.body {
            l.level = level;
            l.message.clear();
            l.message.push_str(message);
            l.attributes = attributes;
            return;
        }
        e.body = EventBody::Log(Log {
            level,
            message: message.to_owned(),
            attributes,
        });
    }

    /// Sorts the current window by time (ties in insertion order) and queues it; returns the
    /// time of its last event.
    pub(crate) fn finish_window(&mut self) -> Option<u64> {
        // (ts, insertion index) is unique, so an unstable sort is deterministic.
        self.window.sort_unstable();
        let last = self.window.last().map(|w| w.0);
        self.order
            .extend(self.window.iter().map(|&(_, i)| i | OTHER));
        self.window.clear();
        last
    }
}

/// Where the generator hands its frames.
pub(crate) trait FrameSink {
    /// An empty frame to fill (a recycled one when possible).
    fn fresh(&mut self) -> Frame;
    /// Takes a filled frame; `false` stops the run.
    fn full(&mut self, frame: Frame) -> bool;
}

/// Consumes frames on the calling thread, one event at a time.
pub(crate) struct Inline<'a> {
    pub emit: &'a mut dyn FnMut(&Event) -> bool,
    pub spare: Option<Frame>,
}

impl FrameSink for Inline<'_> {
    fn fresh(&mut self) -> Frame {
        self.spare.take().unwrap_or_default()
    }

    fn full(&mut self, mut frame: Frame) -> bool {
        let mut go_on = true;
        for e in frame.events() {
            if !(self.emit)(e) {
                go_on = false;
                break;
            }
        }
        frame.reset();
        self.spare = Some(frame);
        go_on
    }
}
