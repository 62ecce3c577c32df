# frozen_string_literal: true

require "bigdecimal"

module Payments
  # Checks the order and totals it (exactly, with BigDecimal).
  class ValidateOrderHandler < TaskerCore::StepHandler
    def execute(context)
      order = context.task_context
      problems = []
      problems << "customer_email #{order['customer_email'].inspect} is not an email address" unless order["customer_email"].to_s.include?("@")
      items = Array(order["items"])
      problems << "the order has no items" if items.empty?
      items.each_with_index do |item, i|
        problems << "items[#{i}] (#{item['sku']}): quantity must be positive" unless item["quantity"].to_i.positive?
      end
      raise TaskerCore::PermanentError, "invalid order #{order['order_id']}: #{problems.join('; ')}" if problems.any?

      total = items.sum(BigDecimal("0")) { |i| BigDecimal(i["unit_price"].to_s) * i["quantity"] }
      { order_id: order["order_id"], total: total, item_count: items.sum { |i| i["quantity"] } }
    end
  end

  # Reserves stock; SKUs starting with OUT_OF_STOCK are never available.
  class ReserveInventoryHandler < TaskerCore::StepHandler
    def execute(context)
      items = context.task_context.fetch("items")
      missing = items.find { |i| i["sku"].start_with?("OUT_OF_STOCK") }
      raise TaskerCore::PermanentError, "sku #{missing['sku']} is out of stock" if missing

      { reservation_id: "res-#{context.task_context['order_id']}", reserved: items.map { |i| { sku: i["sku"], quantity: i["quantity"] } } }
    end
  end

  # Charges the validated total.
  class ProcessPaymentHandler < TaskerCore::StepHandler
    def execute(context)
      total = context.dependency_field("validate_order", "total")
      raise TaskerCore::PermanentError, "card declined" if context.task_context.dig("payment", "token") == "tok_declined"

      { payment_id: "pay-#{context.task_context['order_id']}", amount: total, status: :captured }
    end
  end

  # Ships once stock and payment are in.
  class ShipOrderHandler < TaskerCore::StepHandler
    def execute(context)
      payment = context.dependency_field("process_payment", "status")
      raise TaskerCore::PermanentError, "payment is #{payment}, not captured" unless payment == "captured"

      {
        order_id: context.task_context["order_id"],
        tracking_number: format("TRK%08d", context.task_context["order_id"]),
        reservation_id: context.dependency_field("reserve_inventory", "reservation_id")
      }
    end
  end
end
