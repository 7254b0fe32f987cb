//! The OpenAI Chat Completions dialect: vLLM, SGLang, Ollama, OpenRouter, DeepSeek and every
//! other server that speaks `POST {base_url}/chat/completions`.

pub mod count;
pub mod request;
pub mod response;
pub mod stream;
pub mod wire;

pub use request::Options;
