//! otica-api: the backend of a multi-tenant SaaS for optical shops.
//!
//! Map of the crate:
//! - [`config`]: settings from the environment.
//! - [`auth`]: Clerk session tokens verified into a [`auth::Tenant`]; the dev issuer.
//! - [`db`]: the pool, the per-request tenant transaction, migrations, the start-up guard,
//!   and throwaway clusters for `dev` and tests.
//! - [`staff`]: the team-management resource (model, SQL, routes).
//! - [`payload`], [`json`], [`error`]: JSON in and out, and problem+json errors.
//! - [`app`]: routes and middleware assembled; [`telemetry`]: logs and request ids;
//!   [`metrics`]: Prometheus metrics.
//! - [`cli`]: the `serve`, `migrate` and `openapi` commands; [`dev`]: the `dev` command;
//!   [`conn`]: deadlines on client connections.
//!
//! Every request runs as: verify the token, take the organization from it, open a
//! transaction as the restricted runtime role with the organization set locally, query
//! with an explicit `organization_id` filter, commit.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod conn;
pub mod db;
pub mod dev;
pub mod error;
pub mod json;
pub mod metrics;
pub mod payload;
pub mod staff;
pub mod telemetry;
