//! The mock upstream: answers in the Anthropic, OpenAI Chat Completions, Gemini, Bedrock and
//! Vertex dialects, with no key and no network, so the gateway and its translations can be run
//! and tested whole.
//!
//! [`answers`] routes a request by its path to its dialect ([`anthropic`], [`openai`],
//! [`gemini`], [`bedrock`], [`vertex`]); the OpenAI and Gemini answers are one [`script`]
//! rendered in each wire format, Bedrock and Vertex answer as the Anthropic mock does.
//! [`objects`] keeps what the Anthropic API stores (Message Batches, Files), per key.
//! Requests steer their answers with headers: [`shape`] for benchmarks, [`directives`] for
//! tests, [`faults`] for failures. [`server`] serves it all on real sockets.

pub mod answers;
pub mod anthropic;
pub mod bedrock;
pub mod directives;
pub mod faults;
pub mod gemini;
pub mod objects;
pub mod openai;
pub mod script;
pub mod server;
pub mod shape;
pub mod vertex;
