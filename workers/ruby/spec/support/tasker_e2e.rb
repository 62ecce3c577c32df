# frozen_string_literal: true

require "json"
require "net/http"
require "securerandom"
require "socket"
require "open3"
require "fileutils"

# A fresh database and a real tasker-server for end-to-end specs, and the REST calls
# they make. Needs DATABASE_URL (a server where databases may be created), psql, and
# the tasker-server binary built in target/debug (the project's test command does all
# that). Include it in a describe block and call start_server / stop_processes.
module TaskerE2E
  ROOT = File.expand_path("../../../..", __dir__)
  RUBY_DIR = File.expand_path("../..", __dir__)

  module_function

  def free_port
    server = TCPServer.new("127.0.0.1", 0)
    server.addr[1]
  ensure
    server&.close
  end

  def with_database(url, name)
    base, query = url.split("?", 2)
    head = base.sub(%r{/[^/]*\z}, "")
    head = base if base.count("/") < 3
    "#{head}/#{name}#{query ? "?#{query}" : ''}"
  end

  def psql(command)
    out, status = Open3.capture2e("psql", ENV.fetch("DATABASE_URL"), "-q", "-c", command)
    raise "psql failed: #{out}" unless status.success?
  end

  def spawn_logged(name, env, *cmd, chdir: ROOT, unsetenv_others: false)
    log = File.join(ROOT, "target", "e2e-logs", "ruby-#{name}-#{SecureRandom.hex(4)}.log")
    FileUtils.mkdir_p(File.dirname(log))
    pid = Process.spawn(env, *cmd, chdir: chdir, out: log, err: log, unsetenv_others: unsetenv_others)
    [pid, log]
  end

  def wait_for(log, text, timeout: 60)
    deadline = Time.now + timeout
    until File.exist?(log) && File.read(log).include?(text)
      raise "#{log} never printed #{text.inspect}:\n#{File.exist?(log) ? File.read(log)[-3000..] : ''}" if Time.now > deadline

      sleep 0.02
    end
  end

  # Creates a database and starts tasker-server on it; sets @db, @url, @port, @env,
  # @server and @server_log.
  def start_server
    @db = "tasker_rb_#{SecureRandom.hex(6)}"
    psql("CREATE DATABASE #{@db}")
    @url = with_database(ENV.fetch("DATABASE_URL"), @db)
    @port = free_port
    @env = {
      "DATABASE_URL" => @url, "TASKER_ENV" => "test",
      "TASKER_CONFIG_DIR" => File.join(ROOT, "config/tasker"),
      "TASKER_WEB_BIND_ADDRESS" => "127.0.0.1:#{@port}"
    }
    server = File.join(ENV.fetch("CARGO_TARGET_DIR", File.join(ROOT, "target")), "debug", "tasker-server")
    @server, @server_log = spawn_logged("server", @env, server)
    wait_for(@server_log, "tasker-server listening")
  end

  # Kills the given processes and the server, and drops the database.
  def stop_processes(*pids)
    (pids + [@server]).compact.each do |pid|
      Process.kill("KILL", pid)
      Process.wait(pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end
    psql("DROP DATABASE IF EXISTS #{@db} WITH (FORCE)") if @db
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

  def wait_until(uuid, *states, log: @worker_log, timeout: 30)
    deadline = Time.now + timeout
    loop do
      _, task = api(:get, "/v1/tasks/#{uuid}")
      return task if states.include?(task["status"])
      raise "task #{uuid} is #{task['status']}, wanted #{states}:\n#{log && File.read(log)[-3000..]}" if Time.now > deadline

      sleep 0.02
    end
  end

  def result(task, step)
    task["steps"].find { |s| s["name"] == step }.fetch("results")
  end
end
