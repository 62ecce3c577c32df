//! The `payments` example: order fulfillment with business-like handlers.
//!
//! `validate_order → {reserve_inventory, process_payment} → ship_order`.
//!
//! The task context is an order:
//! ```json
//! {"order_id": 1001, "customer_email": "ada@example.com",
//!  "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price": 12.5}],
//!  "payment": {"method": "card", "token": "tok_visa"},
//!  "simulate": {"inventory_timeouts": 0, "gateway_errors": 0}}
//! ```
//! Bad orders fail permanently with every problem listed. `simulate` injects transient
//! faults: the first N attempts of a step fail retryably, as a flaky service would.
//! Identifiers are derived from the order id, so results are reproducible.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use tasker_worker::handlers::{
    HandlerRegistry, Result, ResultExt, StepContext, StepError, StepHandler, StepResult,
};

/// Registers the four handlers under `payments::<name>`.
pub fn register(registry: &mut HandlerRegistry) {
    registry
        .register("payments::validate_order", ValidateOrder)
        .register("payments::reserve_inventory", ReserveInventory)
        .register("payments::process_payment", ProcessPayment)
        .register("payments::ship_order", ShipOrder);
}

#[derive(Debug, Deserialize)]
struct Order {
    order_id: u64,
    customer_email: String,
    items: Vec<Item>,
    payment: Payment,
    #[serde(default)]
    simulate: Simulate,
}

#[derive(Debug, Deserialize)]
struct Item {
    sku: String,
    quantity: i64,
    unit_price: f64,
}

#[derive(Debug, Deserialize)]
struct Payment {
    method: String,
    token: String,
}

#[derive(Debug, Default, Deserialize)]
struct Simulate {
    #[serde(default)]
    inventory_timeouts: i32,
    #[serde(default)]
    gateway_errors: i32,
}

fn order(context: &StepContext) -> Result<Order> {
    serde_json::from_value(context.task_context().clone())
        .map_err(|e| StepError::permanent(format!("the task context is not an order: {e}")))
}

fn total(items: &[Item]) -> f64 {
    let cents: i64 = items
        .iter()
        .map(|i| i.quantity * (i.unit_price * 100.0).round() as i64)
        .sum();
    cents as f64 / 100.0
}

/// Checks the order; returns its total.
#[derive(Debug)]
pub struct ValidateOrder;

#[async_trait]
impl StepHandler for ValidateOrder {
    async fn execute(&self, context: StepContext) -> Result<StepResult> {
        let order = order(&context)?;
        let mut problems = Vec::new();
        if !order.customer_email.contains('@') {
            problems.push(format!(
                "customer_email {:?} is not an email address",
                order.customer_email
            ));
        }
        if order.items.is_empty() {
            problems.push("the order has no items".to_string());
        }
        for (i, item) in order.items.iter().enumerate() {
            if item.quantity <= 0 {
                problems.push(format!(
                    "items[{i}] ({}): quantity must be positive, got {}",
                    item.sku, item.quantity
                ));
            }
            if item.unit_price.is_nan() || item.unit_price < 0.0 {
                problems.push(format!(
                    "items[{i}] ({}): unit_price must not be negative",
                    item.sku
                ));
            }
        }
        if !["card", "invoice"].contains(&order.payment.method.as_str()) {
            problems.push(format!(
                "payment.method {:?} is not card or invoice",
                order.payment.method
            ));
        }
        if !problems.is_empty() {
            return Err(StepError::permanent(format!(
                "invalid order {}: {}",
                order.order_id,
                problems.join("; ")
            )));
        }
        Ok(StepResult::success(json!({
            "order_id": order.order_id,
            "total": total(&order.items),
            "item_count": order.items.iter().map(|i| i.quantity).sum::<i64>(),
        })))
    }
}

/// Reserves stock for every line.
#[derive(Debug)]
pub struct ReserveInventory;

#[async_trait]
impl StepHandler for ReserveInventory {
    async fn execute(&self, context: StepContext) -> Result<StepResult> {
        let order = order(&context)?;
        if context.attempt() <= order.simulate.inventory_timeouts {
            return Err(StepError::retryable(format!(
                "inventory service timed out (simulated, attempt {})",
                context.attempt()
            )));
        }
        if let Some(item) = order
            .items
            .iter()
            .find(|i| i.sku.starts_with("OUT_OF_STOCK"))
        {
            return Err(StepError::permanent(format!(
                "sku {} is out of stock",
                item.sku
            )));
        }
        let reserved: Vec<Value> = order
            .items
            .iter()
            .map(|i| json!({"sku": i.sku, "quantity": i.quantity}))
            .collect();
        Ok(StepResult::success(json!({
            "reservation_id": format!("res-{}", order.order_id),
            "reserved": reserved,
        })))
    }
}

/// Charges the validated total.
#[derive(Debug)]
pub struct ProcessPayment;

#[async_trait]
impl StepHandler for ProcessPayment {
    async fn execute(&self, context: StepContext) -> Result<StepResult> {
        let order = order(&context)?;
        let amount = context
            .dependency_field("validate_order", &["total"])
            .and_then(Value::as_f64)
            .ok_or("validate_order did not report a total")
            .permanent()?;
        if context.attempt() <= order.simulate.gateway_errors {
            return Err(StepError::retry_after(
                format!(
                    "payment gateway answered 503 (simulated, attempt {})",
                    context.attempt()
                ),
                Duration::from_millis(200),
            ));
        }
        if order.payment.token == "tok_declined" {
            return Err(StepError::permanent(format!(
                "card declined for order {}",
                order.order_id
            )));
        }
        Ok(StepResult::success(json!({
            "payment_id": format!("pay-{}", order.order_id),
            "amount": amount,
            "method": order.payment.method,
            "status": "captured",
        })))
    }
}

/// Ships once stock is reserved and payment captured.
#[derive(Debug)]
pub struct ShipOrder;

#[async_trait]
impl StepHandler for ShipOrder {
    async fn execute(&self, context: StepContext) -> Result<StepResult> {
        let order = order(&context)?;
        let reservation = context
            .dependency_field("reserve_inventory", &["reservation_id"])
            .and_then(Value::as_str)
            .ok_or("reserve_inventory did not report a reservation_id")
            .permanent()?;
        let payment = context
            .dependency_field("process_payment", &["status"])
            .and_then(Value::as_str)
            .ok_or("process_payment did not report a status")
            .permanent()?;
        if payment != "captured" {
            return Err(StepError::permanent(format!(
                "payment is {payment}, not captured"
            )));
        }
        Ok(StepResult::success(json!({
            "order_id": order.order_id,
            "tracking_number": format!("TRK{:08}", order.order_id),
            "carrier": "tasker-post",
            "reservation_id": reservation,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasker_worker::testing::run_step;

    fn good_order() -> Value {
        json!({
            "order_id": 1001,
            "customer_email": "ada@example.com",
            "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price": 12.5}, {"sku": "PEN", "quantity": 1, "unit_price": 0.1}],
            "payment": {"method": "card", "token": "tok_visa"}
        })
    }

    #[tokio::test]
    async fn validate_reports_every_problem() {
        let ok = run_step(
            ValidateOrder,
            StepContext::builder("validate_order")
                .task_context(good_order())
                .build(),
        )
        .await;
        assert_eq!(
            ok.result,
            json!({"order_id": 1001, "total": 25.1, "item_count": 3})
        );
        let mut bad = good_order();
        bad["customer_email"] = json!("nobody");
        bad["items"][0]["quantity"] = json!(0);
        bad["payment"]["method"] = json!("barter");
        let r = run_step(
            ValidateOrder,
            StepContext::builder("validate_order")
                .task_context(bad)
                .build(),
        )
        .await;
        let e = r.error.unwrap();
        assert!(!e.retryable);
        assert!(e.message.contains("not an email address"), "{}", e.message);
        assert!(
            e.message
                .contains("items[0] (BOOK-1): quantity must be positive"),
            "{}",
            e.message
        );
        assert!(e.message.contains("barter"), "{}", e.message);
        let r = run_step(
            ValidateOrder,
            StepContext::builder("validate_order")
                .task_context(json!({"x": 1}))
                .build(),
        )
        .await;
        assert!(
            r.error
                .unwrap()
                .message
                .starts_with("the task context is not an order")
        );
    }

    #[tokio::test]
    async fn transient_faults_are_retryable_and_stock_outs_are_not() {
        let mut order = good_order();
        order["simulate"] = json!({"inventory_timeouts": 1, "gateway_errors": 2});
        let r = run_step(
            ReserveInventory,
            StepContext::builder("reserve_inventory")
                .task_context(order.clone())
                .build(),
        )
        .await;
        assert!(r.error.unwrap().retryable);
        let r = run_step(
            ReserveInventory,
            StepContext::builder("reserve_inventory")
                .task_context(order.clone())
                .attempt(2, 3)
                .build(),
        )
        .await;
        assert_eq!(r.result["reservation_id"], json!("res-1001"));

        let paid = StepContext::builder("process_payment")
            .task_context(order.clone())
            .parent_result("validate_order", json!({"total": 25.1}));
        let r = run_step(ProcessPayment, paid.clone().attempt(2, 3).build()).await;
        let e = r.error.unwrap();
        assert_eq!((e.retryable, e.retry_after_ms), (true, Some(200)));
        let r = run_step(ProcessPayment, paid.attempt(3, 3).build()).await;
        assert_eq!(r.result["status"], json!("captured"));

        order["items"][0]["sku"] = json!("OUT_OF_STOCK-9");
        let r = run_step(
            ReserveInventory,
            StepContext::builder("reserve_inventory")
                .task_context(order)
                .attempt(2, 3)
                .build(),
        )
        .await;
        let e = r.error.unwrap();
        assert!(!e.retryable);
        assert_eq!(e.message, "sku OUT_OF_STOCK-9 is out of stock");
    }
}
