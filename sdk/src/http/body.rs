//! Reading and writing wasi:http bodies through their wasi:io streams.

use super::HttpError;
use crate::bindings::plugin::wasi::http::types::{IncomingBody, OutgoingBody};
use crate::bindings::plugin::wasi::io::streams::StreamError;

/// How many bytes one read asks for.
const READ_CHUNK: u64 = 64 * 1024;
/// The most `blocking-write-and-flush` accepts at once.
const WRITE_CHUNK: usize = 4096;

/// Reads a whole incoming body, failing with [`HttpError::TooLarge`] past `limit` bytes.
pub(crate) fn read_all(body: IncomingBody, limit: u64) -> Result<Vec<u8>, HttpError> {
    let stream = body
        .stream()
        .map_err(|()| HttpError::Body("the body stream was already taken".to_owned()))?;
    let mut bytes = Vec::new();
    loop {
        // `blocking-read` waits on the stream's pollable until data or the end arrives.
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                let total = bytes.len().saturating_add(chunk.len());
                if u64::try_from(total).map_or(true, |total| total > limit) {
                    return Err(HttpError::TooLarge(limit));
                }
                bytes.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(err)) => {
                return Err(HttpError::Body(err.to_debug_string()));
            }
        }
    }
    // The stream is a child of the body: drop it before finishing the body.
    drop(stream);
    drop(IncomingBody::finish(body));
    Ok(bytes)
}

/// Writes `bytes` to an outgoing body and finishes it (without trailers).
pub(crate) fn write_all(body: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    let stream = body
        .write()
        .map_err(|()| HttpError::Body("the body stream was already taken".to_owned()))?;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|err| match err {
                StreamError::Closed => HttpError::Body("the peer closed the body".to_owned()),
                StreamError::LastOperationFailed(err) => HttpError::Body(err.to_debug_string()),
            })?;
    }
    drop(stream);
    OutgoingBody::finish(body, None).map_err(|code| HttpError::Body(code.to_string()))
}
