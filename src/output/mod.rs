//! Rendering run events: NDJSON on stdout for machines, and for people a plan grouped
//! by host with diffs, or live apply progress with failures as they happen and a recap.

mod human;
mod progress;

use std::io::Write;

use kprov_engine::events::{Event, Mode};

pub use human::Human;

/// Renders events as they arrive.
pub struct Renderer {
    json: bool,
    human: Human,
}

impl Renderer {
    /// JSON mode streams events on stdout and keeps the human view on stderr.
    pub fn new(mode: Mode, json: bool, quiet: bool) -> Self {
        Renderer {
            json,
            human: Human::new(mode, json, quiet),
        }
    }

    pub fn event(&mut self, event: &Event) {
        if self.json {
            if let Ok(line) = serde_json::to_string(event) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
        self.human.event(event);
    }

    pub fn finish(&mut self) {
        self.human.finish();
    }

    /// The run was interrupted by `signal`: say so now; the recap follows with `finish`.
    pub fn interrupted(&mut self, signal: &str, grace: std::time::Duration) {
        self.human.interrupted(signal, grace);
    }
}
