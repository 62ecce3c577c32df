//! Size limits of the production code (every crate's `src/`, but the test harness's):
//! a file over 500 lines says why at its top (a `//!` line with "longer than 500 lines
//! because"), and no function is longer than 120 lines. Functions are found in rustfmt's
//! layout: a `fn` line, and the first line after it that is `}` at the same indentation.

use std::path::{Path, PathBuf};

use super::{read, root};

const MAX_FILE_LINES: usize = 500;
const MAX_FN_LINES: usize = 120;
const FILE_REASON: &str = "longer than 500 lines because";

fn production_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | "vendor" | ".git" | "node_modules") {
                production_files(&path, out);
            }
        } else if name.ends_with(".rs")
            && path.components().any(|c| c.as_os_str() == "src")
            && !path.starts_with(root().join("tests"))
        {
            out.push(path);
        }
    }
}

/// The name of the function a line starts, with its indentation.
fn fn_start(line: &str) -> Option<(&str, &str)> {
    let indent = &line[..line.len() - line.trim_start().len()];
    let mut words = line.split_whitespace().peekable();
    while let Some(word) = words.peek() {
        let qualifier = word.starts_with("pub")
            || matches!(*word, "async" | "const" | "unsafe" | "extern" | "\"C\"");
        if !qualifier {
            break;
        }
        words.next();
    }
    if words.next()? != "fn" {
        return None;
    }
    let name = words.next()?;
    let name = &name[..name.find(['(', '<']).unwrap_or(name.len())];
    Some((indent, name))
}

/// (name, first line number, length) of each function longer than `max` lines.
fn long_functions(text: &str, max: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut long = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((indent, name)) = fn_start(line) else {
            continue;
        };
        let trimmed = line.trim_end();
        if trimmed.ends_with('}') || trimmed.ends_with(';') {
            continue;
        }
        let closing = format!("{indent}}}");
        let end = lines[i + 1..].iter().position(|l| *l == closing);
        if let Some(end) = end {
            let length = end + 2;
            if length > max {
                long.push((name.to_string(), i + 1, length));
            }
        }
    }
    long
}

#[test]
fn production_files_and_functions_stay_small() {
    let root = root();
    let mut files = Vec::new();
    production_files(&root, &mut files);
    files.sort();
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut broken = Vec::new();
    for file in &files {
        let text = read(file);
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        let lines = text.lines().count();
        let reason = text
            .lines()
            .take_while(|l| l.starts_with("//!") || l.starts_with("#!"))
            .any(|l| l.to_lowercase().contains(FILE_REASON));
        if lines > MAX_FILE_LINES && !reason {
            broken.push(format!(
                "{shown}: {lines} lines (split it, or say at its top why it is {FILE_REASON} ...)"
            ));
        }
        for (name, line, length) in long_functions(&text, MAX_FN_LINES) {
            broken.push(format!("{shown}:{line}: fn {name} is {length} lines"));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn long_functions_are_measured_from_fn_to_its_closing_brace() {
    let body = "        x();\n".repeat(5);
    let text = format!(
        "impl A {{\n    pub async fn long(\n        a: i32,\n    ) -> i32 {{\n{body}    }}\n\n    fn short() {{}}\n    fn decl();\n}}\n"
    );
    assert_eq!(long_functions(&text, 8), [("long".to_string(), 2, 9)]);
    assert!(long_functions(&text, 9).is_empty());
    assert_eq!(fn_start("pub(crate) fn x<T>()"), Some(("", "x")));
    assert_eq!(fn_start("    let fn_name = 1;"), None);
}
