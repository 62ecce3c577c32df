//! The Ruby phase: the linear-4 task with no-op Ruby handlers, served by a
//! `tasker-ruby-worker` process next to the Rust worker, so the two latencies come from
//! the same run. Skipped when Ruby or the built extension is missing.

use std::time::Duration;

use tasker_tests::{Cluster, Proc, workspace_root};
use uuid::Uuid;

/// The namespace and template the Ruby worker serves.
pub const NAMESPACE: &str = "bench_ruby";
pub const TEMPLATE: &str = "bench_ruby_linear";

/// Starts the Ruby worker, or says why it cannot.
pub async fn start_worker(cluster: &Cluster) -> Result<Proc, String> {
    let root = workspace_root();
    let ruby_dir = root.join("workers/ruby");
    let built = ["so", "bundle"].iter().any(|ext| {
        ruby_dir
            .join(format!("lib/tasker_core/tasker_core.{ext}"))
            .is_file()
    });
    if std::process::Command::new("ruby")
        .arg("-v")
        .output()
        .is_err()
    {
        return Err("ruby is not installed".into());
    }
    if !built {
        return Err(
            "the Ruby extension is not built (rake -f workers/ruby/Rakefile compile)".into(),
        );
    }
    let dir = std::env::temp_dir().join(format!("tasker-bench-ruby-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut template = format!(
        "name: {TEMPLATE}\nnamespace_name: {NAMESPACE}\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n"
    );
    for i in 1..=4 {
        template.push_str(&format!(
            "  - name: br_{i}\n    handler: {{ callable: BenchRubyNoop }}\n"
        ));
        if i > 1 {
            template.push_str(&format!("    dependencies: [br_{}]\n", i - 1));
        }
    }
    std::fs::write(dir.join(format!("{TEMPLATE}.yaml")), template).map_err(|e| e.to_string())?;
    let handler = dir.join("handlers.rb");
    std::fs::write(
        &handler,
        "class BenchRubyNoop < TaskerCore::StepHandler\n  def execute(_context)\n    {}\n  end\nend\n",
    )
    .map_err(|e| e.to_string())?;
    let args = [
        "-I".to_string(),
        ruby_dir.join("lib").display().to_string(),
        ruby_dir
            .join("bin/tasker-ruby-worker")
            .display()
            .to_string(),
        "--templates".into(),
        dir.display().to_string(),
        "--require".into(),
        handler.display().to_string(),
        "--worker-id".into(),
        "bench-ruby".into(),
    ];
    let mut worker = Proc::spawn(
        "ruby-worker",
        std::path::Path::new("ruby"),
        &args,
        cluster.env(),
        &cluster.log_dir,
    );
    worker
        .wait_for_line("worker running as", Duration::from_secs(60))
        .await;
    Ok(worker)
}
