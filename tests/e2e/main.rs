//! End-to-end tests: real processes, real PostgreSQL, driven through the REST API.

#![allow(clippy::unwrap_used)]

mod concurrency;
mod failures;
mod linear;
mod operations;
mod worker;
mod workflows;
