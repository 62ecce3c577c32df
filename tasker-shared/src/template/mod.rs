//! Task templates: the YAML description of a workflow, and its validation.
//!
//! ```
//! use tasker_shared::template::TaskTemplate;
//!
//! let yaml = r#"
//! name: hello
//! namespace_name: examples
//! version: 1.0.0
//! steps:
//!   - name: greet
//!     handler: { callable: builtin::noop }
//! "#;
//! let template = TaskTemplate::from_yaml(yaml, "hello.yaml").unwrap();
//! assert_eq!(template.steps[0].name, "greet");
//! ```

mod cycle;
mod error;
mod model;
mod validate;

pub use error::{TemplateError, TemplateProblem};
pub use model::{
    BackoffKind, HandlerDefinition, IdentityStrategy, LifecycleConfig, RetryPolicy, StepDefinition,
    TaskTemplate,
};
