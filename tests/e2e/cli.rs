//! The real `tasker-cli` against a real server and worker.

use std::process::{Command, Output};

use serde_json::{Value, json};
use tasker_tests::{Cluster, ClusterOptions, bin, fixture_templates};

fn cli(cluster: &Cluster, args: &[&str]) -> Output {
    Command::new(bin("tasker-cli"))
        .arg("--url")
        .arg(&cluster.base_url)
        .args(args)
        .env_remove("TASKER_URL")
        .output()
        .unwrap()
}

fn ok_json(out: Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_wait_get_list_visualize() {
    let cluster = Cluster::start().await;
    for (template, last, expected) in [
        ("linear_workflow", "linear_step_4", json!(65536)),
        ("diamond_workflow", "diamond_end", json!(65536)),
        (
            "tree_workflow",
            "tree_final_convergence",
            json!(18446744073709551616.0),
        ),
        (
            "mixed_dag_workflow",
            "dag_finalize",
            json!(18446744073709551616.0),
        ),
    ] {
        // No --namespace: the template names are unique, so the CLI looks it up.
        let task = ok_json(cli(
            &cluster,
            &[
                "--format",
                "json",
                "-q",
                "task",
                "create",
                "--template",
                template,
                "--context",
                r#"{"even_number": 2}"#,
                "--wait",
            ],
        ));
        assert_eq!(task["status"], "complete", "{template}");
        let step = task["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == last)
            .unwrap();
        assert_eq!(step["results"]["result"], expected, "{template}");
    }

    let dir = std::env::temp_dir().join(format!("tasker-cli-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let order = dir.join("order.json");
    std::fs::write(&order, r#"{"order_id": 7, "customer_email": "a@b.c", "items": [{"sku": "X", "quantity": 1, "unit_price": 3.5}], "payment": {"method": "card", "token": "t"}}"#).unwrap();
    let task = ok_json(cli(
        &cluster,
        &[
            "--format",
            "json",
            "task",
            "create",
            "--template",
            "order_fulfillment",
            "--namespace",
            "payments",
            "--context",
            &format!("@{}", order.display()),
            "--wait",
        ],
    ));
    assert_eq!(task["status"], "complete");
    let uuid = task["task_uuid"].as_str().unwrap().to_string();

    let got = ok_json(cli(&cluster, &["--format", "json", "task", "get", &uuid]));
    assert_eq!(got["name"], "order_fulfillment");
    let listed = ok_json(cli(
        &cluster,
        &[
            "--format",
            "json",
            "task",
            "list",
            "--namespace",
            "examples",
            "--status",
            "complete",
        ],
    ));
    assert_eq!(listed["pagination"]["total_count"], 4);
    let listed = ok_json(cli(
        &cluster,
        &[
            "--format",
            "json",
            "task",
            "list",
            "--namespace",
            "payments",
        ],
    ));
    assert_eq!(listed["tasks"][0]["task_uuid"], json!(uuid));
    let steps = ok_json(cli(&cluster, &["--format", "json", "task", "steps", &uuid]));
    assert_eq!(steps.as_array().unwrap().len(), 4);
    let step = ok_json(cli(
        &cluster,
        &["--format", "json", "step", "get", &uuid, "ship_order"],
    ));
    assert_eq!(
        step["dependencies"],
        json!(["process_payment", "reserve_inventory"])
    );
    let audit = ok_json(cli(
        &cluster,
        &["--format", "json", "step", "audit", &uuid, "ship_order"],
    ));
    assert_eq!(
        audit.as_array().unwrap().last().unwrap()["to_state"],
        "complete"
    );

    // Table output works too.
    let out = cli(&cluster, &["task", "get", &uuid]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("payments/order_fulfillment:1.0.0") && text.contains("ship_order"),
        "{text}"
    );

    let mermaid = String::from_utf8(
        cli(
            &cluster,
            &["task", "visualize", &uuid, "--format", "mermaid"],
        )
        .stdout,
    )
    .unwrap();
    assert!(mermaid.starts_with("graph TD"), "{mermaid}");
    assert!(
        mermaid.contains("validate_order --> reserve_inventory"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("style ship_order fill:#9be79b"),
        "{mermaid}"
    );
    let dot =
        String::from_utf8(cli(&cluster, &["task", "visualize", &uuid, "--format", "dot"]).stdout)
            .unwrap();
    assert!(
        dot.starts_with("digraph task {") && dot.contains("\"process_payment\" -> \"ship_order\";"),
        "{dot}"
    );
    let ascii =
        String::from_utf8(cli(&cluster, &["task", "visualize", &uuid, "--format", "ascii"]).stdout)
            .unwrap();
    let lines: Vec<&str> = ascii.lines().collect();
    assert_eq!(lines.len(), 4, "{ascii}");
    assert!(
        lines[0].starts_with(" 0 [✓] validate_order (complete)"),
        "{ascii}"
    );
    assert!(
        lines[3].contains("ship_order")
            && lines[3].contains("← process_payment, reserve_inventory"),
        "{ascii}"
    );

    let templates = ok_json(cli(&cluster, &["--format", "json", "template", "list"]));
    assert_eq!(templates["namespaces"].as_array().unwrap().len(), 2);
    let tpl = ok_json(cli(
        &cluster,
        &[
            "--format",
            "json",
            "template",
            "get",
            "examples",
            "diamond_workflow",
        ],
    ));
    assert_eq!(tpl["version"], "1.0.0");
    let health = ok_json(cli(&cluster, &["--format", "json", "health"]));
    assert_eq!(health["readiness"]["status"], "ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_operator_actions_and_exit_codes() {
    let cluster = Cluster::start_with(ClusterOptions {
        templates: fixture_templates(),
        ..Default::default()
    })
    .await;

    // A failing task with --wait: exit 3 and the failing step's error.
    let out = cli(
        &cluster,
        &[
            "--format",
            "json",
            "-q",
            "task",
            "create",
            "--template",
            "permanent_failure",
            "--wait",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("step rejects_input failed after 1 attempt(s): failing on purpose"),
        "{}",
        stderr(&out)
    );
    let task: Value = serde_json::from_slice(&out.stdout).unwrap();
    let uuid = task["task_uuid"].as_str().unwrap().to_string();

    // Reset by step name; the task then completes (watch exits 0).
    let step = ok_json(cli(
        &cluster,
        &[
            "--format",
            "json",
            "step",
            "reset",
            &uuid,
            "rejects_input",
            "--reason",
            "fixed",
            "--by",
            "ops",
        ],
    ));
    assert_ne!(step["current_state"], "error");
    let done = ok_json(cli(
        &cluster,
        &["--format", "json", "-q", "task", "watch", &uuid],
    ));
    assert_eq!(done["status"], "complete");
    let audit = ok_json(cli(
        &cluster,
        &["--format", "json", "step", "audit", &uuid, "rejects_input"],
    ));
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["actor"] == "ops" && a["reason"] == "fixed")
    );

    // resolve and complete.
    for (verb, extra) in [
        ("resolve", vec![]),
        ("complete", vec!["--result", r#"{"by_hand": 1}"#]),
    ] {
        let out = cli(
            &cluster,
            &[
                "--format",
                "json",
                "-q",
                "task",
                "create",
                "--template",
                "permanent_failure",
                "--wait",
            ],
        );
        assert_eq!(out.status.code(), Some(3));
        let uuid = serde_json::from_slice::<Value>(&out.stdout).unwrap()["task_uuid"]
            .as_str()
            .unwrap()
            .to_string();
        let mut args = vec![
            "--format",
            "json",
            "step",
            verb,
            &uuid,
            "rejects_input",
            "--reason",
            "ops call",
        ];
        args.extend(extra.iter().copied());
        ok_json(cli(&cluster, &args));
        let done = ok_json(cli(
            &cluster,
            &["--format", "json", "-q", "task", "watch", &uuid],
        ));
        assert_eq!(done["status"], "complete", "{verb}");
        if verb == "complete" {
            let downstream = done["steps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == "downstream")
                .unwrap();
            assert_eq!(
                downstream["results"]["result"]["dependencies"]["rejects_input"],
                json!({"by_hand": 1})
            );
        }
    }

    // Cancel a slow task.
    let task = ok_json(cli(
        &cluster,
        &[
            "--format",
            "json",
            "task",
            "create",
            "--template",
            "slow_chain",
        ],
    ));
    let uuid = task["task_uuid"].as_str().unwrap().to_string();
    let cancelled = ok_json(cli(
        &cluster,
        &["--format", "json", "task", "cancel", &uuid],
    ));
    assert_eq!(cancelled["status"], "cancelled");
    let again = cli(&cluster, &["task", "cancel", &uuid]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(stderr(&again).contains("already cancelled"));

    // The DLQ commands.
    let blocked = ok_json(cli(
        &cluster,
        &[
            "--format",
            "json",
            "-q",
            "task",
            "create",
            "--template",
            "blocked_expires",
        ],
    ));
    let buuid = blocked["task_uuid"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !cli(&cluster, &["dlq", "get", &buuid]).status.success() {
        assert!(
            std::time::Instant::now() < deadline,
            "no DLQ entry for {buuid}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let entries = ok_json(cli(
        &cluster,
        &["--format", "json", "dlq", "list", "--status", "pending"],
    ));
    let entry = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["task_uuid"] == json!(buuid))
        .expect("an entry");
    let got = ok_json(cli(&cluster, &["--format", "json", "dlq", "get", &buuid]));
    assert_eq!(got["dlq_reason"], "staleness_timeout");
    let updated = ok_json(cli(
        &cluster,
        &[
            "--format",
            "json",
            "dlq",
            "update",
            entry["dlq_entry_uuid"].as_str().unwrap(),
            "--status",
            "permanently_failed",
            "--notes",
            "bad input",
        ],
    ));
    assert_eq!(updated["resolution_status"], "permanently_failed");

    // Exit codes: not found 2, usage 1, unreachable 4.
    let out = cli(
        &cluster,
        &["task", "get", &uuid::Uuid::now_v7().to_string()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = cli(&cluster, &["task", "get", "not-a-uuid"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not a UUID"));
    let out = cli(
        &cluster,
        &["task", "create", "--template", "no_such_template"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = cli(
        &cluster,
        &[
            "task",
            "create",
            "--template",
            "slow_chain",
            "--context",
            "{nope",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--context: the argument is not valid JSON"),
        "{}",
        stderr(&out)
    );
    let out = Command::new(bin("tasker-cli"))
        .args(["--url", "http://127.0.0.1:9", "health"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot reach the Tasker server at http://127.0.0.1:9")
            && err.contains("TASKER_URL"),
        "{err}"
    );
}

#[test]
fn template_validate_reports_each_problem_offline() {
    let dir = std::env::temp_dir().join(format!("tasker-validate-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let head = "name: t\nnamespace_name: ns\nversion: '1'\n";
    let good = write(
        "good.yaml",
        &format!("{head}steps:\n  - name: a\n    handler: {{ callable: x }}\n"),
    );
    let unknown_dep = write(
        "unknown_dep.yaml",
        &format!(
            "{head}steps:\n  - name: a\n    dependencies: [ghost]\n    handler: {{ callable: x }}\n"
        ),
    );
    let cycle = write(
        "cycle.yaml",
        &format!(
            "{head}steps:\n  - name: a\n    dependencies: [b]\n    handler: {{ callable: x }}\n  - name: b\n    dependencies: [a]\n    handler: {{ callable: x }}\n"
        ),
    );
    let dup = write(
        "dup.yaml",
        &format!(
            "{head}steps:\n  - name: a\n    handler: {{ callable: x }}\n  - name: a\n    handler: {{ callable: y }}\n"
        ),
    );
    let typo = write(
        "typo.yaml",
        &format!("{head}steps:\n  - name: a\n    handler: {{ callable: x }}\n    retries: 3\n"),
    );
    let broken = write("broken.yaml", "name: [unclosed\n");

    let run = |files: &[&String]| {
        Command::new(bin("tasker-cli"))
            .args(["template", "validate"])
            .args(files.iter().map(|f| f.as_str()))
            .output()
            .unwrap()
    };
    let out = run(&[&good]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{good}: ok (ns/t:1, 1 steps)")
    );

    let out = run(&[&unknown_dep, &cycle, &dup, &typo, &broken]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(
        lines[0],
        format!("{unknown_dep}: template 't': step 'a': depends on unknown step 'ghost'")
    );
    assert_eq!(
        lines[1],
        format!("{cycle}: template 't': step 'a': is part of a dependency cycle: a -> b -> a")
    );
    assert_eq!(
        lines[2],
        format!("{dup}: template 't': step 'a': is defined more than once")
    );
    assert!(
        lines[3].starts_with(&format!(
            "{typo}: error: line 7 column 5: unknown field `retries`"
        )),
        "{}",
        lines[3]
    );
    assert!(
        lines[4].starts_with(&format!("{broken}: error: line")),
        "{}",
        lines[4]
    );
    assert!(stderr(&out).contains("5 of 5 template file(s) invalid"));
}
