//! Logs and per-request bookkeeping.
//!
//! Logs go to stderr, human-readable by default or one JSON object per line with
//! `LOG_FORMAT=json`; the level comes from `RUST_LOG` (default `info`). Each request gets one
//! line: request id, method, route template (never the raw path), status, latency, and the
//! organization and user once the token is verified (or why it was refused). A token, a
//! password, a body or an email never reaches a log line.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, PathPattern, Request, Response};
use tracing_subscriber::EnvFilter;

use crate::auth::Tenant;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// The header carrying a request's id, in and out.
pub const REQUEST_ID: &str = "x-request-id";

/// Installs the global subscriber; `json` selects one JSON object per line.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
}

#[derive(Default)]
struct Fields {
    org_id: Option<String>,
    user_id: Option<String>,
    auth_failure: Option<&'static str>,
}

/// What the handlers learn about a request that belongs in its log line.
#[derive(Clone, Default)]
pub struct RequestLog(Arc<Mutex<Fields>>);

impl RequestLog {
    /// Records who is calling.
    pub fn set_tenant(&self, tenant: &Tenant) {
        let mut fields = self.0.lock().expect("lock poisoned");
        fields.org_id = Some(tenant.org_id.clone());
        fields.user_id = Some(tenant.user_id.clone());
    }

    /// Records why a token was refused.
    pub fn set_auth_failure(&self, reason: &'static str) {
        self.0.lock().expect("lock poisoned").auth_failure = Some(reason);
    }
}

/// The caller's request id when it is short and plain (letters, digits, `-`, `_`, `.`),
/// else a new one: ids end up in logs, so nothing else gets in.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Wraps the app: request id, time limit, metrics, and the one log line per request.
pub async fn observe<E: Endpoint>(
    next: E,
    mut req: Request,
    metrics: Arc<Metrics>,
    time_limit: Duration,
) -> poem::Result<Response> {
    let started = Instant::now();
    let method = req.method().clone();
    let id = request_id(&req);
    let log = RequestLog::default();
    req.extensions_mut().insert(log.clone());

    let mut response = match tokio::time::timeout(time_limit, next.call(req)).await {
        Ok(Ok(resp)) => resp.into_response(),
        Ok(Err(err)) => err.into_response(),
        Err(_) => {
            tracing::warn!(request.id = %id, limit_ms = time_limit.as_millis() as u64, "request took too long");
            ApiError::Unavailable("The request took too long; retry shortly.").into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let route = response
        .data::<PathPattern>()
        .map(|p| p.0.to_string())
        .unwrap_or_else(|| "(unmatched)".to_owned());
    // Only the methods the API knows become labels: a client sending made-up methods must
    // not be able to grow the metrics without bound.
    let method_label = match method.as_str() {
        m @ ("GET" | "POST" | "PATCH" | "DELETE" | "PUT" | "HEAD" | "OPTIONS") => m,
        _ => "other",
    };
    metrics.observe_request(&route, method_label, status, elapsed.as_secs_f64());

    let fields = log.0.lock().expect("lock poisoned");
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    let org = fields.org_id.as_deref().unwrap_or("-");
    let user = fields.user_id.as_deref().unwrap_or("-");
    let failure = fields.auth_failure.unwrap_or("-");
    tracing::info!(
        request.id = %id, http.method = %method, http.route = %route, http.status = status,
        duration_ms, org.id = org, user.id = user, auth.failure = failure, "request"
    );
    drop(fields);
    Ok(response)
}
