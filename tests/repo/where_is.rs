//! The "Where is…" table of docs/ARCHITECTURE.md names, for each concept, a file and a
//! function (or type, constant, macro); every one of them must exist, so the table
//! cannot rot as code moves. A row is `| concept | `path` | `name` | why |`; a name may
//! be written `Type::method`, which is looked up as `fn method` in the file.

use super::{read, root};

/// (concept, path, name) of each row of the "Where is…" table.
fn rows(architecture: &str) -> Vec<(String, String, String)> {
    let Some(start) = architecture.find("## Where is") else {
        return Vec::new();
    };
    let section = &architecture[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    section
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| concept"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let unquote = |s: &str| s.trim_matches('`').to_string();
            (cells.len() >= 3).then(|| (cells[0].to_string(), unquote(cells[1]), unquote(cells[2])))
        })
        .collect()
}

/// Whether `text` defines `name` (the last `::` segment) as a function, type, constant,
/// static, macro or module.
fn defines(text: &str, name: &str) -> bool {
    let name = name.rsplit("::").next().unwrap_or(name);
    let name = name.trim_end_matches("()").trim_end_matches('!');
    ["fn ", "struct ", "enum ", "trait ", "const ", "static ", "type ", "mod "]
        .iter()
        .any(|kind| {
            text.match_indices(&format!("{kind}{name}")).any(|(i, m)| {
                let after = text[i + m.len()..].chars().next();
                !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
        || text.contains(&format!("macro_rules! {name}"))
        // A SQL file names its statement in a comment or a function it defines.
        || text.contains(&format!("-- {name}"))
        || text.to_lowercase().contains(&format!("function tasker.{}", name.to_lowercase()))
}

#[test]
fn every_place_the_where_is_table_names_exists() {
    let root = root();
    let rows = rows(&read(&root.join("docs/ARCHITECTURE.md")));
    assert!(rows.len() >= 10, "the table has only {} rows", rows.len());
    let mut broken = Vec::new();
    for (concept, path, name) in &rows {
        let file = root.join(path);
        if !file.is_file() {
            broken.push(format!("{concept}: {path} does not exist"));
        } else if !defines(&read(&file), name) {
            broken.push(format!("{concept}: {path} defines no {name}"));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_table_parser_reads_rows_and_names() {
    let doc = "# A\n\n## Where is…\n\n| concept | path | function | why |\n|---|---|---|---|\n| the claim | `a/b.rs` | `step::claim` | |\n\n## Next\n| x | `c` | `d` |\n";
    assert_eq!(
        rows(doc),
        [(
            "the claim".to_string(),
            "a/b.rs".to_string(),
            "step::claim".to_string()
        )]
    );
    assert!(defines("pub async fn claim(", "step::claim"));
    assert!(!defines("pub async fn claims(", "claim"));
    assert!(defines("pub struct WorkerBuilder {", "WorkerBuilder"));
}
