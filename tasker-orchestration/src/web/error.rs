//! The one error type of the API: every failure is `{"error": {"code", "message"}}`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use tasker_shared::api::{ErrorBody, ErrorResponse};

/// An API failure. The status code is decided in one place, the private `ApiError::status`.
#[derive(Debug)]
pub enum ApiError {
    /// Malformed request (bad JSON, bad path parameter).
    BadRequest(String),
    /// Well-formed but invalid input.
    Validation(String),
    /// No such resource.
    NotFound(String),
    /// The path exists, but not with this method.
    MethodNotAllowed(String),
    /// The request conflicts with existing state.
    Conflict {
        /// What conflicted.
        message: String,
        /// The task that already exists, for duplicate task identities.
        existing_task_uuid: Option<Uuid>,
    },
    /// The database is unreachable or overloaded.
    Unavailable(String),
    /// Too much work is waiting: retry after this many seconds.
    Backpressure {
        /// What is congested.
        message: String,
        /// Seconds for `Retry-After`.
        retry_after_seconds: u32,
    },
    /// Missing or invalid credentials.
    Unauthorized(String),
    /// Valid credentials without the needed permission.
    Forbidden(String),
    /// The body is larger than allowed.
    PayloadTooLarge(String),
    /// The request ran past its time limit.
    Timeout(String),
    /// A bug or an unexpected failure; details are logged, never returned.
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Unavailable(_) | Self::Backpressure { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BAD_REQUEST",
            Self::Validation(_) => "VALIDATION_ERROR",
            Self::NotFound(_) => "NOT_FOUND",
            Self::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            Self::Conflict { .. } => "CONFLICT",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::Backpressure { .. } => "BACKPRESSURE",
            Self::Unauthorized(_) => "AUTHENTICATION_FAILED",
            Self::Forbidden(_) => "AUTHORIZATION_FAILED",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::Timeout(_) => "TIMEOUT",
            Self::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// Wraps an unexpected error: logged in full, answered with a generic message.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<tasker_shared::database::Error> for ApiError {
    fn from(e: tasker_shared::database::Error) -> Self {
        if e.is_transient() {
            tracing::warn!(error = %e, "database unavailable");
            return Self::Unavailable("the database is unavailable; retry shortly".into());
        }
        Self::internal(e)
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Database(e) => e.into(),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let retry_after = match &self {
            Self::Backpressure {
                retry_after_seconds,
                ..
            } => Some(*retry_after_seconds),
            _ => None,
        };
        let (message, existing_task_uuid) = match self {
            Self::Internal(detail) => {
                let incident = Uuid::now_v7();
                tracing::error!(%incident, %detail, "internal error");
                (format!("internal error (incident {incident})"), None)
            }
            Self::Conflict {
                message,
                existing_task_uuid,
            } => (message, existing_task_uuid),
            Self::Backpressure { message, .. } => (message, None),
            Self::BadRequest(m)
            | Self::Validation(m)
            | Self::NotFound(m)
            | Self::MethodNotAllowed(m)
            | Self::Unavailable(m)
            | Self::Unauthorized(m)
            | Self::Forbidden(m)
            | Self::PayloadTooLarge(m)
            | Self::Timeout(m) => (m, None),
        };
        let body = ErrorResponse {
            error: ErrorBody {
                code: code.to_string(),
                message,
                existing_task_uuid,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

/// `Json` whose rejections use the API's error shape.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let text = rejection.body_text();
        match rejection {
            JsonRejection::JsonDataError(_) => Self::Validation(text),
            r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge(format!(
                "the request body is larger than the server accepts (web.body_limit_bytes): {text}"
            )),
            _ => Self::BadRequest(text),
        }
    }
}

/// `Query` whose rejections use the API's error shape.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

/// Any unknown route.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

/// The answer for a known path with a method it does not serve.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{} does not accept {method}", uri.path()))
}
