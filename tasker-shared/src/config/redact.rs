//! Showing a configuration safely: secrets replaced before it is printed or served,
//! and rendering as TOML.

use super::model::TaskerConfig;

const HIDDEN: &str = "[redacted]";

impl TaskerConfig {
    /// A copy safe to print or serve: the database password, JWT secrets and API keys are
    /// replaced with `[redacted]`.
    pub fn redacted(&self) -> TaskerConfig {
        let mut c = self.clone();
        c.database.url = redact_url_password(&c.database.url);
        if c.web.auth.jwt_hs256_secret.is_some() {
            c.web.auth.jwt_hs256_secret = Some(HIDDEN.into());
        }
        for key in &mut c.web.auth.api_keys {
            key.key = HIDDEN.into();
        }
        c
    }

    /// The configuration as TOML (redact it first when it may be shown to anyone).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n"))
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:[redacted]@host/db`.
fn redact_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let Some(at) = rest.find('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:{HIDDEN}{}",
            &url[..scheme_end],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeyConfig;

    #[test]
    fn secrets_are_hidden() {
        assert_eq!(
            redact_url_password("postgres://u:pw@h:5/db"),
            "postgres://u:[redacted]@h:5/db"
        );
        assert_eq!(
            redact_url_password("postgres://u@h/db"),
            "postgres://u@h/db"
        );
        let mut c = TaskerConfig::default();
        c.database.url = "postgres://tasker:hunter2@db/tasker".into();
        c.web.auth.jwt_hs256_secret = Some("s3cr3t".into());
        c.web.auth.api_keys.push(ApiKeyConfig {
            key: "k".repeat(20),
            name: "ci".into(),
            permissions: vec!["tasks:*".into()],
        });
        let text = c.redacted().to_toml();
        assert!(
            !text.contains("hunter2")
                && !text.contains("s3cr3t")
                && !text.contains(&"k".repeat(20)),
            "{text}"
        );
        assert!(text.contains("[redacted]"));
        assert!(text.contains("tasks:*"));
    }
}
