//! State names as the tables hold them: parsing them back, and checking the source
//! states a compare-and-swap accepts before they are bound.

use super::{Error, Result};
use crate::state_machine::{IllegalTransition, TaskState, UnknownState, WorkflowStepState};

/// A task state read from a row.
pub(crate) fn parse_task(s: &str) -> Result<TaskState> {
    s.parse()
        .map_err(|e: UnknownState| Error::Corrupt(e.to_string()))
}

/// A step state read from a row.
pub(crate) fn parse_step(s: &str) -> Result<WorkflowStepState> {
    s.parse()
        .map_err(|e: UnknownState| Error::Corrupt(e.to_string()))
}

/// Checks that every source may move to `to` (by `legal`) and returns the sources as
/// strings, to bind as a statement's accepted source states.
pub(crate) fn checked_sources<S: Copy + std::fmt::Display>(
    kind: &'static str,
    from: &[S],
    to: S,
    legal: impl Fn(S, S) -> bool,
) -> Result<Vec<String>> {
    from.iter()
        .map(|f| {
            if legal(*f, to) {
                Ok(f.to_string())
            } else {
                Err(Error::IllegalTransition(IllegalTransition {
                    kind,
                    from: f.to_string(),
                    to: to.to_string(),
                }))
            }
        })
        .collect()
}
