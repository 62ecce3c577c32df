//! Native extension of the `tasker_core` Ruby gem: the Rust worker runtime, embedded in a
//! Ruby process, with handlers run by Ruby threads.
//!
//! It owns the bridge: `TaskerCore::Native.bootstrap` starts a worker through
//! `tasker_worker::WorkerBuilder` (the start-up path every worker language shares) on a
//! Tokio runtime, with one [`ffi::RubyHandler`] per template callable that resolves to a
//! Ruby class. A claimed step becomes an event on a queue; Ruby threads take events with
//! `next_step`, a blocking call that releases the GVL, and report back with
//! `complete_step` / `fail_step`.
//! Rust never calls into Ruby from a thread Ruby did not create.
//!
//! It is the only crate that knows magnus, and nothing in the workspace depends on it. It
//! must not depend on `tasker-orchestration` or `tasker-client`.

#![allow(unsafe_code)] // rb_thread_call_without_gvl has no safe wrapper in magnus

mod dispatch;
mod ffi;
mod runtime;

use magnus::{Error, Module, Ruby, function};

/// The extension's version, exposed as `TaskerCore::NATIVE_VERSION`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[magnus::init]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby.define_module("TaskerCore")?;
    module.const_set("NATIVE_VERSION", VERSION)?;
    let native = module.define_module("Native")?;
    native.define_module_function("bootstrap", function!(runtime::bootstrap, 2))?;
    native.define_module_function("status", function!(runtime::status, 0))?;
    native.define_module_function("request_shutdown", function!(runtime::request_shutdown, 0))?;
    native.define_module_function("wait_stopped", function!(runtime::wait_stopped, 1))?;
    native.define_module_function("next_step", function!(dispatch::next_step, 0))?;
    native.define_module_function("complete_step", function!(ffi::complete_step, 2))?;
    native.define_module_function("fail_step", function!(ffi::fail_step, 2))?;
    Ok(())
}
