//! An OpenAI chunk stream as an Anthropic event stream (TRANSLATION.md §1, "Stream").
//!
//! Text and reasoning are copied through as they come, each delta one Anthropic delta. Tool calls
//! are where translators garble streams, and each of their known troubles has its rule here:
//! - A call is keyed by its `index`; a missing index continues the last call, and a new id at a
//!   known index is a new call (some servers number every call 0).
//! - Its block opens only once both its id and its name are known, whichever chunk brings them;
//!   at the end a call still missing one gets a made-up id or a placeholder name rather than
//!   being lost.
//! - Only one block is open at a time, so while a call's arguments are incomplete, fragments of
//!   other calls (parallel calls with interleaved indexes) and any text wait in a queue, in the
//!   order they first came, and follow as soon as the open call's JSON is complete, or at the end.
//! - Arguments are checked as JSON text fragment by fragment ([`JsonPrefix`]): what would make
//!   them invalid is dropped, so a client parsing them as they come never fails.
//!
//! `finish_reason` closes the blocks; the usage comes in a later chunk, so the message ends
//! there, at `[DONE]` or at the end of the body. An error object inside the stream becomes an
//! in-band `event: error` of the matching type (before anything was sent, a failure the
//! gateway may fail over from). What waits in the queue is bounded by [`MAX_HELD`].

use std::collections::VecDeque;

use super::super::errors::{in_stream, string_of};
use super::super::events::{lit, EventWriter, Lit, Stop};
use super::super::sse::{Event, Events, SseStage};
use super::super::tools::{client_id, made_up_id};
use super::super::{Context, MAX_HELD};
use super::wire::{stop, Chunk, ToolCall};
use crate::json::prefix::JsonPrefix;
use crate::json::write::push_str_bytes;
use crate::stream::tally::Usage;

/// The name given to a call whose name never came.
const NO_NAME: &str = "unnamed_tool";

/// The translation stage of an OpenAI stream.
pub type StreamDecoder = SseStage<ChunkDecoder>;

/// What the chunks of an OpenAI stream have said so far, and the events they made.
pub struct ChunkDecoder {
    events: EventWriter,
    context: Context,
    calls: Vec<Call>,
    /// The upstream index of each call, in the order of `calls`.
    indexes: Vec<u32>,
    /// The call that received the last fragment.
    last_call: Option<usize>,
    /// The call whose block is open, if the open block is a call's.
    open_call: Option<usize>,
    queue: VecDeque<Queued>,
    /// Bytes waiting in the queue and in calls' arguments.
    held: usize,
    stop: Option<Stop>,
    usage: Option<Usage>,
    /// Bytes of text, reasoning and arguments relayed, for an estimate when no usage comes.
    output_bytes: u64,
    /// The model refused (it sent a `refusal`).
    refused: bool,
}

struct Call {
    id: Option<String>,
    name: Option<String>,
    /// Arguments accepted but not yet sent (the block is not open yet).
    args: String,
    json: JsonPrefix,
    opened: bool,
}

enum Queued {
    Text(String),
    Thinking(String),
    Call(usize),
}

impl StreamDecoder {
    pub fn new(context: Context) -> StreamDecoder {
        SseStage::over(
            ChunkDecoder {
                events: EventWriter::new(context.head.clone()),
                context,
                calls: Vec::new(),
                indexes: Vec::new(),
                last_call: None,
                open_call: None,
                queue: VecDeque::new(),
                held: 0,
                stop: None,
                usage: None,
                output_bytes: 0,
                refused: false,
            },
            MAX_HELD,
        )
    }
}

impl Events for ChunkDecoder {
    fn event(&mut self, e: Event<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        self.chunk(e, out)
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        if self.events.is_ended() {
            return Ok(());
        }
        if self.stop.is_none() {
            return Err(if self.events.is_started() {
                "ended the stream before its finish_reason".into()
            } else {
                "ended the stream without sending any chunk".into()
            });
        }
        self.finish_message(out);
        Ok(())
    }
}

impl ChunkDecoder {
    fn chunk(&mut self, e: Event<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        if self.events.is_ended() {
            return Ok(());
        }
        let data = e.data.trim_ascii();
        // `data: : keepalive` and empty data lines are noise, not chunks.
        if data.is_empty() || data[0] == b':' {
            return Ok(());
        }
        if data == b"[DONE]" {
            self.done(out);
            return Ok(());
        }
        let chunk: Chunk<'_> = serde_json::from_slice(data)
            .map_err(|e| format!("sent a chunk that is not JSON ({e})"))?;
        let top_level_error =
            chunk.choices.is_none() && chunk.message.is_some() && chunk.code.is_some();
        if e.name == Some(b"error") || chunk.error.is_some() || top_level_error {
            return in_stream(&mut self.events, data, out);
        }
        self.events.start(out);
        if let Some(u) = chunk.usage {
            self.usage = Some(u.anthropic());
        }
        if self.stop.is_none() {
            for choice in chunk.choices.iter().flatten().filter(|c| c.is_first()) {
                if let Some(d) = &choice.delta {
                    if let Some(l) = d.reasoning() {
                        self.thinking(l, out)?;
                    }
                    if let Some(l) = lit(d.content) {
                        self.text(l, out)?;
                    }
                    if let Some(l) = lit(d.refusal).filter(|l| !l.is_empty()) {
                        self.refused = true;
                        self.text(l, out)?;
                    }
                    for call in d.tool_calls.iter().flatten() {
                        self.tool(call, out)?;
                    }
                }
                if let Some(reason) = &choice.finish_reason {
                    let sequence = choice.stop_reason.and_then(string_of);
                    self.finish_reason(reason, sequence.as_deref(), out);
                }
            }
        }
        if self.stop.is_some() && chunk.usage.is_some() {
            self.finish_message(out);
        }
        Ok(())
    }

    fn text(&mut self, text: Lit<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        self.content(text, false, out)
    }

    fn thinking(&mut self, text: Lit<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        self.content(text, true, out)
    }

    /// Text or reasoning: sent at once, or queued behind what must come first.
    fn content(&mut self, text: Lit<'_>, thinking: bool, out: &mut Vec<u8>) -> Result<(), String> {
        if text.is_empty() {
            return Ok(());
        }
        self.output_bytes += text.0.len() as u64;
        if !self.blocked() && self.queue.is_empty() {
            self.open_call = None;
            match thinking {
                true => self.events.thinking(out, text),
                false => self.events.text(out, text),
            }
            return Ok(());
        }
        let decoded: String = serde_json::from_slice(text.0).unwrap_or_default();
        self.hold(decoded.len())?;
        match (self.queue.back_mut(), thinking) {
            (Some(Queued::Text(s)), false) | (Some(Queued::Thinking(s)), true) => {
                s.push_str(&decoded)
            }
            (_, false) => self.queue.push_back(Queued::Text(decoded)),
            (_, true) => self.queue.push_back(Queued::Thinking(decoded)),
        }
        self.pump(out);
        Ok(())
    }

    fn tool(&mut self, delta: &ToolCall<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        let id = (delta.id.and_then(string_of))
            .filter(|s| !s.is_empty())
            .map(|s| client_id(&s).into_owned());
        let i = self.call_for(delta.index(), id.as_deref());
        let function = delta.function.as_ref();
        let name = function.and_then(|f| f.name).and_then(string_of);
        let args = function.and_then(|f| f.arguments).and_then(string_of);
        let call = &mut self.calls[i];
        if call.id.is_none() {
            call.id = id;
        }
        if call.name.is_none() {
            call.name =
                (name.filter(|s| !s.is_empty())).map(|s| self.context.tools.client(&s).to_string());
        }
        if let Some(args) = args.filter(|a| !a.is_empty()) {
            let accepted = call.json.feed(args.as_bytes());
            if accepted < args.len() {
                log::debug!("dropped tool call arguments that are not valid JSON");
            }
            call.args.push_str(&args[..accepted]);
            self.output_bytes += accepted as u64;
            self.hold(accepted)?;
        }
        if self.open_call == Some(i) {
            self.send_args(i, out);
        } else if !self.calls[i].opened
            && !self
                .queue
                .iter()
                .any(|q| matches!(q, Queued::Call(c) if *c == i))
        {
            self.queue.push_back(Queued::Call(i));
        }
        self.pump(out);
        Ok(())
    }

    /// The call a fragment belongs to (made if it is new): the latest call with its index, or
    /// without an index the last call, unless the fragment brings an id that call does not have.
    fn call_for(&mut self, index: Option<u32>, id: Option<&str>) -> usize {
        let candidate = match index {
            Some(k) => self.indexes.iter().rposition(|&x| x == k),
            None => self.last_call,
        };
        let other_id = |c: &Call| matches!((c.id.as_deref(), id), (Some(a), Some(b)) if a != b);
        let i = match candidate.filter(|&i| !other_id(&self.calls[i])) {
            Some(i) => i,
            None => {
                self.calls.push(Call {
                    id: None,
                    name: None,
                    args: String::new(),
                    json: JsonPrefix::new(),
                    opened: false,
                });
                self.indexes.push(index.unwrap_or(u32::MAX));
                self.calls.len() - 1
            }
        };
        self.last_call = Some(i);
        i
    }

    /// An open call whose arguments are still coming holds everything else back.
    fn blocked(&self) -> bool {
        self.open_call.is_some_and(|i| {
            let json = &self.calls[i].json;
            !json.is_complete() && !json.is_broken()
        })
    }

    /// Sends what waits in the queue, as far as the open block lets it.
    fn pump(&mut self, out: &mut Vec<u8>) {
        while !self.blocked() {
            let Some(next) = self.queue.pop_front() else {
                return;
            };
            if let Queued::Call(i) = next {
                if self.calls[i].id.is_none() || self.calls[i].name.is_none() {
                    self.queue.push_front(next);
                    return;
                }
            }
            self.send_queued(next, out);
        }
    }

    fn send_queued(&mut self, next: Queued, out: &mut Vec<u8>) {
        let (text, thinking) = match next {
            Queued::Call(i) => return self.open(i, out),
            Queued::Text(s) => (s, false),
            Queued::Thinking(s) => (s, true),
        };
        self.held -= text.len();
        let mut literal = Vec::with_capacity(text.len() + 2);
        push_str_bytes(&mut literal, &text);
        self.open_call = None;
        match thinking {
            true => self.events.thinking(out, Lit(&literal)),
            false => self.events.text(out, Lit(&literal)),
        }
    }

    /// Opens call `i`'s block and sends the arguments it has.
    fn open(&mut self, i: usize, out: &mut Vec<u8>) {
        let call = &mut self.calls[i];
        let message = &self.context.head.id;
        let id = call.id.get_or_insert_with(|| made_up_id(message, i));
        let name = call.name.get_or_insert_with(|| NO_NAME.to_string());
        self.events.tool_use(out, id, name);
        call.opened = true;
        self.open_call = Some(i);
        self.send_args(i, out);
    }

    fn send_args(&mut self, i: usize, out: &mut Vec<u8>) {
        let args = std::mem::take(&mut self.calls[i].args);
        if args.is_empty() {
            return;
        }
        self.held -= args.len();
        let mut literal = Vec::with_capacity(args.len() + 8);
        push_str_bytes(&mut literal, &args);
        self.events.tool_input(out, Lit(&literal));
    }

    fn hold(&mut self, n: usize) -> Result<(), String> {
        self.held += n;
        if self.held > MAX_HELD {
            return Err(format!(
                "sent more than {MAX_HELD} bytes of tool calls that could not be relayed in turn"
            ));
        }
        Ok(())
    }

    fn finish_reason(&mut self, reason: &str, sequence: Option<&str>, out: &mut Vec<u8>) {
        self.close_all(out);
        let called = self.calls.iter().any(|c| c.opened);
        let sequences = &self.context.stop_sequences;
        self.stop = Some(stop(reason, called, self.refused, sequence, sequences));
    }

    /// Closes the open block and sends everything queued, calls still missing an id or a name
    /// included: no more arguments will come for anything.
    fn close_all(&mut self, out: &mut Vec<u8>) {
        self.open_call = None;
        while let Some(next) = self.queue.pop_front() {
            self.send_queued(next, out);
            self.open_call = None;
        }
        self.events.close(out);
    }

    /// `[DONE]`: the answer is complete even where the finish reason or the usage did not come.
    fn done(&mut self, out: &mut Vec<u8>) {
        if self.stop.is_none() {
            let reason = if self.calls.is_empty() {
                "stop"
            } else {
                "tool_calls"
            };
            self.finish_reason(reason, None, out);
        }
        self.finish_message(out);
    }

    /// `message_delta` with the usage (estimated where the upstream gave none), `message_stop`.
    fn finish_message(&mut self, out: &mut Vec<u8>) {
        let stop = (self.stop.clone()).unwrap_or_else(|| Stop::new("end_turn"));
        let usage = self.usage.unwrap_or(Usage {
            input_tokens: self.context.head.input_tokens,
            output_tokens: self.output_bytes.div_ceil(4),
            ..Usage::default()
        });
        self.events.finish(out, &stop, &usage);
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
