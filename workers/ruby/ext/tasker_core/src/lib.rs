//! Native extension of the `tasker_core` Ruby gem.
//!
//! It owns the bridge between Ruby and the Rust worker runtime. It is the only crate
//! that knows magnus; nothing else in the workspace may depend on it.

use magnus::{Error, Module, Ruby};

/// The extension's version, exposed as `TaskerCore::NATIVE_VERSION`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[magnus::init]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby.define_module("TaskerCore")?;
    module.const_set("NATIVE_VERSION", VERSION)?;
    Ok(())
}
