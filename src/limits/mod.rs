//! Limits and budgets per client key: the pure core.
//!
//! (Draft: the full guide for wiring comes with the key bundle.)

pub mod budget;
pub mod concurrency;
pub mod prices;
pub mod rate;
