//! Logging: the subscriber, and one line per request.
//!
//! The request line carries method, route, status, latency and, once the token is verified,
//! the organization and user ids. It never carries a token, a body or an email.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use poem::{Endpoint, IntoResponse, Request, Response};
use tracing_subscriber::EnvFilter;

use crate::auth::Tenant;

/// Installs the global subscriber: level from `RUST_LOG` (default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
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

/// Middleware function: logs one line per request.
pub async fn log_request<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let log = RequestLog::default();
    req.extensions_mut().insert(log.clone());

    let response = match next.call(req).await {
        Ok(resp) => resp.into_response(),
        Err(err) => err.into_response(),
    };

    let fields = log.0.lock().expect("lock poisoned");
    let status = response.status().as_u16();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let operation = response
        .data::<poem_openapi::OperationId>()
        .map(|op| op.0)
        .unwrap_or("-");
    let org = fields.org_id.as_deref().unwrap_or("-");
    let user = fields.user_id.as_deref().unwrap_or("-");
    match fields.auth_failure {
        Some(reason) => tracing::info!(
            http.method = %method, http.path = %path, http.status = status, operation,
            duration_ms, org.id = org, auth.failure = reason, "request"
        ),
        None => tracing::info!(
            http.method = %method, http.path = %path, http.status = status, operation,
            duration_ms, org.id = org, user.id = user, "request"
        ),
    }
    Ok(response)
}
