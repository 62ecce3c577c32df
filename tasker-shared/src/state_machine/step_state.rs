use super::{IllegalTransition, string_enum};

/// The 10 states of a workflow step.
///
/// Happy path: `pending → enqueued → in_progress → enqueued_for_orchestration → complete`.
/// The orchestration writes `enqueued`, `complete`, `error` and `waiting_for_retry`; a
/// worker writes `in_progress` (its claim) and the two `enqueued_*_for_orchestration`
/// states (its result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkflowStepState {
    /// Waiting for its dependencies or for the orchestration to enqueue it.
    Pending,
    /// A message for it is on its namespace queue.
    Enqueued,
    /// A worker claimed it and runs its handler.
    InProgress,
    /// The worker stored a successful result; the orchestration has not processed it yet.
    EnqueuedForOrchestration,
    /// The worker stored a failed result; the orchestration has not processed it yet.
    EnqueuedAsErrorForOrchestration,
    /// A failed attempt; the next one is scheduled after the backoff.
    WaitingForRetry,
    /// Done; its result is final.
    Complete,
    /// Failed with no attempts left, or permanently. Operators can still act on it.
    Error,
    /// Cancelled with its task before it ran.
    Cancelled,
    /// An operator declared it resolved without a result.
    ResolvedManually,
}

string_enum!(WorkflowStepState, "step", {
    Pending => "pending",
    Enqueued => "enqueued",
    InProgress => "in_progress",
    EnqueuedForOrchestration => "enqueued_for_orchestration",
    EnqueuedAsErrorForOrchestration => "enqueued_as_error_for_orchestration",
    WaitingForRetry => "waiting_for_retry",
    Complete => "complete",
    Error => "error",
    Cancelled => "cancelled",
    ResolvedManually => "resolved_manually",
});

impl WorkflowStepState {
    /// States nothing leaves. `error` is not one: an operator can reset or resolve it.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Complete | Self::Cancelled | Self::ResolvedManually
        )
    }

    /// States that satisfy a child's dependency on this step.
    pub const fn satisfies_dependency(self) -> bool {
        matches!(self, Self::Complete | Self::ResolvedManually)
    }

    /// States from which a worker may claim the step: a fresh enqueue, a scheduled retry,
    /// or (when its message was delivered again because the previous lease expired) a
    /// step still marked in progress.
    pub const CLAIMABLE: &'static [WorkflowStepState] = &[
        WorkflowStepState::Enqueued,
        WorkflowStepState::WaitingForRetry,
        WorkflowStepState::InProgress,
    ];

    /// Whether the state machine allows `self -> to`.
    pub fn can_transition_to(self, to: WorkflowStepState) -> bool {
        use WorkflowStepState::*;
        if self.is_terminal() {
            return false;
        }
        // Result processing completes a step; an operator may complete or resolve any
        // live step by hand; cancelling a task cancels its live steps.
        if matches!(to, Complete | ResolvedManually | Cancelled) {
            return true;
        }
        match self {
            Pending => matches!(to, Enqueued | Error),
            Enqueued => matches!(to, InProgress | Pending | Error),
            // in_progress -> enqueued: a worker shutting down gives the step back.
            InProgress => matches!(
                to,
                InProgress
                    | Enqueued
                    | EnqueuedForOrchestration
                    | EnqueuedAsErrorForOrchestration
                    | Error
            ),
            EnqueuedForOrchestration => matches!(to, Error),
            EnqueuedAsErrorForOrchestration => matches!(to, WaitingForRetry | Error),
            WaitingForRetry => matches!(to, InProgress | Enqueued | Pending | Error),
            Error => matches!(to, Pending),
            Complete | Cancelled | ResolvedManually => false,
        }
    }

    /// The states from which `to` may be reached.
    pub fn sources_of(to: WorkflowStepState) -> Vec<WorkflowStepState> {
        Self::ALL
            .iter()
            .copied()
            .filter(|from| from.can_transition_to(to))
            .collect()
    }

    /// Checks a transition, returning a typed error when it is illegal.
    pub fn check_transition(self, to: WorkflowStepState) -> Result<(), IllegalTransition> {
        if self.can_transition_to(to) {
            Ok(())
        } else {
            Err(IllegalTransition {
                kind: "step",
                from: self.to_string(),
                to: to.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use WorkflowStepState::*;

    #[test]
    fn round_trips_every_state() {
        assert_eq!(WorkflowStepState::ALL.len(), 10);
        for s in WorkflowStepState::ALL {
            assert_eq!(s.as_str().parse::<WorkflowStepState>().unwrap(), *s);
        }
        let err = "done".parse::<WorkflowStepState>().unwrap_err();
        assert_eq!(err.to_string(), "unknown step state \"done\"");
    }

    #[test]
    fn happy_path_is_legal() {
        let path = [
            Pending,
            Enqueued,
            InProgress,
            EnqueuedForOrchestration,
            Complete,
        ];
        for pair in path.windows(2) {
            assert!(pair[0].can_transition_to(pair[1]), "{:?}", pair);
        }
    }

    #[test]
    fn retry_path_is_legal() {
        let path = [
            InProgress,
            EnqueuedAsErrorForOrchestration,
            WaitingForRetry,
            InProgress,
        ];
        for pair in path.windows(2) {
            assert!(pair[0].can_transition_to(pair[1]), "{:?}", pair);
        }
        assert!(Error.can_transition_to(Pending));
        assert!(Error.can_transition_to(ResolvedManually));
    }

    #[test]
    fn terminal_states_are_final_and_shortcuts_are_illegal() {
        for from in [Complete, Cancelled, ResolvedManually] {
            for to in WorkflowStepState::ALL {
                assert!(!from.can_transition_to(*to), "{from} -> {to}");
            }
        }
        assert!(!Pending.can_transition_to(InProgress));
        assert!(!Enqueued.can_transition_to(EnqueuedForOrchestration));
        assert!(!EnqueuedForOrchestration.can_transition_to(WaitingForRetry));
        assert!(WorkflowStepState::sources_of(InProgress).contains(&Enqueued));
    }
}
