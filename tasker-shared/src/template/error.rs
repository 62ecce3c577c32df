//! Why a template was rejected: a parse error, or every broken rule, each naming the
//! template and, where it applies, the step.

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
