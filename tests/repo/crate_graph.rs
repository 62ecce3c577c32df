//! The crate graph holds what each crate's `lib.rs` (or `main.rs`) says it must not
//! depend on: the sentence "... must not depend on `a`, `b` or `c`." in its `//!` block
//! is read, and `cargo tree -p <crate>` (normal and build dependencies, the crate's own
//! default features, as a user building it alone gets) must contain none of them.

use std::path::Path;
use std::process::Command;

use super::{read, root};

/// Every library crate of the workspace and the file that opens it.
const CRATES: &[(&str, &str)] = &[
    ("pgmq-notify", "pgmq-notify/src/lib.rs"),
    ("tasker-shared", "tasker-shared/src/lib.rs"),
    ("tasker-orchestration", "tasker-orchestration/src/lib.rs"),
    ("tasker-server", "tasker-server/src/main.rs"),
    ("tasker-worker", "tasker-worker/src/lib.rs"),
    ("tasker-client", "tasker-client/src/lib.rs"),
    ("tasker-worker-rust", "workers/rust/src/lib.rs"),
    ("tasker_core", "workers/ruby/ext/tasker_core/src/lib.rs"),
];

/// The crates named (in backticks) by the first "must not depend on" sentence of the
/// file's `//!` block.
fn forbidden(path: &Path) -> Vec<String> {
    let doc: String = read(path)
        .lines()
        .take_while(|l| l.starts_with("//!") || l.trim().is_empty() || l.starts_with("#!"))
        .filter_map(|l| l.strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join(" ");
    let Some(at) = doc.find("must not depend on") else {
        return Vec::new();
    };
    let sentence = &doc[at..];
    let sentence = &sentence[..sentence.find(". ").unwrap_or(sentence.len())];
    sentence
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The packages `cargo tree -p package` lists (normal and build edges).
fn dependency_closure(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root())
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "-f",
            "{p}",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_crate_says_what_it_must_not_depend_on_and_it_holds() {
    let root = root();
    let mut broken = Vec::new();
    for (package, file) in CRATES {
        let names = forbidden(&root.join(file));
        if names.is_empty() {
            broken.push(format!(
                "{file}: its //! block has no \"must not depend on `...`\" sentence"
            ));
            continue;
        }
        // The Ruby extension needs Ruby's headers to resolve build scripts only, not
        // to list its tree; it is still checked.
        let closure = dependency_closure(package);
        for name in &names {
            if closure.iter().any(|dep| dep == name) {
                broken.push(format!(
                    "{package} depends on `{name}`, which {file} forbids"
                ));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_orchestration_links_no_worker_crate() {
    let closure = dependency_closure("tasker-orchestration");
    for worker in [
        "tasker-worker",
        "tasker-worker-rust",
        "tasker_core",
        "magnus",
    ] {
        assert!(
            !closure.iter().any(|d| d == worker),
            "tasker-orchestration depends on {worker}"
        );
    }
    assert!(closure.iter().any(|d| d == "tasker-shared"), "{closure:?}");
}

#[test]
fn the_sentence_parser_reads_backticked_names() {
    let dir = std::env::temp_dir().join(format!("crate-graph-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lib.rs");
    std::fs::write(
        &file,
        "//! Owns things.\n//! It must not depend on `a-b`, `c`\n//! or `d`. Other `e`.\n\npub fn x() {}\n",
    )
    .unwrap();
    assert_eq!(forbidden(&file), ["a-b", "c", "d"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
