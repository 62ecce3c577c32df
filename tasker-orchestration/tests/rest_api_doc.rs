//! docs/rest-api.md lists every route the server serves, and nothing it does not.

#![allow(clippy::unwrap_used)]

use tasker_orchestration::web::ROUTES;

#[test]
fn the_rest_api_doc_lists_exactly_the_routes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/rest-api.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let missing: Vec<String> = ROUTES
        .iter()
        .map(|(method, route)| format!("| `{method}` | `{route}` |"))
        .filter(|row| !doc.contains(row.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/rest-api.md lacks rows:\n{}",
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
        ROUTES.len(),
        "docs/rest-api.md has route rows the server does not serve"
    );
}
