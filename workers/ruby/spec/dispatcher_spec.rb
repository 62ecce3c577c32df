# frozen_string_literal: true

require "spec_helper"

# Runs events through the dispatcher as the bridge does, capturing what goes back to Rust.
module DispatchHelpers
  def dispatch(callable, task_context: {}, dependencies: {}, attempt: 1)
    outcome = nil
    allow(TaskerCore::Native).to receive(:complete_step) { |_id, json| outcome = { "success" => true, "result" => JSON.parse(json) } }
    allow(TaskerCore::Native).to receive(:fail_step) { |_id, json| outcome = JSON.parse(json).merge("success" => false) }
    event = {
      "event_id" => 1,
      "context" => {
        "callable" => callable, "task_uuid" => "t", "step_uuid" => "s", "step_name" => "step",
        "namespace" => "ns", "task_name" => "task", "task_version" => "1", "correlation_id" => "c",
        "attempt" => attempt, "max_attempts" => 3, "task_context" => task_context, "initialization" => {},
        "dependency_results" => dependencies, "parents" => dependencies.keys
      }
    }
    TaskerCore::Worker::Dispatcher.handle(JSON.generate(event))
    outcome
  end
end

RSpec.describe TaskerCore::Worker::Dispatcher do
  include DispatchHelpers

  before do
    stub_const("Spec::Ok", Class.new(TaskerCore::StepHandler) { def execute(_c) = { at: Time.utc(2026, 1, 1), ok: :yes } })
    stub_const("Spec::Boom", Class.new(TaskerCore::StepHandler) { def execute(_c) = raise(KeyError, "missing key") })
    stub_const("Spec::Bad", Class.new(TaskerCore::StepHandler) { def execute(_c) = { thing: Object.new } })
  end

  it "sends results converted to JSON" do
    expect(dispatch("Spec::Ok")).to eq("success" => true, "result" => { "at" => "2026-01-01T00:00:00.000000Z", "ok" => "yes" })
  end

  it "treats other exceptions as retryable, with class and backtrace" do
    out = dispatch("Spec::Boom")
    expect(out).to include("success" => false, "retryable" => true, "error_type" => "KeyError", "error_class" => "KeyError", "message" => "missing key")
    expect(out["backtrace"]).to be_an(Array).and(be_any)
  end

  it "fails permanently on unconvertible results and missing classes" do
    out = dispatch("Spec::Bad")
    expect(out).to include("success" => false, "retryable" => false, "error_type" => "conversion_error")
    expect(out["message"]).to match(/result\.thing is a Object/)
    out = dispatch("Spec::Missing")
    expect(out).to include("success" => false, "retryable" => false, "error_type" => "handler_not_found")
  end
end

# The same behavioural cases as tasker-worker/tests/conformance.rs, with Ruby handlers.
RSpec.describe "handler conformance with the Rust API" do
  include DispatchHelpers

  handlers = {
    "returns_a_value" => ->(c) { { doubled: c.task_context["n"] * 2 } },
    "reads_a_dependency_field" => ->(c) { { user_id: c.dependency_field("load", "user", "id") } },
    "retryable_with_delay" => ->(_c) { raise TaskerCore::RetryableError.new("busy", retry_after: 1.5) },
    "permanent" => ->(_c) { raise TaskerCore::PermanentError, "bad input" },
    "sees_its_attempt" => ->(c) { { attempt: c.attempt, retry: c.retry? } }
  }
  cases = JSON.parse(File.read(File.expand_path("../../../tests/conformance/handler_cases.json", __dir__)))

  it "covers every case" do
    expect(handlers.keys.sort).to eq(cases.map { |c| c["case"] }.sort)
  end

  cases.each do |kase|
    it kase["case"] do
      body = handlers.fetch(kase["case"])
      stub_const("Conformance::Handler", Class.new(TaskerCore::StepHandler) { define_method(:execute) { |c| body.call(c) } })
      out = dispatch("Conformance::Handler", task_context: kase.fetch("context", {}),
                                             dependencies: kase.fetch("dependencies", {}),
                                             attempt: kase.fetch("attempt", 1))
      kase["expect"].each { |key, want| expect(out[key]).to eq(want), "#{key}: #{out.inspect}" }
    end
  end
end
