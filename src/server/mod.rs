//! The inbound side: the connection loop, routing, and socket helpers.

pub mod conn;
pub mod incoming;
pub mod io;
pub mod router;
