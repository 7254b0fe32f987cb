//! HTTP/1.1 on the wire: request heads, bodies, chunked coding, responses and errors.
//!
//! Pure parsing and formatting; the sockets live in `server` and `upstream`.

pub mod body;
pub mod chunked;
pub mod error;
pub mod head;
pub mod response;

pub use error::{ApiError, ErrorType};
