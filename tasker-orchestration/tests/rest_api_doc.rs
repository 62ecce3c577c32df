//! docs/rest-api.md lists every route the server serves, with its permission, and nothing
//! it does not serve.

#![allow(clippy::unwrap_used)]

use tasker_orchestration::web::{Access, routes};

#[test]
fn the_rest_api_doc_lists_exactly_the_routes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/rest-api.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let missing: Vec<String> = routes()
        .iter()
        .map(|route| {
            let permission = match route.access {
                Access::Operations => "public".to_string(),
                Access::Permission(p) => format!("`{p}`"),
            };
            format!("| `{}` | `{}` | {permission} |", route.method, route.path)
        })
        .filter(|row| !doc.contains(row.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/rest-api.md lacks rows (or has another permission in them):\n{}",
        missing.join("\n")
    );
    let documented = doc
        .lines()
        .filter(|l| {
            ["GET", "POST", "PUT", "PATCH", "DELETE"]
                .iter()
                .any(|m| l.starts_with(&format!("| `{m}` | `/")))
        })
        .count();
    assert_eq!(
        documented,
        routes().len(),
        "docs/rest-api.md has route rows the server does not serve"
    );
}
