use super::{IllegalTransition, string_enum};

/// The 12 states of a task.
///
/// Orchestration does each phase of its work inside one database transaction, so the
/// transient states `initializing`, `enqueuing_steps` and `evaluating_results` are legal
/// but never committed by this implementation; see `docs/states-and-lifecycles.md` for
/// the states a user can observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Created; no step has been enqueued yet.
    Pending,
    /// Being set up (transient).
    Initializing,
    /// Steps are being enqueued (transient).
    EnqueuingSteps,
    /// At least one step is enqueued, running, or awaiting result processing.
    StepsInProcess,
    /// Results are being evaluated (transient).
    EvaluatingResults,
    /// Nothing runs and nothing is ready: waiting for dependencies.
    WaitingForDependencies,
    /// Nothing runs; a step's next attempt is scheduled after its backoff.
    WaitingForRetry,
    /// A step failed for good; an operator must act (retry, resolve, or cancel).
    BlockedByFailures,
    /// Every step completed.
    Complete,
    /// Failed for good.
    Error,
    /// Cancelled by a user.
    Cancelled,
    /// An operator declared the task resolved.
    ResolvedManually,
}

string_enum!(TaskState, "task", {
    Pending => "pending",
    Initializing => "initializing",
    EnqueuingSteps => "enqueuing_steps",
    StepsInProcess => "steps_in_process",
    EvaluatingResults => "evaluating_results",
    WaitingForDependencies => "waiting_for_dependencies",
    WaitingForRetry => "waiting_for_retry",
    BlockedByFailures => "blocked_by_failures",
    Complete => "complete",
    Error => "error",
    Cancelled => "cancelled",
    ResolvedManually => "resolved_manually",
});

impl TaskState {
    /// States nothing ever leaves.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Complete | Self::Error | Self::Cancelled | Self::ResolvedManually
        )
    }

    /// Whether the state machine allows `self -> to`.
    pub fn can_transition_to(self, to: TaskState) -> bool {
        use TaskState::*;
        if self.is_terminal() {
            return false;
        }
        // Any live task can be cancelled or fail outright.
        if matches!(to, Cancelled | Error) {
            return true;
        }
        match self {
            Pending => matches!(
                to,
                Initializing | EnqueuingSteps | StepsInProcess | WaitingForDependencies | Complete
            ),
            Initializing => matches!(
                to,
                EnqueuingSteps | StepsInProcess | WaitingForDependencies | Complete
            ),
            EnqueuingSteps => matches!(to, StepsInProcess | WaitingForDependencies),
            StepsInProcess | EvaluatingResults | WaitingForDependencies | WaitingForRetry => {
                matches!(
                    to,
                    EvaluatingResults
                        | EnqueuingSteps
                        | StepsInProcess
                        | WaitingForDependencies
                        | WaitingForRetry
                        | BlockedByFailures
                        | Complete
                ) && to != self
            }
            BlockedByFailures => matches!(
                to,
                StepsInProcess
                    | WaitingForDependencies
                    | WaitingForRetry
                    | Complete
                    | ResolvedManually
            ),
            Complete | Error | Cancelled | ResolvedManually => false,
        }
    }

    /// The states from which `to` may be reached.
    pub fn sources_of(to: TaskState) -> Vec<TaskState> {
        Self::ALL
            .iter()
            .copied()
            .filter(|from| from.can_transition_to(to))
            .collect()
    }

    /// Checks a transition, returning a typed error when it is illegal.
    pub fn check_transition(self, to: TaskState) -> Result<(), IllegalTransition> {
        if self.can_transition_to(to) {
            Ok(())
        } else {
            Err(IllegalTransition {
                kind: "task",
                from: self.to_string(),
                to: to.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_state() {
        assert_eq!(TaskState::ALL.len(), 12);
        for s in TaskState::ALL {
            assert_eq!(s.as_str().parse::<TaskState>().unwrap(), *s);
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(serde_json::from_str::<TaskState>(&json).unwrap(), *s);
        }
        assert!("in_progress".parse::<TaskState>().is_err());
    }

    #[test]
    fn terminal_states_are_final() {
        for from in TaskState::ALL.iter().filter(|s| s.is_terminal()) {
            for to in TaskState::ALL {
                assert!(!from.can_transition_to(*to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn lifecycle_edges() {
        use TaskState::*;
        assert!(Pending.can_transition_to(StepsInProcess));
        assert!(StepsInProcess.can_transition_to(Complete));
        assert!(StepsInProcess.can_transition_to(BlockedByFailures));
        assert!(BlockedByFailures.can_transition_to(StepsInProcess));
        assert!(!BlockedByFailures.can_transition_to(Pending));
        assert!(!StepsInProcess.can_transition_to(StepsInProcess));
        assert!(!Pending.can_transition_to(BlockedByFailures));
        assert!(Pending.check_transition(Cancelled).is_ok());
        let err = Complete.check_transition(Pending).unwrap_err();
        assert_eq!(
            err.to_string(),
            "illegal task transition complete -> pending"
        );
        assert!(TaskState::sources_of(Complete).contains(&StepsInProcess));
    }
}
