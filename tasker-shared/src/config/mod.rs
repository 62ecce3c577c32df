//! Layered configuration, shared by `tasker-server` and the workers.
//!
//! Layers, later ones winning (merged with figment):
//! 1. built-in defaults (every key has one);
//! 2. `<dir>/base/{common,orchestration,worker}.toml`;
//! 3. `<dir>/environments/<TASKER_ENV>/{common,orchestration,worker}.toml`
//!    (`TASKER_ENV` is `development` when unset; `test` and `production` ship too);
//! 4. one extra file given with `--config FILE`;
//! 5. environment variables `TASKER__SECTION__KEY` (for example
//!    `TASKER__WEB__REQUEST_TIMEOUT_MS=5000`);
//! 6. the well-known variables `DATABASE_URL`, `TASKER_WEB_BIND_ADDRESS` and
//!    `TASKER_TEMPLATE_PATH`.
//!
//! `<dir>` is `TASKER_CONFIG_DIR`, else `config/tasker` under the current directory when
//! it exists; without one, only defaults and environment variables apply.
//!
//! Unknown keys, wrong types and out-of-range values stop the process with a message
//! naming the key and where its value came from.

mod load;
mod model;
mod redact;
mod validate;

pub use load::{ConfigError, ConfigSources, load, load_from};
pub use model::*;
