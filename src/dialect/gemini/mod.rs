//! The Gemini API dialect: `POST {base_url}/v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse` and `:countTokens`, keyed by `x-goog-api-key`.

pub mod request;
pub mod response;
pub mod stream;
pub mod wire;

/// Where the Gemini API is, when an upstream does not say.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";
