//! Choosing an upstream credential for each request: model routing, selection and health.

pub mod carry;
pub mod health;
pub mod models;
pub mod pool;
pub mod select;
