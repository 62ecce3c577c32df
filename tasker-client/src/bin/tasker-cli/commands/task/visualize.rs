//! `tasker-cli task visualize`: the DAG with each step's state.

use std::collections::BTreeMap;

use tasker_shared::api::StepResponse;
use tasker_shared::state_machine::WorkflowStepState;

use crate::Ctx;
use crate::commands::uuid_arg;
use crate::output::{CliError, Format};

/// Arguments of `task visualize`. The drawing comes from the global `--format`:
/// `mermaid`, `dot`, or `ascii` (also for the default `table`); `json` prints the steps
/// with their dependencies.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task's UUID.
    task: String,
}

/// Draws the task.
pub async fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let task = ctx.client.get_task(uuid_arg("task", &args.task)?).await?;
    let text = match ctx.format {
        Format::Mermaid => mermaid(&task.steps),
        Format::Dot => dot(&task.steps),
        Format::Ascii | Format::Table => ascii(&task.steps),
        Format::Json => {
            let nodes: Vec<serde_json::Value> = task
                .steps
                .iter()
                .map(|s| serde_json::json!({"name": s.name, "state": s.current_state, "dependencies": s.dependencies}))
                .collect();
            return crate::output::json(&nodes);
        }
    };
    print!("{text}");
    Ok(())
}

fn id(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn color(state: WorkflowStepState) -> &'static str {
    use WorkflowStepState::*;
    match state {
        Complete | ResolvedManually => "#9be79b",
        Error => "#f29b9b",
        Cancelled => "#d0d0d0",
        InProgress | Enqueued | EnqueuedForOrchestration | EnqueuedAsErrorForOrchestration => {
            "#f5e08c"
        }
        WaitingForRetry => "#f5c28c",
        Pending => "#ffffff",
    }
}

fn mermaid(steps: &[StepResponse]) -> String {
    let mut out = String::from("graph TD\n");
    for s in steps {
        out.push_str(&format!(
            "    {}[\"{}<br/>{}\"]\n",
            id(&s.name),
            s.name,
            s.current_state
        ));
    }
    for s in steps {
        for parent in &s.dependencies {
            out.push_str(&format!("    {} --> {}\n", id(parent), id(&s.name)));
        }
    }
    for s in steps {
        out.push_str(&format!(
            "    style {} fill:{}\n",
            id(&s.name),
            color(s.current_state)
        ));
    }
    out
}

fn dot(steps: &[StepResponse]) -> String {
    let mut out = String::from(
        "digraph task {\n    rankdir=TB;\n    node [shape=box, style=\"rounded,filled\"];\n",
    );
    for s in steps {
        out.push_str(&format!(
            "    \"{}\" [label=\"{}\\n{}\", fillcolor=\"{}\"];\n",
            s.name,
            s.name,
            s.current_state,
            color(s.current_state)
        ));
    }
    for s in steps {
        for parent in &s.dependencies {
            out.push_str(&format!("    \"{parent}\" -> \"{}\";\n", s.name));
        }
    }
    out.push_str("}\n");
    out
}

fn mark(state: WorkflowStepState) -> &'static str {
    use WorkflowStepState::*;
    match state {
        Complete => "[✓]",
        ResolvedManually => "[~]",
        Error => "[✗]",
        Cancelled => "[-]",
        WaitingForRetry => "[↻]",
        InProgress | Enqueued | EnqueuedForOrchestration | EnqueuedAsErrorForOrchestration => "[…]",
        Pending => "[ ]",
    }
}

/// Steps by depth (the longest path from a root), each with its parents.
fn ascii(steps: &[StepResponse]) -> String {
    let by_name: BTreeMap<&str, &StepResponse> =
        steps.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
    fn level<'a>(
        name: &'a str,
        by: &BTreeMap<&'a str, &'a StepResponse>,
        memo: &mut BTreeMap<&'a str, usize>,
        guard: usize,
    ) -> usize {
        if let Some(d) = memo.get(name) {
            return *d;
        }
        let d = match by.get(name) {
            Some(s) if guard < 1000 => s
                .dependencies
                .iter()
                .map(|p| level(p, by, memo, guard + 1) + 1)
                .max()
                .unwrap_or(0),
            _ => 0,
        };
        memo.insert(name, d);
        d
    }
    for s in steps {
        level(&s.name, &by_name, &mut depth, 0);
    }
    let deepest = depth.values().copied().max().unwrap_or(0);
    let mut out = String::new();
    for d in 0..=deepest {
        let mut names: Vec<&&str> = depth
            .iter()
            .filter(|(_, v)| **v == d)
            .map(|(k, _)| k)
            .collect();
        names.sort();
        for (i, name) in names.iter().enumerate() {
            let s = by_name[**name];
            let lead = if i == 0 {
                format!("{d:>2} ")
            } else {
                "   ".to_string()
            };
            let parents = if s.dependencies.is_empty() {
                String::new()
            } else {
                format!("  ← {}", s.dependencies.join(", "))
            };
            out.push_str(&format!(
                "{lead}{} {} ({}){parents}\n",
                mark(s.current_state),
                s.name,
                s.current_state
            ));
        }
    }
    out
}
