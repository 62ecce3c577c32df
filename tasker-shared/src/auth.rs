//! The permission vocabulary: `resource:action`, with `resource:*` as a wildcard.

/// Every permission the API checks.
pub const PERMISSIONS: &[&str] = &[
    "tasks:create",
    "tasks:read",
    "tasks:list",
    "tasks:cancel",
    "steps:read",
    "steps:resolve",
    "templates:read",
    "dlq:read",
    "dlq:update",
    "system:config_read",
];

/// Checks a permission or wildcard against the vocabulary.
pub fn validate_permission(p: &str) -> Result<(), String> {
    if PERMISSIONS.contains(&p) {
        return Ok(());
    }
    if let Some(resource) = p.strip_suffix(":*")
        && PERMISSIONS
            .iter()
            .any(|known| known.split(':').next() == Some(resource))
    {
        return Ok(());
    }
    Err(format!(
        "unknown permission {p:?}; known: {}, or resource:* for a whole resource",
        PERMISSIONS.join(", ")
    ))
}

/// Whether `granted` (which may hold wildcards) includes `required`.
pub fn grants(granted: &[String], required: &str) -> bool {
    let resource = required.split(':').next().unwrap_or_default();
    granted
        .iter()
        .any(|g| g == required || g.strip_suffix(":*") == Some(resource))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_resource() {
        let g = vec!["tasks:*".to_string(), "dlq:read".to_string()];
        assert!(grants(&g, "tasks:create"));
        assert!(grants(&g, "dlq:read"));
        assert!(!grants(&g, "dlq:update"));
        assert!(!grants(&g, "steps:read"));
        assert!(validate_permission("steps:*").is_ok());
        assert!(validate_permission("*").is_err());
        assert!(
            validate_permission("tasks:explode")
                .unwrap_err()
                .contains("unknown permission")
        );
    }
}
