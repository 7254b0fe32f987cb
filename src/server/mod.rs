//! The inbound side: the connection loop, routing, and socket helpers.

pub mod conn;
pub mod io;
pub mod router;
