//! Writing the answers of [`super::Objects`] that are not JSON documents: a file's bytes and a
//! batch's results.
//!
//! Both can be large (a file up to the upload limit, results a line per request of up to
//! 100,000), so neither is built whole next to what is stored: a file's bytes go out as they
//! are kept, after a head with their length; results are built a slice of lines at a time and
//! sent chunked.

use std::io;

use monoio::net::TcpStream;

use super::batches::{result_line, BatchRequest};
use crate::http::chunked::{push_chunk, LAST_CHUNK};
use crate::http::response::ResponseHead;
use crate::mock::answers;
use crate::server::io::write_all;

/// About how many bytes of result lines go in one chunk.
const RESULTS_CHUNK: usize = 64 * 1024;
/// The content type the real API gives results (what the SDK asks for).
pub const RESULTS_CONTENT_TYPE: &str = "application/binary";

/// Writes a file's bytes with its type and length.
pub async fn write_content(
    stream: &mut TcpStream,
    mime_type: &str,
    data: bytes::Bytes,
) -> io::Result<()> {
    let mut head = ResponseHead::new(200);
    head.header("content-type", mime_type.as_bytes())
        .header("request-id", answers::request_id().as_bytes());
    let head = head.finish_with_length(data.len() as u64);
    if data.len() <= RESULTS_CHUNK {
        let mut out = head;
        out.extend_from_slice(&data);
        write_all(stream, out).await?;
    } else {
        write_all(stream, head).await?;
        write_all(stream, data).await?;
    }
    Ok(())
}

/// Writes a batch's results: a JSON line per request, in order, chunked.
pub async fn write_results(
    stream: &mut TcpStream,
    requests: &[BatchRequest],
    canceled: bool,
) -> io::Result<()> {
    let mut head = ResponseHead::new(200);
    head.header("content-type", RESULTS_CONTENT_TYPE.as_bytes())
        .header("request-id", answers::request_id().as_bytes());
    let mut out = head.finish_chunked();
    let mut lines = String::with_capacity(RESULTS_CHUNK + 4096);
    for (i, request) in requests.iter().enumerate() {
        lines.push_str(&result_line(request, canceled));
        let last = i + 1 == requests.len();
        if lines.len() >= RESULTS_CHUNK || last {
            push_chunk(&mut out, lines.as_bytes());
            lines.clear();
            if last {
                out.extend_from_slice(LAST_CHUNK);
            }
            out = write_all(stream, out).await?;
            out.clear();
        }
    }
    if requests.is_empty() {
        out.extend_from_slice(LAST_CHUNK);
        write_all(stream, out).await?;
    }
    Ok(())
}
