//! Loading templates from disk and registering them in the database.
//!
//! Every `*.yaml` / `*.yml` file under the template path (recursively) is parsed and
//! validated. A broken file is reported with its path and the exact problem and does not
//! stop the others from loading.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sqlx::PgPool;

use tasker_shared::database::named_task::{self, RegisterOutcome};
use tasker_shared::template::TaskTemplate;

use crate::error::{Error, Result};

/// A template and the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedTemplate {
    /// The file.
    pub path: PathBuf,
    /// The validated template.
    pub template: TaskTemplate,
}

/// Loads, validates and registers templates.
#[derive(Debug, Clone)]
pub struct TaskTemplateManager {
    path: PathBuf,
    templates: Vec<LoadedTemplate>,
    problems: Vec<String>,
}

impl TaskTemplateManager {
    /// A manager for the templates under `path` (a directory or a single file).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            templates: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Reads every template file. Fails only if the path itself cannot be read; broken
    /// files are listed in [`problems`](Self::problems).
    pub async fn load_templates(&mut self) -> Result<()> {
        let mut files = Vec::new();
        collect_yaml_files(&self.path, &mut files).map_err(|e| {
            Error::Templates(format!(
                "cannot read template path {}: {e}",
                self.path.display()
            ))
        })?;
        files.sort();
        self.templates.clear();
        self.problems.clear();
        let mut seen = BTreeSet::new();
        for file in files {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    self.problems
                        .push(format!("{}: cannot read: {e}", file.display()));
                    continue;
                }
            };
            match TaskTemplate::from_yaml(&text, &file.display().to_string()) {
                Ok(template) => {
                    let key = template.full_name();
                    if !seen.insert(key.clone()) {
                        self.problems.push(format!(
                            "{}: template {key} is also defined in another file; this copy is ignored",
                            file.display()
                        ));
                        continue;
                    }
                    self.templates.push(LoadedTemplate {
                        path: file,
                        template,
                    });
                }
                Err(e) => self.problems.push(e.to_string()),
            }
        }
        Ok(())
    }

    /// The templates that loaded.
    pub fn templates(&self) -> &[LoadedTemplate] {
        &self.templates
    }

    /// One message per file that did not load.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// A loaded template by name (the newest version if several).
    pub fn get_template(&self, name: &str) -> Option<&TaskTemplate> {
        self.templates
            .iter()
            .map(|t| &t.template)
            .rfind(|t| t.name == name)
    }

    /// The namespaces of the loaded templates.
    pub fn namespaces(&self) -> BTreeSet<String> {
        self.templates
            .iter()
            .map(|t| t.template.namespace_name.clone())
            .collect()
    }

    /// Registers every loaded template. Unchanged templates write nothing.
    pub async fn register_all(&self, pool: &PgPool) -> Result<Vec<(String, RegisterOutcome)>> {
        let mut out = Vec::with_capacity(self.templates.len());
        for loaded in &self.templates {
            let outcome = named_task::register(pool, &loaded.template).await?;
            out.push((loaded.template.full_name(), outcome));
        }
        Ok(out)
    }
}

fn collect_yaml_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let p = entry.path();
        if entry.file_type()?.is_dir() {
            collect_yaml_files(&p, out)?;
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loads_recursively_and_reports_broken_files() {
        let dir = std::env::temp_dir().join(format!("tasker-tmpl-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("nested")).unwrap();
        let good = "name: a\nnamespace_name: ns\nversion: '1'\nsteps:\n  - name: s\n    handler: { callable: builtin::noop }\n";
        std::fs::write(dir.join("a.yaml"), good).unwrap();
        std::fs::write(dir.join("nested/b.yml"), good.replace("name: a", "name: b")).unwrap();
        std::fs::write(dir.join("nested/broken.yaml"), "name: [").unwrap();
        std::fs::write(
            dir.join("nested/cycle.yaml"),
            "name: c\nnamespace_name: ns\nversion: '1'\nsteps:\n  - name: s\n    dependencies: [s]\n    handler: { callable: x }\n",
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();

        let mut m = TaskTemplateManager::new(&dir);
        m.load_templates().await.unwrap();
        let names: Vec<_> = m
            .templates()
            .iter()
            .map(|t| t.template.name.clone())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(m.problems().len(), 2, "{:?}", m.problems());
        assert!(m.problems().iter().any(|p| p.contains("broken.yaml")));
        assert!(
            m.problems()
                .iter()
                .any(|p| p.contains("cycle.yaml") && p.contains("step 's': depends on itself")),
            "{:?}",
            m.problems()
        );
        assert_eq!(m.namespaces().into_iter().collect::<Vec<_>>(), ["ns"]);
        assert!(m.get_template("b").is_some());

        let mut missing = TaskTemplateManager::new(dir.join("nope"));
        let err = missing.load_templates().await.unwrap_err();
        assert!(
            err.to_string().contains("cannot read template path"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
