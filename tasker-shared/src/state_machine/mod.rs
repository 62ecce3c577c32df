//! The task and step state machines.
//!
//! States are persisted as append-only transition rows (see `docs/states-and-lifecycles.md`).
//! This module says which transitions are legal; [`crate::database::transition`] writes
//! them as compare-and-swap operations.

#[cfg(feature = "db")]
mod machine;
mod step_state;
mod task_state;

#[cfg(feature = "db")]
pub use machine::{StepStateMachine, TaskStateMachine};
pub use step_state::WorkflowStepState;
pub use task_state::TaskState;

/// A state name that is not one of the known states.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} state {value:?}")]
pub struct UnknownState {
    /// "task" or "step".
    pub kind: &'static str,
    /// The rejected text.
    pub value: String,
}

/// The outcome of a compare-and-swap transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionOutcome<S> {
    /// The transition was written; `from` was the state it replaced.
    Applied {
        /// The state before the transition.
        from: S,
    },
    /// The current state was not one of the expected ones: another writer got there
    /// first, or the entity had moved on. A normal outcome, not an error.
    Conflict {
        /// What the state actually was (None if the entity does not exist).
        actual: Option<S>,
    },
}

impl<S> TransitionOutcome<S> {
    /// Whether the transition was written.
    pub fn applied(&self) -> bool {
        matches!(self, Self::Applied { .. })
    }
}

/// An attempt to make a transition the state machine forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal {kind} transition {from} -> {to}")]
pub struct IllegalTransition {
    /// "task" or "step".
    pub kind: &'static str,
    /// Source state.
    pub from: String,
    /// Target state.
    pub to: String,
}

macro_rules! string_enum {
    ($ty:ident, $kind:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every state, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The state's name as stored in the database and sent over the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::state_machine::UnknownState;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    _ => Err($crate::state_machine::UnknownState { kind: $kind, value: s.to_string() }),
                }
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use string_enum;

#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

    fn string_enum(values: Vec<&'static str>, description: &str) -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values))
            .description(Some(description))
            .into()
    }

    impl utoipa::PartialSchema for super::TaskState {
        fn schema() -> RefOr<Schema> {
            string_enum(
                Self::ALL.iter().map(|s| s.as_str()).collect(),
                "A task state.",
            )
        }
    }
    impl utoipa::ToSchema for super::TaskState {}

    impl utoipa::PartialSchema for super::WorkflowStepState {
        fn schema() -> RefOr<Schema> {
            string_enum(
                Self::ALL.iter().map(|s| s.as_str()).collect(),
                "A workflow step state.",
            )
        }
    }
    impl utoipa::ToSchema for super::WorkflowStepState {}
}
