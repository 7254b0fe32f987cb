//! JSON without a document model, where the gateway needs speed or exactness a general parser
//! does not give: finding a few top-level keys of a large body ([`skim`]), writing the few
//! documents the gateway makes itself ([`write`]), and checking, fragment by fragment, that
//! streamed JSON text stays a valid prefix ([`prefix`]).
//!
//! It sits below everything that reads or writes JSON on the request path: the endpoints, the
//! relay's usage scanner and the dialect translators.

pub mod prefix;
pub mod skim;
pub mod write;
