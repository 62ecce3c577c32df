//! Checks of the repository itself, with no database: the docs' relative links resolve,
//! and docker-compose.yml and the Dockerfiles it names refer only to things that exist.
//! Docker does not run in CI, so this is what keeps them honest.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;

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
