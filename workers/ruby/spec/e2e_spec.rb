# frozen_string_literal: true

require "spec_helper"
require_relative "support/tasker_e2e"

# A real tasker-server and a real Ruby worker process on a fresh database (see
# support/tasker_e2e.rb for what that needs).
RSpec.describe "a Ruby worker end to end", if: ENV["DATABASE_URL"] do
  include TaskerE2E

  ROOT = TaskerE2E::ROOT
  RUBY_DIR = TaskerE2E::RUBY_DIR

  before(:all) do
    start_server
    @health_port = free_port
    @worker, @worker_log = spawn_logged(
      "worker", @env.merge("TASKER__WORKER__HEALTH_PORT" => @health_port.to_s), RbConfig.ruby, "-I", File.join(RUBY_DIR, "lib"), File.join(RUBY_DIR, "bin/tasker-ruby-worker"),
      "--templates", File.join(RUBY_DIR, "app/tasker/tasks/templates"),
      "--require", File.join(RUBY_DIR, "app/tasker/handlers.rb"), "--worker-id", "rspec-ruby-worker"
    )
    wait_for(@worker_log, "worker running as")
  end

  after(:all) { stop_processes(@worker) }

  it "serves the worker's health endpoint when worker.health_port is set" do
    response = Net::HTTP.get_response(URI("http://127.0.0.1:#{@health_port}/health/ready"))
    expect(response.code.to_i).to eq(200)
    expect(JSON.parse(Net::HTTP.get(URI("http://127.0.0.1:#{@health_port}/health")))).to include(
      "worker_id" => "rspec-ruby-worker", "namespaces" => %w[ruby_examples ruby_payments]
    )
  end

  it "runs the linear and diamond workflows with Ruby handlers" do
    linear = create("ruby_examples", "linear_workflow", { even_number: 2 })
    diamond = create("ruby_examples", "diamond_workflow", { even_number: 2 })
    expect(result(wait_until(linear, "complete"), "linear_step_4")["result"]).to eq(65_536)
    done = wait_until(diamond, "complete")
    expect(result(done, "diamond_end")["result"]).to eq(65_536)
    expect(result(done, "diamond_end")["metadata"]["worker_id"]).to eq("rspec-ruby-worker")
  end

  it "retries a RetryableError and succeeds" do
    done = wait_until(create("ruby_examples", "flaky_then_fine", {}), "complete")
    flaky = done["steps"].first
    expect(flaky["attempts"]).to eq(2)
    expect(flaky["results"]["result"]).to eq("attempts" => 2, "finished_at" => "1970-01-01T00:00:00.000000Z")
  end

  it "blocks the task on a PermanentError after one attempt" do
    blocked = wait_until(create("ruby_examples", "always_rejected", { order_id: 9 }), "blocked_by_failures")
    step = blocked["steps"].find { |s| s["name"] == "reject" }
    expect(step["attempts"]).to eq(1)
    expect(step["results"]["error"]).to include("error_type" => "permanent_error", "retryable" => false,
                                                "message" => "order 9 is not acceptable")
  end

  it "fulfils an order, converting BigDecimal and symbols" do
    order = { order_id: 1001, customer_email: "ada@example.com",
              items: [{ sku: "BOOK-1", quantity: 2, unit_price: "12.5" }], payment: { method: "card", token: "tok" } }
    done = wait_until(create("ruby_payments", "order_fulfillment", order), "complete")
    expect(result(done, "validate_order")["result"]).to include("total" => "25.0", "item_count" => 2)
    expect(result(done, "process_payment")["result"]).to include("status" => "captured", "amount" => "25.0")
    expect(result(done, "ship_order")["result"]).to include("tracking_number" => "TRK00001001")
  end

  it "runs in process, survives GC during a handler, and shutdown! leaves no thread behind" do
    require_relative "../app/tasker/handlers"
    saved = ENV.to_h.slice("DATABASE_URL", "TASKER_ENV", "TASKER_CONFIG_DIR")
    ENV["DATABASE_URL"] = @url
    ENV["TASKER_ENV"] = "test"
    ENV["TASKER_CONFIG_DIR"] = File.join(ROOT, "config/tasker")
    before_threads = Thread.list.size
    handle = TaskerCore::Worker::Bootstrap.start!(templates: File.join(__dir__, "fixtures/templates"), threads: 2, trap_signals: false)
    expect(handle.running?).to be(true)
    expect(handle.status["namespaces"]).to eq(["ruby_inprocess"])
    uuid = create("ruby_inprocess", "slow_ruby", {})
    # Shut down while the handler runs: it finishes within the grace period and its
    # result is recorded.
    deadline = Time.now + 10
    sleep 0.01 until handle.status.dig("steps", "in_flight") == 1 || Time.now > deadline
    expect(handle.shutdown!(timeout: 30)).to be(true)
    expect(handle.running?).to be(false)
    expect(Thread.list.size).to eq(before_threads)
    done = wait_until(uuid, "complete")
    expect(result(done, "slow")["result"]).to eq("slept_ms" => 400)
    expect(handle.shutdown!).to be(true) # idempotent
  ensure
    handle&.shutdown!
    saved&.each { |k, v| ENV[k] = v }
  end

  it "refuses to start when a served template names a class that is not loaded, listing each" do
    saved = ENV.to_h.slice("DATABASE_URL", "TASKER_ENV", "TASKER_CONFIG_DIR")
    ENV["DATABASE_URL"] = @url
    ENV["TASKER_ENV"] = "test"
    ENV["TASKER_CONFIG_DIR"] = File.join(ROOT, "config/tasker")
    stub_const("Payments::NotLoaded", Class.new(TaskerCore::StepHandler))
    expect do
      TaskerCore::Worker::Bootstrap.start!(templates: File.join(ROOT, "tests/fixtures/missing_handler"), trap_signals: false)
    end.to raise_error(TaskerCore::WorkerError) { |e|
      expect(e.message).to include("refusing to start: 2 step(s)")
      expect(e.message).to include('step known: no handler for callable "builtin::noop"')
      expect(e.message).to include('step unknown: no handler for callable "nowhere::Missing"')
      expect(e.message).not_to include("Payments::NotLoaded")
    }
    expect(JSON.parse(TaskerCore::Native.status)["running"]).to be(false)
  ensure
    saved&.each { |k, v| ENV[k] = v }
  end

  it "shuts down cleanly on SIGTERM" do
    Process.kill("TERM", @worker)
    _, status = Process.wait2(@worker)
    @worker = nil
    expect(status.exitstatus).to eq(0)
    expect(File.read(@worker_log)).to include("tasker-ruby-worker: stopped")
  end
end
