//! Checks of the repository itself, with no database: the docs' relative links resolve,
//! the docs date results by date and commit rather than by numbered stretches of work,
//! and docker-compose.yml and the Dockerfiles it names refer only to things that exist.
//! Docker does not run in CI, so this is what keeps them honest.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;

mod crate_graph;
mod tidy;
mod where_is;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The targets of markdown links `[text](target)` in `text`, outside code blocks.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].trim().to_string());
            rest = &after[end..];
        }
    }
    targets
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = root();
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        for target in link_targets(&read(file)) {
            let target = target.split_whitespace().next().unwrap_or("");
            if target.is_empty()
                || target.starts_with('#')
                || target.contains("://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let path = target.split('#').next().unwrap();
            checked += 1;
            if !file.parent().unwrap().join(path).exists() {
                broken.push(format!("{}: {target}", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(
        checked > 10,
        "only {checked} links found: is the parser broken?"
    );
}

#[test]
fn the_link_parser_finds_links_and_skips_code() {
    let text = "see [a](a.md) and [b](../b.md#x)\n```\n[c](c.md)\n```\n[d](https://x)";
    assert_eq!(link_targets(text), ["a.md", "../b.md#x", "https://x"]);
}

/// The Dockerfiles docker-compose.yml builds, checked to exist.
fn compose_dockerfiles(root: &Path) -> Vec<PathBuf> {
    let compose: Value = serde_saphyr::from_str(&read(&root.join("docker-compose.yml")))
        .expect("docker-compose.yml parses");
    let services = compose["services"]
        .as_object()
        .expect("docker-compose.yml has services");
    for name in [
        "postgres",
        "migrate",
        "tasker-server",
        "rust-worker",
        "ruby-worker",
    ] {
        assert!(services.contains_key(name), "service {name} is missing");
    }
    let mut dockerfiles = Vec::new();
    for (name, service) in services {
        assert!(
            service["image"].is_string() || service["build"].is_object(),
            "service {name} has neither image nor build"
        );
        if let Some(build) = service["build"].as_object() {
            let context = root.join(build["context"].as_str().unwrap_or("."));
            let file = context.join(build["dockerfile"].as_str().unwrap_or("Dockerfile"));
            assert!(
                file.is_file(),
                "service {name}: {} is missing",
                file.display()
            );
            dockerfiles.push(file);
        }
        for (dependency, _) in service["depends_on"].as_object().into_iter().flatten() {
            assert!(
                services.contains_key(dependency),
                "service {name} depends on unknown {dependency}"
            );
        }
    }
    dockerfiles
}

/// Whether package `package` of the workspace has a binary `bin`.
fn workspace_has_bin(root: &Path, package: &str, bin: &str) -> bool {
    let manifest: Value = toml_manifest(&root.join("Cargo.toml"));
    let members = manifest["workspace"]["members"].as_array().unwrap();
    members.iter().filter_map(Value::as_str).any(|member| {
        let dir = root.join(member);
        let m = toml_manifest(&dir.join("Cargo.toml"));
        if m["package"]["name"].as_str() != Some(package) {
            return false;
        }
        let declared = m["bin"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|b| b["name"].as_str() == Some(bin));
        declared
            || dir.join("src/bin").join(bin).join("main.rs").is_file()
            || dir.join("src/bin").join(format!("{bin}.rs")).is_file()
    })
}

fn toml_manifest(path: &Path) -> Value {
    let text = read(path);
    let value: toml::Value = toml::from_str(&text).unwrap();
    serde_json::to_value(value).unwrap()
}

#[test]
fn compose_and_dockerfiles_refer_to_what_exists() {
    let root = root();
    let mut dockerfiles = compose_dockerfiles(&root);
    dockerfiles.sort();
    dockerfiles.dedup();
    assert_eq!(dockerfiles.len(), 3, "{dockerfiles:?}");
    for dockerfile in dockerfiles {
        let text = read(&dockerfile).replace("\\\n", " ");
        let name = dockerfile.display().to_string();
        assert!(
            text.lines().filter(|l| l.starts_with("FROM ")).count() >= 2,
            "{name}: not multi-stage"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("USER ") && !l.contains("root")),
            "{name}: does not drop root"
        );
        assert!(text.contains("HEALTHCHECK"), "{name}: no healthcheck");
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first() == Some(&"COPY") && words.len() >= 3 {
                // COPY [--from=build] SRC... DEST: sources are repository paths, or
                // /src/<repository path> in the build stage.
                for source in &words[1..words.len() - 1] {
                    if source.starts_with("--") || *source == "." {
                        continue;
                    }
                    if words[1].starts_with("--from") {
                        if let Some(path) = source.strip_prefix("/src/") {
                            let built = path.ends_with(".so") || path.starts_with("target/");
                            assert!(
                                built || root.join(path).exists(),
                                "{name}: copies missing {path}"
                            );
                        }
                    } else {
                        assert!(
                            root.join(source).exists(),
                            "{name}: copies missing {source}"
                        );
                    }
                }
            }
            if let Some(i) = words.iter().position(|w| *w == "-p") {
                let package = words[i + 1];
                let bin = words
                    .iter()
                    .position(|w| *w == "--bin")
                    .map(|j| words[j + 1])
                    .unwrap_or_else(|| panic!("{name}: `-p {package}` without --bin"));
                assert!(
                    workspace_has_bin(&root, package, bin),
                    "{name}: no binary {bin} in package {package}"
                );
                assert!(
                    text.contains(&format!("target/release/{bin}")),
                    "{name}: does not install {bin}"
                );
            }
            if words.first() == Some(&"RUN") && line.contains("rake -f ") {
                let rakefile = line.split("rake -f ").nth(1).unwrap();
                let rakefile = rakefile.split_whitespace().next().unwrap();
                assert!(root.join(rakefile).is_file(), "{name}: no {rakefile}");
            }
        }
        // Paths under /app/ in the final image come from the repository.
        for (image_path, repo_path) in [
            (
                "/app/bin/tasker-ruby-worker",
                "workers/ruby/bin/tasker-ruby-worker",
            ),
            (
                "/app/app/tasker/handlers.rb",
                "workers/ruby/app/tasker/handlers.rb",
            ),
            (
                "/app/app/tasker/tasks/templates",
                "workers/ruby/app/tasker/tasks/templates",
            ),
            ("/app/config/tasks", "config/tasks"),
        ] {
            if text.contains(image_path) {
                assert!(
                    root.join(repo_path).exists(),
                    "{name}: {repo_path} is missing"
                );
            }
        }
    }
}

/// Ordinals that, before "session", name a stretch of the team's work.
const ORDINALS: [&str; 12] = [
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
    "eleventh", "twelfth",
];

/// Words that, before "session", point at a stretch of work relative to the text.
const RELATIVE: [&str; 5] = ["this", "earlier", "previous", "next", "last"];

/// Words that, after "session", make it PostgreSQL's session ("the next session
/// settings", "last session level"), not a stretch of work.
const POSTGRES_AFTER: [&str; 10] = [
    "settings",
    "setting",
    "level",
    "mode",
    "variable",
    "variables",
    "parameter",
    "parameters",
    "role",
    "lock",
];

/// Whether `word` is a numeric ordinal such as "9th" or "21st".
fn numeric_ordinal(word: &str) -> bool {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && ["st", "nd", "rd", "th"].contains(&suffix)
}

/// The phrases of `line` that date something by a numbered or relative stretch of the
/// team's work ("the ninth session's run", "session 9", "this session"), which mean
/// nothing to a reader. Words are runs of letters, digits and `_`, so
/// `session_replication_role` is one word and never "session".
fn work_stretch_phrases(line: &str) -> Vec<String> {
    // A `,` or `.` between digits belongs to its number: "session, 2,000 calls" does not
    // read as "session 2".
    let chars: Vec<char> = line.to_lowercase().chars().collect();
    let lower: String = (0..chars.len())
        .map(|i| {
            let c = chars[i];
            let between_digits = i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(char::is_ascii_digit);
            if (c == ',' || c == '.') && between_digits {
                '_'
            } else {
                c
            }
        })
        .collect();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut found = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if *word != "session" {
            continue;
        }
        let next = words.get(i + 1).copied().unwrap_or("");
        if POSTGRES_AFTER.contains(&next) {
            continue;
        }
        let prev = i.checked_sub(1).map_or("", |j| words[j]);
        if ORDINALS.contains(&prev) || numeric_ordinal(prev) || RELATIVE.contains(&prev) {
            found.push(format!("{prev} session"));
        }
        if !next.is_empty() && next.chars().all(|c| c.is_ascii_digit()) {
            found.push(format!("session {next}"));
        }
    }
    found
}

/// docs/**/*.md, and every README.md and CHANGELOG.md outside target/ and vendor/.
fn prose_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let name = path.file_name().unwrap().to_string_lossy();
            // Symbolic links are not followed, so a link cannot loop the walk.
            if entry.file_type().unwrap().is_dir() {
                if !["target", "vendor", ".git", "node_modules"].contains(&name.as_ref()) {
                    walk(&path, files);
                }
            } else {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(root, &mut files);
    files.retain(|path| {
        let name = path.file_name().unwrap();
        name == "README.md"
            || name == "CHANGELOG.md"
            || (path.starts_with(root.join("docs")) && path.extension().is_some_and(|e| e == "md"))
    });
    files.sort();
    files
}

#[test]
fn the_docs_date_results_by_date_and_commit_not_by_work_sessions() {
    let root = root();
    let files = prose_files(&root);
    for expected in ["README.md", "CHANGELOG.md", "docs/benchmarks.md"] {
        assert!(
            files.contains(&root.join(expected)),
            "{expected} is not scanned: {files:?}"
        );
    }
    let mut hits = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&root).unwrap();
        for (n, line) in read(file).lines().enumerate() {
            for phrase in work_stretch_phrases(line) {
                hits.push(format!("{}:{}: \"{phrase}\"", relative.display(), n + 1));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "numbered or relative work sessions mean nothing to a reader; date results by \
         date (YYYY-MM-DD) and commit instead:\n{}",
        hits.join("\n")
    );
}

#[test]
fn work_stretch_phrases_are_found_and_postgres_sessions_are_not() {
    for (line, expected) in [
        (
            "One run of 2026-11-28 (ninth session, at commit edf0319)",
            "ninth session",
        ),
        ("below the eighth session's run (2,493)", "eighth session"),
        ("## Earlier runs (First Session)", "first session"),
        ("measured in the 9th session", "9th session"),
        ("as in session 9", "session 9"),
        ("the runs of session 12.", "session 12"),
        ("This session's change is the handoff", "this session"),
        ("across this session's runs", "this session"),
        ("as the earlier session found", "earlier session"),
        ("left for the next session", "next session"),
    ] {
        assert_eq!(work_stretch_phrases(line), [expected], "{line}");
    }
    for line in [
        "connections run with Tasker's session settings (`database::SESSION_SETTINGS`)",
        "SET session_replication_role = replica",
        "one advisory lock per session",
        "The LISTEN connection needs a session of its own, through a pooler in **session** mode.",
        "A session-level advisory lock on a dedicated connection",
        "Timed in a loop (one session, 2,000–5,000 calls)",
        "the next session settings apply",
        "runs of 2026-11-28 at commit a9002a4; the first run of the day",
    ] {
        assert!(
            work_stretch_phrases(line).is_empty(),
            "{line}: {:?}",
            work_stretch_phrases(line)
        );
    }
}
