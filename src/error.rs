//! One error type for the whole API, always answered as `application/problem+json` (RFC 9457).
//!
//! Handlers return [`ApiError`] through [`Failure`], whose type parameter lists the statuses an
//! operation can answer, so the OpenAPI document shows exactly those. Errors raised by the
//! framework itself (unknown route, wrong content type, unparsable parameter) are turned into
//! the same shape by [`problem_from_poem_error`].

use std::marker::PhantomData;

use poem::http::{StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Object};
use serde::Serialize;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer, as RFC 9457 describes it.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Problem {
    /// A URI naming the kind of problem; stable, so clients can switch on it.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem; the same for every occurrence.
    pub title: String,
    /// The HTTP status code, repeated for convenience.
    pub status: u16,
    /// What went wrong this time, in words meant for a developer.
    pub detail: String,
    /// The fields that failed, for 409 and 422 answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// One failing input field.
#[derive(Debug, Clone, PartialEq, Eq, Object, Serialize)]
pub struct FieldError {
    /// The field's name as sent (`email`, `limit`, ...).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A failing field with its reason.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// No usable bearer token. The detail never says why: the log does.
    #[error("unauthorized")]
    Unauthorized,
    /// No bearer token at all (RFC 6750: the challenge then names no error).
    #[error("no credentials")]
    NoCredentials,
    /// A valid token that may not do this (no active organization, pending session).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// No such resource in the caller's shop.
    #[error("not found")]
    NotFound,
    /// The change clashes with another row of the same shop.
    #[error("conflict")]
    Conflict(Vec<FieldError>),
    /// The body is larger than the server accepts.
    #[error("payload too large")]
    PayloadTooLarge(usize),
    /// The body is not sent as JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Well-formed input with invalid values.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// A dependency (database, key server) is unavailable; retrying later may work.
    #[error("service unavailable: {0}")]
    Unavailable(&'static str),
    /// A bug or an unexpected failure; logged where it happens.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// A 422 for one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::NoCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem body of this error.
    pub fn problem(&self) -> Problem {
        let (slug, title, detail, errors) = match self {
            Self::Malformed(why) => ("malformed-request", "Malformed request", why.clone(), None),
            Self::Unauthorized | Self::NoCredentials => (
                "unauthorized",
                "Unauthorized",
                "A valid bearer token is required: send `Authorization: Bearer <Clerk session token>`."
                    .to_owned(),
                None,
            ),
            Self::Forbidden(why) => ("forbidden", "Forbidden", (*why).to_owned(), None),
            Self::NotFound => (
                "not-found",
                "Not found",
                "Nothing with this id exists in your organization.".to_owned(),
                None,
            ),
            Self::Conflict(fields) => (
                "conflict",
                "Conflict",
                "Another member of your organization already uses this value.".to_owned(),
                Some(fields.clone()),
            ),
            Self::PayloadTooLarge(limit) => (
                "payload-too-large",
                "Payload too large",
                format!("The request body must not exceed {limit} bytes."),
                None,
            ),
            Self::UnsupportedMediaType => (
                "unsupported-media-type",
                "Unsupported media type",
                "Send the body as `Content-Type: application/json`.".to_owned(),
                None,
            ),
            Self::Invalid(fields) => (
                "validation-error",
                "Invalid input",
                summarize(fields),
                Some(fields.clone()),
            ),
            Self::Unavailable(why) => ("unavailable", "Service unavailable", (*why).to_owned(), None),
            Self::Internal => (
                "internal-error",
                "Internal server error",
                "Something went wrong on our side; it has been logged.".to_owned(),
                None,
            ),
        };
        Problem {
            kind: format!("urn:otica:problem:{slug}"),
            title: title.to_owned(),
            status: self.status().as_u16(),
            detail,
            errors,
        }
    }
}

fn summarize(fields: &[FieldError]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect();
    parts.join("; ")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = Response::builder()
            .status(self.status())
            .content_type(PROBLEM_JSON)
            .body(body);
        let challenge = match self {
            Self::Unauthorized => Some(r#"Bearer error="invalid_token""#),
            Self::NoCredentials => Some("Bearer"),
            _ => None,
        };
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

impl From<ApiError> for poem::Error {
    fn from(err: ApiError) -> Self {
        poem::Error::from_response(err.into_response())
    }
}

/// The statuses an operation may fail with, for the OpenAPI document.
pub trait Statuses: Send + Sync + 'static {
    /// Status codes, ascending.
    const LIST: &'static [u16];
}

/// An [`ApiError`] returned by an operation whose possible statuses are `S`.
pub struct Failure<S: Statuses>(pub ApiError, PhantomData<S>);

impl<S: Statuses> From<ApiError> for Failure<S> {
    fn from(err: ApiError) -> Self {
        Self(err, PhantomData)
    }
}

impl<S: Statuses> From<Failure<S>> for poem::Error {
    fn from(failure: Failure<S>) -> Self {
        failure.0.into()
    }
}

impl<S: Statuses> IntoResponse for Failure<S> {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

fn describe(status: u16) -> &'static str {
    match status {
        400 => "The body is not well-formed JSON.",
        401 => "The bearer token is missing or invalid (`WWW-Authenticate: Bearer`).",
        403 => "The token has no active organization, or its role may not do this.",
        404 => "No such staff member in your organization.",
        409 => "The email (ignoring case) or clerk_id is already used in your organization.",
        413 => "The body is larger than 64 KiB.",
        415 => "The body is not sent as application/json.",
        422 => "A parameter or field has an invalid value; `errors` lists them.",
        500 => "An unexpected error; it has been logged.",
        503 => "The database or the key server is unavailable; retry later.",
        _ => "Error.",
    }
}

impl<S: Statuses> ApiResponse for Failure<S> {
    fn meta() -> MetaResponses {
        let responses = S::LIST
            .iter()
            .map(|&status| MetaResponse {
                description: describe(status),
                status: Some(status),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: PROBLEM_JSON,
                    schema: Problem::schema_ref(),
                }],
                headers: if status == 401 {
                    vec![MetaHeader {
                        name: "WWW-Authenticate".to_owned(),
                        description: Some("`Bearer error=\"invalid_token\"`".to_owned()),
                        required: true,
                        deprecated: false,
                        schema: String::schema_ref(),
                    }]
                } else {
                    vec![]
                },
            })
            .collect();
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

/// Turns any error that reached the top of the app into a problem+json answer.
///
/// Handlers' own errors pass through unchanged; the framework's are classified here.
pub async fn problem_from_poem_error(err: poem::Error) -> Response {
    use poem_openapi::error::{
        AuthorizationError, ContentTypeError, ParseParamError, ParsePathError,
        ParseRequestPayloadError,
    };

    if err.is_from_response() {
        return err.into_response();
    }
    let api_error = if err.is::<AuthorizationError>() {
        ApiError::NoCredentials
    } else if let Some(e) = err.downcast_ref::<ParseParamError>() {
        ApiError::invalid(e.name, parameter_message(&e.reason))
    } else if err.is::<ParsePathError>() {
        ApiError::invalid("id", "must be a UUID")
    } else if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        ApiError::Malformed(e.reason.clone())
    } else if err.is::<ContentTypeError>() {
        ApiError::UnsupportedMediaType
    } else {
        let status = err.status();
        if status.is_server_error() {
            tracing::error!(error = ?err, "unhandled error");
            ApiError::Internal
        } else {
            return generic_problem(status, &err.to_string());
        }
    };
    api_error.into_response()
}

/// Turns poem-openapi's validator wording ("verification failed. maximum(200, exclusive:
/// false)") into a sentence for the client.
fn parameter_message(reason: &str) -> String {
    let bound = |name: &str| {
        let rest = reason.split(name).nth(1)?;
        let digits: String = rest
            .chars()
            .skip(1)
            .take_while(|c| c.is_ascii_digit())
            .collect();
        (!digits.is_empty()).then_some(digits)
    };
    if let Some(n) = bound("minimum") {
        format!("must be at least {n}")
    } else if let Some(n) = bound("maximum") {
        format!("must be at most {n}")
    } else if let Some(n) = bound("maxLength") {
        format!("must have at most {n} characters")
    } else if let Some(rest) = reason.strip_prefix("failed to parse ") {
        format!("has a value that cannot be read: {rest}")
    } else {
        reason.to_owned()
    }
}

/// A problem for a status the API has no variant for (404 route, 405 method, ...).
fn generic_problem(status: StatusCode, detail: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let problem = Problem {
        kind: "about:blank".to_owned(),
        title: title.to_owned(),
        status: status.as_u16(),
        detail: if detail.is_empty() {
            title.to_owned()
        } else {
            detail.to_owned()
        },
        errors: None,
    };
    Response::builder()
        .status(status)
        .content_type(PROBLEM_JSON)
        .body(serde_json::to_vec(&problem).unwrap_or_default())
}
