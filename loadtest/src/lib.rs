//! Load tools for ringgate: the library behind `sseload` (and what `mock-upstream` shares
//! with it), so the pure parts are tested alone and the binaries stay thin shells.

pub mod limits;
pub mod sseload;
