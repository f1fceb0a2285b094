//! Exit codes: one enum, the numbers the README and `hpl --help` document.

use hpl_runtime::enforce::Verdict;
use hpl_runtime::record::State;

/// How `hpl` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Exit {
    /// Clean check, formatted, valid bundle, compliant (or warning) device, allowed action.
    Success = 0,
    /// Findings (errors, or warnings with `--deny-warnings`; files `fmt --check` would change;
    /// an invalid or rejected bundle), or an input a device command cannot read.
    Failure = 1,
    /// Usage or I/O errors of the authoring commands.
    Usage = 2,
    /// `eval`: the device is `non_compliant`.
    NonCompliant = 3,
    /// `eval`: the record is `unknown`; `snapshot status`: no valid snapshot.
    Unknown = 4,
    /// `authorize`: the user must confirm.
    NeedsConfirmation = 5,
    /// `authorize`: denied.
    Denied = 6,
    /// `agent sync`: the control plane was unreachable; the device answered from its active
    /// snapshot and queued its record in the outbox.
    Offline = 7,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// `hpl eval`'s exit for a record's state.
    pub fn of_state(state: State) -> Exit {
        match state {
            State::Compliant | State::Warning => Exit::Success,
            State::NonCompliant => Exit::NonCompliant,
            State::Unknown => Exit::Unknown,
        }
    }

    /// `hpl authorize`'s exit for a decision.
    pub fn of_verdict(verdict: Verdict) -> Exit {
        match verdict {
            Verdict::Allow => Exit::Success,
            Verdict::NeedsConfirmation => Exit::NeedsConfirmation,
            Verdict::Deny => Exit::Denied,
        }
    }
}
