//! Finding a dependency cycle among a template's steps, reported as the path around it.

use std::collections::BTreeMap;

use super::model::TaskTemplate;

/// A dependency cycle, as a path that starts and ends at the same step.
pub(super) fn find_cycle(t: &TaskTemplate) -> Option<Vec<String>> {
    let deps: BTreeMap<&str, Vec<&str>> = t
        .steps
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.dependencies
                    .iter()
                    .map(String::as_str)
                    .filter(|d| *d != s.name)
                    .collect(),
            )
        })
        .collect();
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut mark: BTreeMap<&str, u8> = BTreeMap::new();
    let mut path: Vec<&str> = Vec::new();

    fn visit<'a>(
        node: &'a str,
        deps: &BTreeMap<&'a str, Vec<&'a str>>,
        mark: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match mark.get(node).copied().unwrap_or(0) {
            2 => return None,
            1 => {
                let start = path.iter().position(|n| *n == node).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        mark.insert(node, 1);
        path.push(node);
        for dep in deps.get(node).into_iter().flatten() {
            if deps.contains_key(dep)
                && let Some(cycle) = visit(dep, deps, mark, path)
            {
                return Some(cycle);
            }
        }
        path.pop();
        mark.insert(node, 2);
        None
    }

    for name in deps.keys() {
        if let Some(cycle) = visit(name, &deps, &mut mark, &mut path) {
            return Some(cycle);
        }
    }
    None
}
