//! The client and how it is built: the server's base URL, the per-request time limit,
//! the credentials sent with every request, and how often reads are retried.

use std::time::Duration;

use crate::{Error, Result};

/// A client of one Tasker server, with one method per route. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OrchestrationClient {
    pub(crate) base_url: String,
    pub(crate) http: reqwest::Client,
    /// The header sent with every request to authenticate, and its value.
    pub(crate) auth: Option<(reqwest::header::HeaderName, String)>,
    /// Retries of a read after a transient failure.
    pub(crate) retries: u32,
}

/// Options for an [`OrchestrationClient`].
///
/// ```
/// use std::time::Duration;
/// use tasker_client::OrchestrationClient;
///
/// let client = OrchestrationClient::builder("http://localhost:8080")
///     .timeout(Duration::from_secs(5))
///     .bearer_token("eyJ...")
///     .retries(3)
///     .build()
///     .unwrap();
/// assert_eq!(client.base_url(), "http://localhost:8080");
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    timeout: Duration,
    auth: Option<(reqwest::header::HeaderName, String)>,
    retries: u32,
}

impl ClientBuilder {
    /// Per-request time limit (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Authenticate with `Authorization: Bearer <token>`.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.auth = Some((
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", token.into()),
        ));
        self
    }

    /// Authenticate with `X-API-Key`.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.auth = Some((
            reqwest::header::HeaderName::from_static("x-api-key"),
            key.into(),
        ));
        self
    }

    /// Retries of idempotent calls (reads) after a connection failure or a 502/503/504,
    /// with exponential backoff from 100 ms (default 2).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Builds the client; fails if the base URL does not start with `http://` or
    /// `https://`.
    pub fn build(self) -> Result<OrchestrationClient> {
        let trimmed = self.base_url.trim_end_matches('/');
        if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
            return Err(Error::InvalidUrl {
                url: self.base_url.clone(),
                reason: "it must start with http:// or https://".into(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| Error::InvalidUrl {
                url: self.base_url.clone(),
                reason: e.to_string(),
            })?;
        Ok(OrchestrationClient {
            base_url: trimmed.to_string(),
            http,
            auth: self.auth,
            retries: self.retries,
        })
    }
}

impl OrchestrationClient {
    /// A client for `base_url` (for example `http://localhost:8080`) with default options.
    pub fn new(base_url: &str) -> Result<Self> {
        Self::builder(base_url).build()
    }

    /// A builder for a client of `base_url`.
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.to_string(),
            timeout: Duration::from_secs(30),
            auth: None,
            retries: 2,
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_urls_without_a_scheme() {
        let err = OrchestrationClient::new("localhost:8080").unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
        let ok = OrchestrationClient::new("http://localhost:8080/").unwrap();
        assert_eq!(ok.base_url(), "http://localhost:8080");
    }
}
