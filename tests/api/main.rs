//! Integration tests: the real service over HTTP, a real PostgreSQL, real RS256 tokens.

mod harness;

mod auth;
mod config;
mod faults;
mod frontend;
mod guard;
mod hardening;
mod isolation;
mod openapi;
mod pgtap;
mod pool;
mod served;
mod service;
mod staff_list;
mod staff_write;
mod tokens;
