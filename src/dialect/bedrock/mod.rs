//! The Bedrock dialect: Claude on AWS Bedrock.
//!
//! Requests are the Anthropic API's, reshaped for `InvokeModel` ([`request`]) and signed with
//! SigV4 ([`sigv4`]) unless a Bedrock API key is given; answers are Anthropic messages, and
//! streams Anthropic events inside AWS event-stream frames ([`eventstream`], [`stream`]).
//! Errors name their type in `X-Amzn-ErrorType` or an exception frame ([`errors`]).

pub mod count;
pub mod errors;
pub mod eventstream;
pub mod request;
pub mod sigv4;
pub mod stream;
