# frozen_string_literal: true

require "spec_helper"
require "net/http"
require "securerandom"
require "socket"
require "open3"
require "fileutils"

# A real tasker-server and a real Ruby worker process on a fresh database.
# Needs DATABASE_URL (a server where databases may be created), psql, and the
# tasker-server binary built in target/debug (the project's test command does all that).
RSpec.describe "a Ruby worker end to end", if: ENV["DATABASE_URL"] do
  ROOT = File.expand_path("../../..", __dir__)
  RUBY_DIR = File.expand_path("..", __dir__)

  def self.free_port
    server = TCPServer.new("127.0.0.1", 0)
    server.addr[1]
  ensure
    server&.close
  end

  def self.with_database(url, name)
    base, query = url.split("?", 2)
    head = base.sub(%r{/[^/]*\z}, "")
    head = base if base.count("/") < 3
    "#{head}/#{name}#{query ? "?#{query}" : ''}"
  end

  def self.psql(command)
    out, status = Open3.capture2e("psql", ENV.fetch("DATABASE_URL"), "-q", "-c", command)
    raise "psql failed: #{out}" unless status.success?
  end

  def self.spawn_logged(name, env, *cmd)
    log = File.join(ROOT, "target", "e2e-logs", "ruby-#{name}-#{SecureRandom.hex(4)}.log")
    FileUtils.mkdir_p(File.dirname(log))
    pid = Process.spawn(env, *cmd, chdir: ROOT, out: log, err: log)
    [pid, log]
  end

  def self.wait_for(log, text, timeout: 60)
    deadline = Time.now + timeout
    until File.exist?(log) && File.read(log).include?(text)
      raise "#{log} never printed #{text.inspect}:\n#{File.exist?(log) ? File.read(log)[-3000..] : ''}" if Time.now > deadline

      sleep 0.02
    end
  end

  before(:all) do
    @db = "tasker_rb_#{SecureRandom.hex(6)}"
    self.class.psql("CREATE DATABASE #{@db}")
    @url = self.class.with_database(ENV.fetch("DATABASE_URL"), @db)
    @port = self.class.free_port
    env = {
      "DATABASE_URL" => @url, "TASKER_ENV" => "test",
      "TASKER_CONFIG_DIR" => File.join(ROOT, "config/tasker"),
      "TASKER_WEB_BIND_ADDRESS" => "127.0.0.1:#{@port}"
    }
    server = File.join(ENV.fetch("CARGO_TARGET_DIR", File.join(ROOT, "target")), "debug", "tasker-server")
    @server, @server_log = self.class.spawn_logged("server", env, server)
    self.class.wait_for(@server_log, "tasker-server listening")
    @health_port = self.class.free_port
    @worker, @worker_log = self.class.spawn_logged(
      "worker", env.merge("TASKER__WORKER__HEALTH_PORT" => @health_port.to_s), RbConfig.ruby, "-I", File.join(RUBY_DIR, "lib"), File.join(RUBY_DIR, "bin/tasker-ruby-worker"),
      "--templates", File.join(RUBY_DIR, "app/tasker/tasks/templates"),
      "--require", File.join(RUBY_DIR, "app/tasker/handlers.rb"), "--worker-id", "rspec-ruby-worker"
    )
    self.class.wait_for(@worker_log, "worker running as")
  end

  after(:all) do
    [@worker, @server].compact.each do |pid|
      Process.kill("KILL", pid)
      Process.wait(pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end
    self.class.psql("DROP DATABASE IF EXISTS #{@db} WITH (FORCE)") if @db
  end

  def api(method, path, body = nil)
    http = Net::HTTP.new("127.0.0.1", @port)
    request = method == :post ? Net::HTTP::Post.new(path, "content-type" => "application/json") : Net::HTTP::Get.new(path)
    request.body = JSON.generate(body) if body
    response = http.request(request)
    [response.code.to_i, JSON.parse(response.body)]
  end

  def create(namespace, name, context)
    code, task = api(:post, "/v1/tasks", { namespace: namespace, name: name, context: context })
    raise "create failed: #{code} #{task}" unless code == 201

    task["task_uuid"]
  end

  def wait_until(uuid, *states, timeout: 30)
    deadline = Time.now + timeout
    loop do
      _, task = api(:get, "/v1/tasks/#{uuid}")
      return task if states.include?(task["status"])
      raise "task #{uuid} is #{task['status']}, wanted #{states}:\n#{File.read(@worker_log)[-3000..]}" if Time.now > deadline

      sleep 0.02
    end
  end

  def result(task, step)
    task["steps"].find { |s| s["name"] == step }.fetch("results")
  end

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

  it "shuts down cleanly on SIGTERM" do
    Process.kill("TERM", @worker)
    _, status = Process.wait2(@worker)
    @worker = nil
    expect(status.exitstatus).to eq(0)
    expect(File.read(@worker_log)).to include("tasker-ruby-worker: stopped")
  end
end
