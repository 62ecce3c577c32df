# frozen_string_literal: true

require "spec_helper"

RSpec.describe "the handler API" do
  let(:data) do
    {
      "callable" => "Demo::Handler", "task_uuid" => "t", "step_uuid" => "s", "step_name" => "ship",
      "namespace" => "payments", "task_name" => "order", "task_version" => "1.0.0",
      "correlation_id" => "c", "attempt" => 2, "max_attempts" => 3,
      "task_context" => { "order_id" => 7 }, "initialization" => { "carrier" => "x" },
      "dependency_results" => { "pay" => { "receipt" => { "id" => "r1" } }, "validate" => true },
      "parents" => ["pay"]
    }
  end

  it "exposes the same data as the Rust StepContext" do
    ctx = TaskerCore::StepContext.new(data)
    expect(ctx.task_context).to eq("order_id" => 7)
    expect(ctx.inputs).to eq("carrier" => "x")
    expect(ctx.dependency_result(:pay)).to eq("receipt" => { "id" => "r1" })
    expect(ctx.dependency_field("pay", "receipt", "id")).to eq("r1")
    expect(ctx.dependency_field("pay", "missing", "id")).to be_nil
    expect([ctx.attempt, ctx.max_attempts, ctx.retry?]).to eq([2, 3, true])
    expect([ctx.namespace, ctx.step_name, ctx.task_uuid, ctx.step_uuid]).to eq(%w[payments ship t s])
  end

  it "resolves handlers by registration, then by constant" do
    stub_const("Demo::Handler", Class.new(TaskerCore::StepHandler))
    expect(TaskerCore::Registry.resolve("Demo::Handler")).to eq(Demo::Handler)
    other = Class.new(TaskerCore::StepHandler)
    TaskerCore.register_handler("demo.other", other)
    expect(TaskerCore::Registry.resolve("demo.other")).to eq(other)
    expect { TaskerCore::Registry.resolve("Nope::Missing") }
      .to raise_error(TaskerCore::HandlerNotFoundError, /no handler class Nope::Missing/)
  ensure
    TaskerCore::Registry.clear!
  end

  it "has a native extension" do
    expect(TaskerCore::NATIVE_VERSION).to eq(TaskerCore::VERSION)
    expect(JSON.parse(TaskerCore::Native.status)).to eq("running" => false, "claiming" => false)
    # Outcomes for steps nobody waits for are ignored, not errors.
    expect(TaskerCore::Native.complete_step(999_999, "{}")).to be(false)
    expect { TaskerCore::Native.fail_step(1, "not json") }.to raise_error(ArgumentError, /not valid JSON/)
  end
end
