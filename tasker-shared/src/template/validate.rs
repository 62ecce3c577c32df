//! The rules a template must follow: names and sizes of the template and of each step,
//! sane retry and lifecycle settings, dependencies on known steps and no cycle. Every
//! problem is reported, not just the first.

use std::collections::BTreeSet;

use super::cycle::find_cycle;
use super::error::{TemplateError, TemplateProblem};
use super::model::{LifecycleConfig, StepDefinition, TaskTemplate};

/// `s` is 1-`max` bytes of a-z, 0-9, '_' or one of `extra`.
fn is_ident(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || extra.contains(&b)
        })
}

/// The longest staleness limit a template may set: ten years, in minutes.
const MAX_LIFECYCLE_MINUTES: u32 = 10 * 365 * 24 * 60;

/// Checks every rule; the problems come in order: the template's own fields, then each
/// step's, then a cycle.
pub(super) fn validate(t: &TaskTemplate, source: &str) -> Result<(), TemplateError> {
    let mut problems: Vec<TemplateProblem> = template_problems(t)
        .into_iter()
        .map(|message| TemplateProblem {
            step: None,
            message,
        })
        .collect();
    problems.extend(step_problems(t));
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

/// The template's own fields: its name, namespace and version, that it has steps, and its
/// lifecycle limits.
fn template_problems(t: &TaskTemplate) -> Vec<String> {
    let mut problems = Vec::new();
    if !is_ident(&t.name, 64, b"-") {
        problems.push(format!(
            "name {:?} must be 1-64 characters of a-z, 0-9, '_' or '-'",
            t.name
        ));
    }
    if !is_ident(&t.namespace_name, 29, b"") {
        problems.push(format!(
            "namespace_name {:?} must be 1-29 characters of a-z, 0-9 or '_'",
            t.namespace_name
        ));
    }
    if !is_version(&t.version) {
        problems.push(format!(
            "version {:?} must be 1-32 characters of letters, digits, '.', '_', '+' or '-'",
            t.version
        ));
    }
    if t.steps.is_empty() {
        problems.push("has no steps".to_string());
    }
    if let Some(lifecycle) = &t.lifecycle {
        problems.extend(lifecycle_problems(lifecycle));
    }
    problems
}

/// `v` is 1-32 bytes of letters, digits, '.', '_', '+' or '-'.
fn is_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 32
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

/// Each staleness limit is at most ten years.
fn lifecycle_problems(lifecycle: &LifecycleConfig) -> Vec<String> {
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
    limits
        .into_iter()
        .filter(|(_, value)| value.is_some_and(|m| m > MAX_LIFECYCLE_MINUTES))
        .map(|(field, _)| {
            format!("lifecycle.{field} must be at most {MAX_LIFECYCLE_MINUTES} (ten years)")
        })
        .collect()
}

/// Every step's problems, step by step, each naming its step.
fn step_problems(t: &TaskTemplate) -> Vec<TemplateProblem> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for step in &t.steps {
        let mut messages = Vec::new();
        if !is_ident(&step.name, 128, b"-.") {
            messages.push("name must be 1-128 characters of a-z, 0-9, '_', '-' or '.'".to_string());
        }
        if !seen.insert(step.name.as_str()) {
            messages.push("is defined more than once".to_string());
        }
        messages.extend(handler_problems(step));
        messages.extend(retry_problems(step));
        if step.timeout_seconds == Some(0) {
            messages.push("timeout_seconds must be at least 1".to_string());
        }
        messages.extend(dependency_problems(t, step));
        problems.extend(messages.into_iter().map(|message| TemplateProblem {
            step: Some(step.name.clone()),
            message,
        }));
    }
    problems
}

/// The handler names a callable and its initialization is a mapping.
fn handler_problems(step: &StepDefinition) -> Vec<String> {
    let mut problems = Vec::new();
    let callable = step.handler.callable.trim();
    if callable.is_empty() || callable.len() > 255 {
        problems.push("handler.callable must be 1-255 characters".to_string());
    }
    if !step.handler.initialization.is_object() {
        problems.push("handler.initialization must be a mapping".to_string());
    }
    problems
}

/// 1-1000 attempts, and a first backoff delay no longer than the longest, which fits an
/// `i32` of milliseconds.
fn retry_problems(step: &StepDefinition) -> Vec<String> {
    let retry = &step.retry;
    let mut problems = Vec::new();
    if retry.max_attempts == 0 {
        problems.push("retry.max_attempts must be at least 1".to_string());
    }
    if retry.max_attempts > 1000 {
        problems.push("retry.max_attempts must be at most 1000".to_string());
    }
    if retry.backoff_base_ms > retry.max_backoff_ms {
        problems.push(format!(
            "retry.backoff_base_ms ({}) is larger than retry.max_backoff_ms ({})",
            retry.backoff_base_ms, retry.max_backoff_ms
        ));
    }
    if retry.max_backoff_ms > i32::MAX as u64 {
        problems.push("retry.max_backoff_ms is too large".to_string());
    }
    problems
}

/// Each dependency names another step of the template, once.
fn dependency_problems(t: &TaskTemplate, step: &StepDefinition) -> Vec<String> {
    let mut problems = Vec::new();
    let mut deps = BTreeSet::new();
    for dep in &step.dependencies {
        if dep == &step.name {
            problems.push("depends on itself".to_string());
        } else if !t.steps.iter().any(|s| &s.name == dep) {
            problems.push(format!("depends on unknown step '{dep}'"));
        }
        if !deps.insert(dep.as_str()) {
            problems.push(format!("lists dependency '{dep}' twice"));
        }
    }
    problems
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
