//! The native Rust worker: built-in handlers and the `tasker-worker` binary.
//!
//! It owns the built-in handlers ([`builtin`]) that example templates and tests rely
//! on. It must not contain SQL or know about HTTP; everything else comes from
//! `tasker-worker`.

pub mod builtin;

use tasker_worker::handlers::HandlerRegistry;

/// A registry with every built-in handler.
pub fn registry() -> HandlerRegistry {
    let mut registry = HandlerRegistry::new();
    builtin::register(&mut registry);
    registry
}
