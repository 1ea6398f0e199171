//! Prometheus metrics, served at `GET /metrics` in the text format.
//!
//! Labels are route templates, methods, statuses and rejection reasons only: never an
//! organization, a user or a path with ids in it, so the series stay few and say nothing
//! about who the shops are.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::auth::Verifier;
use crate::db::Database;

/// Every metric the service keeps.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    rejections: IntCounterVec,
    pool: IntGaugeVec,
    jwks_fetches: IntGauge,
    jwks_failures: IntGauge,
}

impl Metrics {
    /// A fresh set of metrics.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by route template, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer a request, by route template",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0,
            ]),
            &["route"],
        )
        .expect("valid metric");
        let rejections = IntCounterVec::new(
            Opts::new(
                "auth_rejections_total",
                "Requests refused at authentication, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let pool = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database pool: max, open, idle, and requests waiting",
            ),
            &["state"],
        )
        .expect("valid metric");
        let jwks_fetches = IntGauge::new("jwks_fetches_total", "Signing-key fetches attempted")
            .expect("valid metric");
        let jwks_failures = IntGauge::new(
            "jwks_fetch_failures_total",
            "Signing-key fetches that failed",
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(rejections.clone()),
            Box::new(pool.clone()),
            Box::new(jwks_fetches.clone()),
            Box::new(jwks_failures.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Self {
            registry,
            requests,
            latency,
            rejections,
            pool,
            jwks_fetches,
            jwks_failures,
        }
    }

    /// Counts one answered request.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.latency.with_label_values(&[route]).observe(seconds);
    }

    /// Counts one refused token.
    pub fn observe_rejection(&self, reason: &str) {
        self.rejections.with_label_values(&[reason]).inc();
    }

    /// The text exposition, with the pool and key gauges read now.
    pub fn render(&self, db: &Database, verifier: &Verifier) -> String {
        let status = db.pool().status();
        for (state, value) in [
            ("max", status.max_size),
            ("open", status.size),
            ("idle", status.available),
            ("waiting", status.waiting),
        ] {
            self.pool.with_label_values(&[state]).set(value as i64);
        }
        if let Some(jwks) = verifier.jwks() {
            self.jwks_fetches.set(jwks.fetch_count() as i64);
            self.jwks_failures.set(jwks.failure_count() as i64);
        }
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
