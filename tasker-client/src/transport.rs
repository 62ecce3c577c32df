//! How every route is called: the credentials added to each request, retries of reads
//! after transient failures, and the mapping of answers to typed values or [`Error`]s.
//!
//! Only reads are retried: a write that timed out may have been applied, and sending it
//! again could create a second task or record a second action.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use tasker_shared::api::ErrorResponse;

use crate::{Error, OrchestrationClient, Result};

impl OrchestrationClient {
    /// A request to `url` with the client's credentials.
    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, url);
        match &self.auth {
            Some((name, value)) => builder.header(name.clone(), value.clone()),
            None => builder,
        }
    }

    /// Sends a GET, retrying transient failures.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            let outcome = decode(url, self.request(reqwest::Method::GET, url).send().await).await;
            let transient = match &outcome {
                Err(Error::Connection { .. }) => true,
                Err(Error::Api { status, .. }) => matches!(status.as_u16(), 502..=504),
                _ => false,
            };
            if !transient || attempt >= self.retries {
                return outcome;
            }
            attempt += 1;
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }

    /// Sends `body` as JSON once (no retries) and decodes the answer.
    pub(crate) async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        url: &str,
        body: &B,
    ) -> Result<T> {
        let response = self.request(method, url).json(body).send().await;
        decode(url, response).await
    }

    /// Sends a request without a body once (no retries) and decodes the answer.
    pub(crate) async fn send_empty<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<T> {
        let response = self.request(method, url).send().await;
        decode(url, response).await
    }
}

/// The answer's JSON body as a `T`, or the error it carries (the server's
/// `{"error": {"code", "message"}}`, or the status and the start of the body when a proxy
/// answered).
async fn decode<T: DeserializeOwned>(
    url: &str,
    response: Result<reqwest::Response, reqwest::Error>,
) -> Result<T> {
    let response = response.map_err(|source| Error::Connection {
        url: url.to_string(),
        source,
    })?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|source| Error::Connection {
        url: url.to_string(),
        source,
    })?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            url: url.to_string(),
            reason: e.to_string(),
        });
    }
    match serde_json::from_slice::<ErrorResponse>(&bytes) {
        Ok(body) => Err(Error::Api {
            status,
            code: body.error.code,
            message: body.error.message,
            existing_task_uuid: body.error.existing_task_uuid,
        }),
        Err(_) => Err(Error::Api {
            status,
            code: status
                .canonical_reason()
                .unwrap_or("HTTP_ERROR")
                .to_uppercase()
                .replace(' ', "_"),
            message: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
            existing_task_uuid: None,
        }),
    }
}

/// Percent-encodes a query value or path segment.
pub(crate) fn encode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreachable_server_is_a_connection_error() {
        // Port 9 (discard) on loopback is closed on test machines.
        let client = OrchestrationClient::new("http://127.0.0.1:9").unwrap();
        let err = client.health_check().await.unwrap_err();
        assert!(matches!(err, Error::Connection { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("cannot reach the Tasker server at http://127.0.0.1:9/health")
        );
    }
}
