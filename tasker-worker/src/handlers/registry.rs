use std::collections::BTreeMap;
use std::sync::Arc;

use super::StepHandler;

/// Handlers by `handler.callable`.
///
/// ```
/// use async_trait::async_trait;
/// use serde_json::json;
/// use tasker_worker::handlers::{HandlerRegistry, StepContext, StepHandler, StepResult, Result};
///
/// struct Ping;
/// #[async_trait]
/// impl StepHandler for Ping {
///     async fn execute(&self, _c: StepContext) -> Result<StepResult> {
///         Ok(StepResult::success(json!("pong")))
///     }
/// }
///
/// let mut registry = HandlerRegistry::new();
/// registry.register("health::ping", Ping);
/// assert!(registry.get("health::ping").is_some());
/// assert_eq!(registry.callables().collect::<Vec<_>>(), ["health::ping"]);
/// ```
#[derive(Default, Clone)]
pub struct HandlerRegistry {
    handlers: BTreeMap<String, Arc<dyn StepHandler>>,
}

impl std::fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerRegistry")
            .field("callables", &self.handlers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl HandlerRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` under `callable`, replacing any earlier one.
    pub fn register(
        &mut self,
        callable: impl Into<String>,
        handler: impl StepHandler,
    ) -> &mut Self {
        self.handlers.insert(callable.into(), Arc::new(handler));
        self
    }

    /// The handler for `callable`.
    pub fn get(&self, callable: &str) -> Option<Arc<dyn StepHandler>> {
        self.handlers.get(callable).cloned()
    }

    /// Every registered callable.
    pub fn callables(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }
}
