//! Team management: the shop's staff members.
//!
//! `model` holds the types the API speaks and the rules for their values, `repo` the SQL,
//! `routes` the HTTP operations. Later tenant resources follow the same shape.

pub mod model;
pub mod repo;
pub mod routes;

pub use routes::StaffApi;
