//! End-to-end tests: real processes, real PostgreSQL, driven through the REST API.

#![allow(clippy::unwrap_used)]

mod cli;
mod concurrency;
mod crash;
mod dev;
mod failures;
mod linear;
mod operations;
mod retention;
mod server;
mod worker;
mod workflows;
