//! The native Rust worker: built-in handlers and the `tasker-worker` binary.
//!
//! It owns the built-in handlers ([`builtin`]) that example templates and tests rely
//! on, and the `payments` example handlers ([`payments`]); everything else comes from
//! `tasker-worker`. It contains no SQL and no HTTP, and must not depend on
//! `tasker-orchestration`, `tasker-client` or `magnus`.

pub mod builtin;
pub mod payments;

use tasker_worker::handlers::HandlerRegistry;

/// A registry with every built-in and example handler.
pub fn registry() -> HandlerRegistry {
    let mut registry = HandlerRegistry::new();
    builtin::register(&mut registry);
    payments::register(&mut registry);
    registry
}

/// The Rust examples of the user docs, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/quick-start.md")]
pub struct QuickStartDoc;

/// See [`QuickStartDoc`].
#[cfg(doctest)]
#[doc = include_str!("../../../docs/writing-handlers.md")]
pub struct WritingHandlersDoc;
