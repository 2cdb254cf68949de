//! How a guard's verdicts are applied.

use serde::Deserialize;

use rampart_core::Verdict;

/// A guard's mode. `observe` is how a team rolls a defense out without breaking traffic and measures its false
/// positives first: the guard runs and its refusals are recorded, but the response is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Refusals are sent to the client (default).
    #[default]
    Enforce,
    /// Refusals become findings in the audit and metrics only.
    Observe,
    /// The guard is not built at all.
    Off,
}

impl Mode {
    /// Applies the mode to a verdict: in observe mode a rejection becomes a flag.
    pub fn apply(self, v: Verdict) -> Verdict {
        match (self, v) {
            (Mode::Observe, Verdict::Reject(r)) => Verdict::Flag(r.into()),
            (_, v) => v,
        }
    }

    /// Whether the guard is built.
    pub fn is_on(self) -> bool {
        self != Mode::Off
    }
}
