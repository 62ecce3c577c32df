//! The queue between the Rust runtime and the Ruby handler threads.
//!
//! Ruby threads wait in `next_step` with the GVL released (`rb_thread_call_without_gvl`)
//! on a condition variable: a new event wakes one of them at once, and no thread polls.
//! The unblocking function wakes every waiter when Ruby needs a thread back (Ctrl-C,
//! `Thread#raise`, `Thread#kill`); the waiter then lets Ruby handle the interrupt and
//! waits again.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::{Condvar, Mutex, MutexGuard};

use magnus::{Error, Ruby};

#[derive(Default)]
struct State {
    items: VecDeque<String>,
    closed: bool,
    interrupts: u64,
}

/// A blocking FIFO of step events (JSON text).
#[derive(Default)]
pub struct Queue {
    state: Mutex<State>,
    ready: Condvar,
}

/// What a wait ended with.
pub enum Wait {
    /// An event.
    Item(String),
    /// The queue is closed: the worker stopped.
    Closed,
    /// Ruby asked for the thread back.
    Interrupted,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the queue inconsistent: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an event and wakes one waiter.
    pub fn push(&self, item: String) {
        self.lock().items.push_back(item);
        self.ready.notify_one();
    }

    /// Opens the queue for a new worker run.
    pub fn open(&self) {
        let mut s = self.lock();
        s.closed = false;
        s.items.clear();
    }

    /// Closes the queue: waiters return `Closed` once it is empty.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    fn interrupt(&self) {
        self.lock().interrupts += 1;
        self.ready.notify_all();
    }

    fn wait(&self) -> Wait {
        let mut s = self.lock();
        let seen = s.interrupts;
        loop {
            if let Some(item) = s.items.pop_front() {
                return Wait::Item(item);
            }
            if s.closed {
                return Wait::Closed;
            }
            if s.interrupts != seen {
                return Wait::Interrupted;
            }
            s = self.ready.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// The process-wide queue.
pub static QUEUE: std::sync::LazyLock<Queue> = std::sync::LazyLock::new(Queue::default);

struct Slot {
    outcome: Option<Wait>,
}

unsafe extern "C" fn wait_without_gvl(data: *mut c_void) -> *mut c_void {
    // SAFETY: `data` is the `Slot` that `next_step` passes and keeps alive for the call.
    let slot = unsafe { &mut *(data as *mut Slot) };
    slot.outcome = Some(QUEUE.wait());
    std::ptr::null_mut()
}

unsafe extern "C" fn unblock(_data: *mut c_void) {
    QUEUE.interrupt();
}

/// `TaskerCore::Native.next_step`: the next step event (JSON), or nil once the worker has
/// stopped. Blocks with the GVL released.
pub fn next_step(ruby: &Ruby) -> Result<Option<String>, Error> {
    loop {
        let mut slot = Slot { outcome: None };
        // SAFETY: the callback only touches `slot` and the queue (no Ruby API), as
        // rb_thread_call_without_gvl requires; `slot` outlives the call.
        unsafe {
            rb_sys::rb_thread_call_without_gvl(
                Some(wait_without_gvl),
                &mut slot as *mut Slot as *mut c_void,
                Some(unblock),
                std::ptr::null_mut(),
            );
        }
        match slot.outcome {
            Some(Wait::Item(item)) => return Ok(Some(item)),
            Some(Wait::Closed) => return Ok(None),
            // Interrupted (or never started because an interrupt was pending): let Ruby
            // raise it if it is for this thread, then wait again.
            Some(Wait::Interrupted) | None => ruby.thread_check_ints()?,
        }
    }
}
