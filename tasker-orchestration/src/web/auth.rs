//! Authentication and authorization of API requests.
//!
//! Credentials are a bearer JWT (RS256 or HS256; issuer, audience and expiry checked,
//! permissions in a configurable claim) or an `X-API-Key`. Each route declares what it
//! needs in its `#[utoipa::path]` ([`super::routing`]); [`required_permission`] looks it up.
//! `resource:*` grants every action on a resource. Without credentials a protected route
//! answers 401, without the permission 403.

use std::collections::HashMap;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};

use tasker_shared::auth::grants;
use tasker_shared::config::AuthConfig;

use super::{Access, ApiError, AppState, routing};

/// Who made a request, and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The JWT subject or the API key's name.
    pub subject: String,
    /// Granted permissions (may hold wildcards).
    pub permissions: Vec<String>,
}

/// Checks credentials against the configuration.
#[derive(Clone)]
pub struct Authenticator {
    enabled: bool,
    public_operations: bool,
    keys: Vec<(Algorithm, DecodingKey)>,
    issuer: String,
    audience: String,
    permissions_claim: String,
    api_keys: HashMap<[u8; 32], (String, Vec<String>)>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("enabled", &self.enabled)
            .field(
                "jwt_algorithms",
                &self.keys.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
            )
            .field("api_keys", &self.api_keys.len())
            .finish()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl Authenticator {
    /// An authenticator that lets everything through (auth disabled).
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            public_operations: true,
            keys: Vec::new(),
            issuer: String::new(),
            audience: String::new(),
            permissions_claim: "permissions".into(),
            api_keys: HashMap::new(),
        }
    }

    /// Builds from `[web.auth]`; errors name the key that is wrong.
    pub fn from_config(c: &AuthConfig) -> Result<Self, String> {
        let has_credentials = c.jwt_public_key.is_some()
            || c.jwt_public_key_path.is_some()
            || c.jwt_hs256_secret.is_some()
            || !c.api_keys.is_empty();
        if c.enabled && !has_credentials {
            return Err("web.auth.enabled is true but no credentials are accepted: set web.auth.jwt_public_key_path \
                 (TASKER__WEB__AUTH__JWT_PUBLIC_KEY_PATH), jwt_public_key, jwt_hs256_secret or api_keys"
                .into());
        }
        let mut keys = Vec::new();
        let pem = match (&c.jwt_public_key, &c.jwt_public_key_path) {
            (Some(inline), _) => Some((inline.clone(), "web.auth.jwt_public_key".to_string())),
            (None, Some(path)) => Some((
                std::fs::read_to_string(path).map_err(|e| {
                    format!(
                        "web.auth.jwt_public_key_path: cannot read {}: {e}",
                        path.display()
                    )
                })?,
                "web.auth.jwt_public_key_path".to_string(),
            )),
            (None, None) => None,
        };
        if let Some((pem, key)) = pem {
            let decoding = DecodingKey::from_rsa_pem(pem.as_bytes())
                .map_err(|e| format!("{key}: not an RSA public key in PEM form: {e}"))?;
            keys.push((Algorithm::RS256, decoding));
        }
        if let Some(secret) = &c.jwt_hs256_secret {
            if secret.len() < 16 {
                return Err("web.auth.jwt_hs256_secret: must be at least 16 characters".into());
            }
            keys.push((
                Algorithm::HS256,
                DecodingKey::from_secret(secret.as_bytes()),
            ));
        }
        let api_keys = c
            .api_keys
            .iter()
            .map(|k| {
                let name = if k.name.is_empty() {
                    "api-key".to_string()
                } else {
                    k.name.clone()
                };
                (digest(&k.key), (name, k.permissions.clone()))
            })
            .collect();
        Ok(Self {
            enabled: c.enabled,
            public_operations: c.public_health_and_metrics,
            keys,
            issuer: c.jwt_issuer.clone(),
            audience: c.jwt_audience.clone(),
            permissions_claim: c.permissions_claim.clone(),
            api_keys,
        })
    }

    /// Whether requests are checked at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The principal behind the request's credentials.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        if let Some(key) = headers.get("x-api-key") {
            let key = key
                .to_str()
                .map_err(|_| ApiError::Unauthorized("X-API-Key is not valid text".into()))?;
            return match self.api_keys.get(&digest(key)) {
                Some((name, permissions)) => Ok(Principal {
                    subject: name.clone(),
                    permissions: permissions.clone(),
                }),
                None => Err(ApiError::Unauthorized(
                    "the X-API-Key is not recognised".into(),
                )),
            };
        }
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(ApiError::Unauthorized(
                "credentials required: send Authorization: Bearer <JWT> or X-API-Key".into(),
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(|| ApiError::Unauthorized("Authorization must be `Bearer <JWT>`".into()))?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| ApiError::Unauthorized(format!("the bearer token is not a JWT: {e}")))?;
        let key = self
            .keys
            .iter()
            .find(|(alg, _)| *alg == header.alg)
            .map(|(_, k)| k)
            .ok_or_else(|| {
                ApiError::Unauthorized(format!(
                    "tokens signed with {:?} are not accepted by this server",
                    header.alg
                ))
            })?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation)
            .map_err(|e| ApiError::Unauthorized(format!("the bearer token was rejected: {e}")))?;
        let claims = data.claims;
        let permissions = claims
            .get(&self.permissions_claim)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Principal {
            subject: claims
                .get("sub")
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_string(),
            permissions,
        })
    }
}

/// What a request needs: `Some(permission)`, `Some("")` for "any valid credentials", or
/// `None` for public. `path` is the route's path template when the request matched one.
///
/// A declared route needs what it declares ([`Access`]). The OpenAPI document and its UI
/// under `/api-docs` need what an operations route needs. A request that matches no
/// declared route (it answers 404 or 405) needs valid credentials under `/v1` and nothing
/// elsewhere.
pub fn required_permission(
    method: &Method,
    path: &str,
    public_operations: bool,
) -> Option<&'static str> {
    let access = match routing::find(method, path) {
        Some(route) => route.access,
        None if path.starts_with(crate::openapi::PREFIX) => Access::Operations,
        None if path.starts_with("/v1") => return Some(""),
        None => return None,
    };
    match access {
        Access::Operations => (!public_operations).then_some(""),
        Access::Permission(permission) => Some(permission),
    }
}

/// Middleware: authenticates and authorizes every routed request.
pub async fn authorize(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let auth = &state.auth;
    if !auth.enabled {
        return Ok(next.run(request).await);
    }
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| request.uri().path().to_string());
    let Some(required) = required_permission(request.method(), &path, auth.public_operations)
    else {
        return Ok(next.run(request).await);
    };
    let principal = auth.authenticate(request.headers())?;
    if !required.is_empty() && !grants(&principal.permissions, required) {
        return Err(ApiError::Forbidden(format!(
            "{} lacks the permission {required} needed for {} {path}",
            if principal.subject.is_empty() {
                "this caller"
            } else {
                &principal.subject
            },
            request.method()
        )));
    }
    let mut request = request;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}
