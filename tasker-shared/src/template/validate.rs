use std::collections::{BTreeMap, BTreeSet};

use super::model::TaskTemplate;

/// One thing wrong with a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    /// The step concerned, when the problem is with a step.
    pub step: Option<String>,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.step {
            Some(step) => write!(f, "step '{step}': {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Why a template was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The YAML could not be read into a template.
    #[error("{origin}: {message}")]
    Parse {
        /// Where the template came from (a file path, say).
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The template parsed but breaks the rules.
    #[error("{origin}: template '{template}' is invalid:\n{}", format_problems(.problems))]
    Invalid {
        /// Where the template came from (a file path, say).
        origin: String,
        /// The template's name.
        template: String,
        /// Every problem found, one per line.
        problems: Vec<TemplateProblem>,
    },
}

fn format_problems(problems: &[TemplateProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || extra.contains(&b)
        })
}

/// The longest staleness limit a template may set: ten years, in minutes.
const MAX_LIFECYCLE_MINUTES: u32 = 10 * 365 * 24 * 60;

pub(super) fn validate(t: &TaskTemplate, source: &str) -> Result<(), TemplateError> {
    let mut problems = Vec::new();
    let mut top = |message: String| {
        problems.push(TemplateProblem {
            step: None,
            message,
        })
    };

    if !is_ident(&t.name, 64, b"-") {
        top(format!(
            "name {:?} must be 1-64 characters of a-z, 0-9, '_' or '-'",
            t.name
        ));
    }
    if !is_ident(&t.namespace_name, 29, b"") {
        top(format!(
            "namespace_name {:?} must be 1-29 characters of a-z, 0-9 or '_'",
            t.namespace_name
        ));
    }
    if t.version.is_empty()
        || t.version.len() > 32
        || !t
            .version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
    {
        top(format!(
            "version {:?} must be 1-32 characters of letters, digits, '.', '_', '+' or '-'",
            t.version
        ));
    }
    if t.steps.is_empty() {
        top("has no steps".to_string());
    }
    if let Some(lifecycle) = &t.lifecycle {
        let limits = [
            ("max_blocked_minutes", lifecycle.max_blocked_minutes),
            (
                "max_waiting_for_dependencies_minutes",
                lifecycle.max_waiting_for_dependencies_minutes,
            ),
            (
                "max_waiting_for_retry_minutes",
                lifecycle.max_waiting_for_retry_minutes,
            ),
            (
                "max_steps_in_process_minutes",
                lifecycle.max_steps_in_process_minutes,
            ),
        ];
        for (field, value) in limits {
            if value.is_some_and(|m| m > MAX_LIFECYCLE_MINUTES) {
                top(format!(
                    "lifecycle.{field} must be at most {MAX_LIFECYCLE_MINUTES} (ten years)"
                ));
            }
        }
    }

    let mut step_problem = |step: &str, message: String| {
        problems.push(TemplateProblem {
            step: Some(step.to_string()),
            message,
        })
    };

    let mut seen = BTreeSet::new();
    for step in &t.steps {
        if !is_ident(&step.name, 128, b"-.") {
            step_problem(
                &step.name,
                "name must be 1-128 characters of a-z, 0-9, '_', '-' or '.'".to_string(),
            );
        }
        if !seen.insert(step.name.as_str()) {
            step_problem(&step.name, "is defined more than once".to_string());
        }
        let callable = step.handler.callable.trim();
        if callable.is_empty() || callable.len() > 255 {
            step_problem(
                &step.name,
                "handler.callable must be 1-255 characters".to_string(),
            );
        }
        if !step.handler.initialization.is_object() {
            step_problem(
                &step.name,
                "handler.initialization must be a mapping".to_string(),
            );
        }
        if step.retry.max_attempts == 0 {
            step_problem(
                &step.name,
                "retry.max_attempts must be at least 1".to_string(),
            );
        }
        if step.retry.max_attempts > 1000 {
            step_problem(
                &step.name,
                "retry.max_attempts must be at most 1000".to_string(),
            );
        }
        if step.retry.backoff_base_ms > step.retry.max_backoff_ms {
            step_problem(
                &step.name,
                format!(
                    "retry.backoff_base_ms ({}) is larger than retry.max_backoff_ms ({})",
                    step.retry.backoff_base_ms, step.retry.max_backoff_ms
                ),
            );
        }
        if step.retry.max_backoff_ms > i32::MAX as u64 {
            step_problem(&step.name, "retry.max_backoff_ms is too large".to_string());
        }
        if step.timeout_seconds == Some(0) {
            step_problem(&step.name, "timeout_seconds must be at least 1".to_string());
        }
        let mut deps = BTreeSet::new();
        for dep in &step.dependencies {
            if dep == &step.name {
                step_problem(&step.name, "depends on itself".to_string());
            } else if !t.steps.iter().any(|s| &s.name == dep) {
                step_problem(&step.name, format!("depends on unknown step '{dep}'"));
            }
            if !deps.insert(dep.as_str()) {
                step_problem(&step.name, format!("lists dependency '{dep}' twice"));
            }
        }
    }

    if let Some(cycle) = find_cycle(t) {
        problems.push(TemplateProblem {
            step: Some(cycle[0].clone()),
            message: format!("is part of a dependency cycle: {}", cycle.join(" -> ")),
        });
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(TemplateError::Invalid {
            origin: source.to_string(),
            template: t.name.clone(),
            problems,
        })
    }
}

/// A dependency cycle, as a path that starts and ends at the same step.
fn find_cycle(t: &TaskTemplate) -> Option<Vec<String>> {
    let deps: BTreeMap<&str, Vec<&str>> = t
        .steps
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.dependencies
                    .iter()
                    .map(String::as_str)
                    .filter(|d| *d != s.name)
                    .collect(),
            )
        })
        .collect();
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut mark: BTreeMap<&str, u8> = BTreeMap::new();
    let mut path: Vec<&str> = Vec::new();

    fn visit<'a>(
        node: &'a str,
        deps: &BTreeMap<&'a str, Vec<&'a str>>,
        mark: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match mark.get(node).copied().unwrap_or(0) {
            2 => return None,
            1 => {
                let start = path.iter().position(|n| *n == node).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        mark.insert(node, 1);
        path.push(node);
        for dep in deps.get(node).into_iter().flatten() {
            if deps.contains_key(dep)
                && let Some(cycle) = visit(dep, deps, mark, path)
            {
                return Some(cycle);
            }
        }
        path.pop();
        mark.insert(node, 2);
        None
    }

    for name in deps.keys() {
        if let Some(cycle) = visit(name, &deps, &mut mark, &mut path) {
            return Some(cycle);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::TaskTemplate;
    use super::*;

    fn parse(yaml: &str) -> Result<TaskTemplate, TemplateError> {
        TaskTemplate::from_yaml(yaml, "t.yaml")
    }

    fn problems(yaml: &str) -> Vec<String> {
        match parse(yaml) {
            Err(TemplateError::Invalid { problems, .. }) => {
                problems.iter().map(|p| p.to_string()).collect()
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    const HEAD: &str = "name: wf\nnamespace_name: ns\nversion: 1.0.0\n";

    #[test]
    fn valid_template_parses_with_defaults() {
        let t = parse(&format!(
            "{HEAD}steps:\n  - name: a\n    handler: {{ callable: builtin::noop }}\n  - name: b\n    depends_on: [a]\n    handler: {{ callable: x, initialization: {{ ms: 5 }} }}\n"
        ))
        .unwrap();
        assert_eq!(t.steps[1].dependencies, vec!["a"]);
        assert_eq!(t.steps[0].retry.max_attempts, 3);
        assert_eq!(t.steps[1].handler.initialization["ms"], 5);
        let order: Vec<_> = t
            .topological_order()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        assert_eq!(order, ["a", "b"]);
    }

    #[test]
    fn unknown_dependency_names_template_and_step() {
        let err = parse(&format!(
            "{HEAD}steps:\n  - name: a\n    dependencies: [ghost]\n    handler: {{ callable: x }}\n"
        ))
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("t.yaml"), "{text}");
        assert!(text.contains("template 'wf'"), "{text}");
        assert!(
            text.contains("step 'a': depends on unknown step 'ghost'"),
            "{text}"
        );
    }

    #[test]
    fn duplicate_step_names() {
        let p = problems(&format!(
            "{HEAD}steps:\n  - name: a\n    handler: {{ callable: x }}\n  - name: a\n    handler: {{ callable: y }}\n"
        ));
        assert_eq!(p, ["step 'a': is defined more than once"]);
    }

    #[test]
    fn cycles_are_reported_with_their_path() {
        let p = problems(&format!(
            "{HEAD}steps:\n  - name: a\n    dependencies: [c]\n    handler: {{ callable: x }}\n  - name: b\n    dependencies: [a]\n    handler: {{ callable: x }}\n  - name: c\n    dependencies: [b]\n    handler: {{ callable: x }}\n"
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("dependency cycle: a -> c -> b -> a"), "{p:?}");
        let p = problems(&format!(
            "{HEAD}steps:\n  - name: a\n    dependencies: [a]\n    handler: {{ callable: x }}\n"
        ));
        assert_eq!(p, ["step 'a': depends on itself"]);
    }

    #[test]
    fn bad_names_and_settings_are_all_reported() {
        let p = problems(
            "name: Bad Name\nnamespace_name: way_too_long_namespace_name_here\nversion: ''\nsteps:\n  - name: a\n    handler: { callable: '' }\n    retry: { max_attempts: 0, backoff_base_ms: 10, max_backoff_ms: 5 }\n    timeout_seconds: 0\n",
        );
        assert_eq!(p.len(), 7, "{p:#?}");
        assert!(p[0].starts_with("name \"Bad Name\""));
        assert!(p[1].starts_with("namespace_name"));
        assert!(p[2].starts_with("version"));
        assert!(
            p.iter()
                .any(|m| m == "step 'a': handler.callable must be 1-255 characters")
        );
        assert!(
            p.iter()
                .any(|m| m == "step 'a': retry.max_attempts must be at least 1")
        );
        assert!(
            p.iter()
                .any(|m| m.contains("backoff_base_ms (10) is larger"))
        );
        assert!(
            p.iter()
                .any(|m| m == "step 'a': timeout_seconds must be at least 1")
        );
    }

    #[test]
    fn lifecycle_limits_must_be_sane() {
        let p = problems(&format!(
            "{HEAD}lifecycle: {{ max_blocked_minutes: 0, max_waiting_for_retry_minutes: 4000000000, max_steps_in_process_minutes: 5256000 }}\nsteps:\n  - name: a\n    handler: {{ callable: x }}\n"
        ));
        assert_eq!(
            p,
            ["lifecycle.max_waiting_for_retry_minutes must be at most 5256000 (ten years)"]
        );
    }

    #[test]
    fn parse_errors_say_where() {
        let err = parse(&format!(
            "{HEAD}steps:\n  - name: a\n    handler: {{ callable: x }}\n    retries: 3\n"
        ))
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("t.yaml: "), "{text}");
        assert!(text.contains("retries"), "{text}");
        assert!(matches!(err, TemplateError::Parse { .. }));
        let err = parse("name: [unclosed").unwrap_err();
        assert!(matches!(err, TemplateError::Parse { .. }));
    }

    #[test]
    fn no_steps_is_invalid() {
        assert_eq!(problems(&format!("{HEAD}steps: []\n")), ["has no steps"]);
    }
}
