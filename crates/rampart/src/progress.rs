//! A progress bar on stderr for long commands, drawn only when stderr is a terminal (never in CI logs or
//! pipes).

use std::io::IsTerminal;

/// Counts bytes; hidden when stderr is not a terminal.
pub(crate) struct Bar(indicatif::ProgressBar);

impl Bar {
    pub(crate) fn new() -> Self {
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(0)
        } else {
            indicatif::ProgressBar::hidden()
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        Self(bar)
    }

    pub(crate) fn set_total(&self, bytes: u64) {
        self.0.set_length(bytes);
    }

    pub(crate) fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

impl rampart_data::manifest::Progress for Bar {
    fn total(&self, bytes: u64) {
        self.set_total(bytes);
    }
    fn advance(&self, bytes: u64) {
        Bar::advance(self, bytes);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
