//! An SMTP server on loopback for tests: [`SmtpSink`] keeps whatever a client such as lettre
//! delivers, and [`ReceivedMail`] reads it back.
//!
//! The sink speaks just enough SMTP (RFC 5321) for a client: the `220` greeting, `EHLO`
//! (advertising `8BITMIME`, `SMTPUTF8` and `SIZE`, neither `STARTTLS` nor `AUTH`), `HELO`,
//! `MAIL FROM`, `RCPT TO`, `DATA` (dot-unstuffed), `RSET`, `NOOP` and `QUIT`; anything else
//! answers `502`. Lines are bounded (10 KiB, `500`) and messages too (10 MiB, `552`). Every
//! connection is served at once, each in its own task; dropping the sink stops them all.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use plinth_test_support::smtp::SmtpSink;
//!
//! let sink = SmtpSink::start().await?;
//! // … point the code under test at `sink.url()` (`smtp://127.0.0.1:<port>`) …
//! let mail = sink.wait_for(1, Duration::from_secs(5)).await?;
//! assert_eq!(mail[0].subject(), "Invoice PL-000042");
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The longest command or message line accepted, CRLF included.
const MAX_LINE: usize = 10 * 1024;
/// The largest message accepted (advertised as `SIZE`).
const MAX_MESSAGE: usize = 10 * 1024 * 1024;
/// The most recipients of one message.
const MAX_RECIPIENTS: usize = 100;
/// The name the sink gives itself.
const NAME: &str = "plinth-smtp-sink";
/// How deep multiparts nest before the rest is taken as one part.
const MAX_NESTING: usize = 8;

/// An SMTP server on `127.0.0.1` that keeps every message delivered to it.
pub struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

/// What the server's connections share with the sink.
#[derive(Debug, Default)]
struct Shared {
    received: Mutex<Vec<ReceivedMail>>,
    /// The reply every `RCPT TO` gets instead of `250`, when set.
    rejection: Mutex<Option<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSink")
            .field("port", &self.port)
            .field("received", &lock(&self.shared.received).len())
            .finish_non_exhaustive()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        // The accept loop owns the connections' `JoinSet`: aborting it aborts them too.
        self.server.abort();
    }
}

impl SmtpSink {
    /// Binds `127.0.0.1:0` and serves in a task until the sink is dropped.
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound.
    pub async fn start() -> anyhow::Result<SmtpSink> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the SMTP sink to a loopback port")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared::default());
        let server = tokio::spawn(serve(listener, Arc::clone(&shared)));
        Ok(SmtpSink {
            port,
            shared,
            server,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:<port>`: plain SMTP, as lettre's `from_url` reads it.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        lock(&self.shared.received).clone()
    }

    /// Makes every following `RCPT TO` answer `reply` instead of `250`, e.g.
    /// `"451 4.3.0 Try again later"` (a transient failure) or `"550 5.1.1 No such user"` (a
    /// permanent one); `None` accepts recipients again.
    pub fn reject_recipients(&self, reply: Option<&str>) {
        *lock(&self.shared.rejection) = reply.map(str::to_owned);
    }

    /// Waits until at least `count` messages have arrived and returns all of them.
    ///
    /// # Errors
    ///
    /// When `timeout` passes first; the error names the subjects and recipients of what did
    /// arrive.
    pub async fn wait_for(
        &self,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<ReceivedMail>> {
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return Ok(messages);
            }
            if deadline.is_some_and(|deadline| tokio::time::Instant::now() >= deadline) {
                let arrived: Vec<String> = messages
                    .iter()
                    .map(|mail| format!("{:?} to {:?}", mail.subject(), mail.to))
                    .collect();
                anyhow::bail!(
                    "expected {count} e-mail(s) within {timeout:?}; {} arrived: {arrived:?}",
                    messages.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Accepts connections and serves each in a task of its own.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(session(stream, Arc::clone(&shared)));
                }
                // E.g. out of file descriptors: try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// What reading one line gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// A whole line (with its line break) is in the buffer.
    Complete,
    /// The line was longer than allowed; it was read and dropped.
    TooLong,
    /// The client closed the connection.
    Eof,
}

/// Reads one line ending in `\n` into `line` (cleared first), keeping at most `max` bytes.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<Line> {
    line.clear();
    let mut too_long = false;
    loop {
        let (used, done) = {
            let available = reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(Line::Eof);
            }
            let (used, done) = match available.iter().position(|&b| b == b'\n') {
                Some(end) => (end + 1, true),
                None => (available.len(), false),
            };
            if !too_long {
                if line.len() + used > max {
                    too_long = true;
                    line.clear();
                } else {
                    line.extend_from_slice(&available[..used]);
                }
            }
            (used, done)
        };
        reader.consume(used);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

/// What `DATA` gave.
#[derive(Debug)]
enum Data {
    /// The message, dot-unstuffed, up to the line with the lone `.`.
    Message(Vec<u8>),
    /// The message was read to its end but refused with this reply.
    Refused(&'static str),
    /// The client closed the connection.
    Eof,
}

/// Reads a message up to the line holding a lone `.`.
async fn read_data<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> io::Result<Data> {
    let mut message = Vec::new();
    let mut refused = None;
    loop {
        match read_line(reader, line, MAX_LINE).await? {
            Line::Eof => return Ok(Data::Eof),
            Line::TooLong => {
                refused.get_or_insert("500 5.5.2 Line too long\r\n");
                message = Vec::new();
            }
            Line::Complete => {
                if line.as_slice() == b".\r\n" || line.as_slice() == b".\n" {
                    return Ok(match refused {
                        Some(reply) => Data::Refused(reply),
                        None => Data::Message(message),
                    });
                }
                let content = line.strip_prefix(b".").unwrap_or(line.as_slice());
                if refused.is_none() {
                    if message.len() + content.len() > MAX_MESSAGE {
                        refused = Some("552 5.3.4 Message exceeds the maximum size\r\n");
                        message = Vec::new();
                    } else {
                        message.extend_from_slice(content);
                    }
                }
            }
        }
    }
}

/// The envelope of the message being sent on one connection.
#[derive(Debug, Default)]
struct Envelope {
    from: Option<String>,
    to: Vec<String>,
}

/// `<address>` and what follows it in `FROM:<address> PARAMS`, when `argument` starts with
/// `keyword` (case-insensitive).
fn path<'a>(argument: &'a str, keyword: &str) -> Option<(String, &'a str)> {
    let prefix = argument.get(..keyword.len())?;
    if !prefix.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument[keyword.len()..].trim_start().strip_prefix('<')?;
    let end = rest.find('>')?;
    Some((rest[..end].to_owned(), rest[end + 1..].trim()))
}

/// The `SIZE=` parameter of `MAIL FROM`, if any.
fn declared_size(parameters: &str) -> Option<usize> {
    parameters.split_whitespace().find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        if name.eq_ignore_ascii_case("SIZE") {
            value.parse().ok()
        } else {
            None
        }
    })
}

/// One SMTP conversation.
async fn session(stream: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write
        .write_all(format!("220 {NAME} ESMTP ready\r\n").as_bytes())
        .await?;
    let mut envelope = Envelope::default();
    let mut line = Vec::new();
    loop {
        let reply = match read_line(&mut reader, &mut line, MAX_LINE).await? {
            Line::Eof => return Ok(()),
            Line::TooLong => "500 5.5.2 Line too long\r\n".to_owned(),
            Line::Complete => {
                // Owned: `line` is read into again below (`DATA`).
                let command = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                let (verb, argument) = command.split_once(' ').unwrap_or((&command, ""));
                let argument = argument.trim();
                match verb.to_ascii_uppercase().as_str() {
                    "EHLO" => {
                        envelope = Envelope::default();
                        format!(
                            "250-{NAME} greets {argument}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
                             250 SIZE {MAX_MESSAGE}\r\n"
                        )
                    }
                    "HELO" => {
                        envelope = Envelope::default();
                        format!("250 {NAME} greets {argument}\r\n")
                    }
                    "MAIL" => match path(argument, "FROM:") {
                        Some((_, parameters))
                            if declared_size(parameters).is_some_and(|size| size > MAX_MESSAGE) =>
                        {
                            "552 5.3.4 Message exceeds the maximum size\r\n".to_owned()
                        }
                        Some((from, _)) => {
                            envelope = Envelope {
                                from: Some(from),
                                to: Vec::new(),
                            };
                            "250 2.1.0 OK\r\n".to_owned()
                        }
                        None => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".to_owned(),
                    },
                    "RCPT" => match path(argument, "TO:") {
                        _ if envelope.from.is_none() => "503 5.5.1 MAIL first\r\n".to_owned(),
                        Some((to, _)) => {
                            let rejection = lock(&shared.rejection).clone();
                            if let Some(reply) = rejection {
                                format!("{}\r\n", reply.trim_end())
                            } else if envelope.to.len() >= MAX_RECIPIENTS {
                                "452 4.5.3 Too many recipients\r\n".to_owned()
                            } else {
                                envelope.to.push(to);
                                "250 2.1.5 OK\r\n".to_owned()
                            }
                        }
                        None => "501 5.5.4 Syntax: RCPT TO:<address>\r\n".to_owned(),
                    },
                    "DATA" => {
                        if envelope.from.is_none() || envelope.to.is_empty() {
                            "503 5.5.1 RCPT first\r\n".to_owned()
                        } else {
                            write
                                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                                .await?;
                            match read_data(&mut reader, &mut line).await? {
                                Data::Eof => return Ok(()),
                                Data::Refused(reply) => {
                                    envelope = Envelope::default();
                                    reply.to_owned()
                                }
                                Data::Message(message) => {
                                    let done = std::mem::take(&mut envelope);
                                    lock(&shared.received).push(ReceivedMail {
                                        from: done.from.unwrap_or_default(),
                                        to: done.to,
                                        data: String::from_utf8_lossy(&message).into_owned(),
                                    });
                                    "250 2.0.0 OK: queued\r\n".to_owned()
                                }
                            }
                        }
                    }
                    "RSET" => {
                        envelope = Envelope::default();
                        "250 2.0.0 OK\r\n".to_owned()
                    }
                    "NOOP" => "250 2.0.0 OK\r\n".to_owned(),
                    "QUIT" => {
                        write.write_all(b"221 2.0.0 Bye\r\n").await?;
                        write.shutdown().await?;
                        return Ok(());
                    }
                    _ => "502 5.5.2 Command not recognized\r\n".to_owned(),
                }
            }
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// A message the sink received: the envelope and the message as sent (headers and body, CRLF
/// line breaks, dot-unstuffed, up to and including the line break before the final `.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The `MAIL FROM` address (empty for `<>`).
    pub from: String,
    /// The `RCPT TO` addresses, in order.
    pub to: Vec<String>,
    /// The message.
    pub data: String,
}

impl ReceivedMail {
    /// The first header called `name` (case-insensitive), unfolded, trimmed, with RFC 2047
    /// encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        let (head, _) = split_entity(&self.data);
        raw_header(&parse_headers(head), name).map(|value| decode_words(&value))
    }

    /// The `Subject` header, decoded; empty when there is none.
    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The body of the first `text/plain` part that is not an attachment (the message itself
    /// when it is not multipart), decoded from its transfer encoding (quoted-printable, base64
    /// or as is), with `\n` line breaks and no trailing line break; empty when there is none.
    pub fn text(&self) -> String {
        for part in leaf_parts(&self.data) {
            let is_text = raw_header(&part.headers, "Content-Type")
                .is_none_or(|content_type| media_type(&content_type) == "text/plain");
            if is_text && !part.is_attachment() {
                let text = String::from_utf8_lossy(&part.decoded()).replace("\r\n", "\n");
                return text.trim_end_matches('\n').to_owned();
            }
        }
        String::new()
    }

    /// Every attachment: file name, media type (lowercase, without parameters) and content,
    /// decoded from its transfer encoding.
    pub fn attachments(&self) -> Vec<(String, String, Vec<u8>)> {
        leaf_parts(&self.data)
            .into_iter()
            .filter_map(|part| {
                let filename = part.filename();
                if !part.is_attachment() && filename.is_none() {
                    return None;
                }
                let content_type = raw_header(&part.headers, "Content-Type")
                    .map(|value| media_type(&value))
                    .unwrap_or_else(|| "application/octet-stream".to_owned());
                Some((filename.unwrap_or_default(), content_type, part.decoded()))
            })
            .collect()
    }
}

/// One leaf of a MIME message: its headers (unfolded, not decoded) and its body as sent.
#[derive(Debug)]
struct Part<'a> {
    headers: Vec<(String, String)>,
    body: &'a str,
}

impl Part<'_> {
    fn is_attachment(&self) -> bool {
        raw_header(&self.headers, "Content-Disposition")
            .is_some_and(|value| media_type(&value) == "attachment")
    }

    /// `filename` of `Content-Disposition` (RFC 2231 forms too), else `name` of
    /// `Content-Type`.
    fn filename(&self) -> Option<String> {
        let from = |header: &str, parameter: &str| {
            let value = raw_header(&self.headers, header)?;
            extended_parameter(&parameters(&value), parameter)
        };
        from("Content-Disposition", "filename")
            .or_else(|| from("Content-Type", "name"))
            .map(|name| decode_words(&name))
    }

    fn decoded(&self) -> Vec<u8> {
        let encoding = raw_header(&self.headers, "Content-Transfer-Encoding")
            .map(|value| value.trim().to_ascii_lowercase());
        match encoding.as_deref() {
            Some("base64") => {
                base64_decode(self.body).unwrap_or_else(|| self.body.as_bytes().to_vec())
            }
            Some("quoted-printable") => quoted_printable_decode(self.body),
            _ => self.body.as_bytes().to_vec(),
        }
    }
}

/// An entity's header section and its body: split at the first empty line.
fn split_entity(entity: &str) -> (&str, &str) {
    let mut offset = 0;
    for line in entity.split_inclusive('\n') {
        if line.trim_end_matches(['\r', '\n']).is_empty() {
            return (&entity[..offset], &entity[offset + line.len()..]);
        }
        offset += line.len();
    }
    (entity, "")
}

/// The header fields of a header section, in order, each unfolded (a line starting with
/// whitespace continues the previous field; the line break is dropped, the whitespace kept).
fn parse_headers(head: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    headers
}

/// The first field called `name` (case-insensitive), trimmed, not decoded.
fn raw_header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(field, _)| field.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim().to_owned())
}

/// `type/subtype` of a `Content-Type` (or the disposition of a `Content-Disposition`),
/// lowercase.
fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The `; name=value` parameters of a structured header, names lowercase, quoted values
/// unquoted.
fn parameters(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some((_, mut rest)) = value.split_once(';') else {
        return out;
    };
    loop {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_whitespace());
        let Some(equals) = rest.find('=') else {
            return out;
        };
        let name = rest[..equals].trim().to_ascii_lowercase();
        rest = rest[equals + 1..].trim_start();
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut end = quoted.len();
            let mut escaped = false;
            for (index, c) in quoted.char_indices() {
                if escaped {
                    value.push(c);
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    end = index + 1;
                    break;
                } else {
                    value.push(c);
                }
            }
            rest = &quoted[end..];
            value
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            let value = rest[..end].trim().to_owned();
            rest = &rest[end..];
            value
        };
        out.push((name, value));
    }
}

/// The parameter `name`, also in its RFC 2231 forms: `name*=utf-8''%E2%82%AC` and the
/// continuations `name*0=…; name*1*=…`.
fn extended_parameter(parameters: &[(String, String)], name: &str) -> Option<String> {
    if let Some((_, value)) = parameters.iter().find(|(key, _)| key == name) {
        return Some(value.clone());
    }
    let star = format!("{name}*");
    if let Some((_, value)) = parameters.iter().find(|(key, _)| *key == star) {
        let bytes = percent_decode(without_charset(value));
        return Some(String::from_utf8_lossy(&bytes).into_owned());
    }
    let mut sections: Vec<(u32, bool, &str)> = parameters
        .iter()
        .filter_map(|(key, value)| {
            let section = key.strip_prefix(&star)?;
            let (index, encoded) = match section.strip_suffix('*') {
                Some(index) => (index, true),
                None => (section, false),
            };
            Some((index.parse().ok()?, encoded, value.as_str()))
        })
        .collect();
    if sections.is_empty() {
        return None;
    }
    sections.sort_by_key(|&(index, _, _)| index);
    let mut bytes = Vec::new();
    for (position, &(_, encoded, value)) in sections.iter().enumerate() {
        if encoded {
            let value = if position == 0 {
                without_charset(value)
            } else {
                value
            };
            bytes.extend(percent_decode(value));
        } else {
            bytes.extend_from_slice(value.as_bytes());
        }
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// An RFC 2231 value without its `charset'language'` prefix.
fn without_charset(value: &str) -> &str {
    let mut pieces = value.splitn(3, '\'');
    match (pieces.next(), pieces.next(), pieces.next()) {
        (Some(_), Some(_), Some(rest)) => rest,
        _ => value,
    }
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// `%XX` escapes decoded; anything else as is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(index + 1).copied().and_then(hex_digit),
                bytes.get(index + 2).copied().and_then(hex_digit),
            )
        {
            out.push((high << 4) | low);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    out
}

/// Standard base64 (RFC 4648) with whitespace ignored and decoding stopped at `=`; `None` on
/// any other character outside the alphabet.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Quoted-printable (RFC 2045): `=XX` escapes decoded, soft line breaks (`=` at the end of a
/// line) removed, anything else as is.
fn quoted_printable_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] != b'=' {
            out.push(bytes[index]);
            index += 1;
            continue;
        }
        // A soft line break: `=`, maybe trailing whitespace, then the line break (or the end).
        let mut after = index + 1;
        while after < bytes.len() && matches!(bytes[after], b' ' | b'\t') {
            after += 1;
        }
        match bytes.get(after..) {
            Some([]) => {
                index = after;
                continue;
            }
            Some([b'\n', ..]) => {
                index = after + 1;
                continue;
            }
            Some([b'\r', b'\n', ..]) => {
                index = after + 2;
                continue;
            }
            _ => {}
        }
        let escaped = (
            bytes.get(index + 1).copied().and_then(hex_digit),
            bytes.get(index + 2).copied().and_then(hex_digit),
        );
        if let (Some(high), Some(low)) = escaped {
            out.push((high << 4) | low);
            index += 3;
        } else {
            out.push(b'=');
            index += 1;
        }
    }
    out
}

/// One RFC 2047 encoded word at the start of `text` (`=?charset?B|Q?text?=`): its bytes in
/// UTF-8 and its length.
fn encoded_word(text: &str) -> Option<(Vec<u8>, usize)> {
    let inner = text.strip_prefix("=?")?;
    let (charset, after) = inner.split_once('?')?;
    let (encoding, after) = after.split_once('?')?;
    let end = after.find("?=")?;
    let encoded = &after[..end];
    if encoded.contains(char::is_whitespace) || charset.contains(char::is_whitespace) {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => base64_decode(encoded)?,
        "Q" | "q" => {
            let underscores_as_spaces = encoded.replace('_', " ");
            quoted_printable_decode(&underscores_as_spaces)
        }
        _ => return None,
    };
    // `charset*language` (RFC 2231 section 5) names the charset before the `*`.
    let charset = charset.split('*').next().unwrap_or_default();
    let bytes =
        if charset.eq_ignore_ascii_case("iso-8859-1") || charset.eq_ignore_ascii_case("latin1") {
            bytes
                .iter()
                .map(|&b| char::from(b))
                .collect::<String>()
                .into_bytes()
        } else {
            bytes
        };
    // `after` is the tail of `text`: the word ends two bytes past the text's end.
    let length = text.len() - after.len() + end + "?=".len();
    Some((bytes, length))
}

/// A header value with its RFC 2047 encoded words decoded; whitespace between two adjacent
/// encoded words is dropped, as the RFC says.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut gap = String::new();
    let mut after_word = false;
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("=?")
            && let Some((bytes, length)) = encoded_word(rest)
        {
            pending.extend(bytes);
            gap.clear();
            after_word = true;
            rest = &rest[length..];
            continue;
        }
        if after_word && c.is_whitespace() {
            gap.push(c);
        } else {
            out.push_str(&String::from_utf8_lossy(&pending));
            pending.clear();
            out.push_str(&gap);
            gap.clear();
            after_word = false;
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out.push_str(&String::from_utf8_lossy(&pending));
    out.push_str(&gap);
    out
}

/// The bodies between the `--boundary` lines of a multipart body (preamble and epilogue
/// left out), each without the line break that belongs to the next delimiter.
fn split_multipart<'a>(body: &'a str, boundary: &str) -> Vec<&'a str> {
    let delimiter = format!("--{boundary}");
    let close = format!("{delimiter}--");
    let mut parts = Vec::new();
    let mut start = None;
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if trimmed == delimiter || trimmed == close {
            if let Some(start) = start {
                let before = &body[..offset];
                let end = before
                    .strip_suffix("\r\n")
                    .or_else(|| before.strip_suffix('\n'))
                    .map_or(offset, str::len);
                parts.push(&body[start..end.max(start)]);
            }
            if trimmed == close {
                return parts;
            }
            start = Some(offset + line.len());
        }
        offset += line.len();
    }
    // No closing delimiter: what follows the last one is a part too.
    if let Some(start) = start {
        parts.push(&body[start..]);
    }
    parts
}

/// The leaves of a message: the message itself when it is not multipart, else the leaves of
/// its parts, depth first.
fn leaf_parts(message: &str) -> Vec<Part<'_>> {
    let mut leaves = Vec::new();
    collect_leaves(message, 0, &mut leaves);
    leaves
}

fn collect_leaves<'a>(entity: &'a str, depth: usize, leaves: &mut Vec<Part<'a>>) {
    let (head, body) = split_entity(entity);
    let headers = parse_headers(head);
    if depth < MAX_NESTING
        && let Some(content_type) = raw_header(&headers, "Content-Type")
        && media_type(&content_type).starts_with("multipart/")
        && let Some(boundary) = extended_parameter(&parameters(&content_type), "boundary")
    {
        for part in split_multipart(body, &boundary) {
            collect_leaves(part, depth + 1, leaves);
        }
        return;
    }
    leaves.push(Part { headers, body });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(data: &str) -> ReceivedMail {
        ReceivedMail {
            from: "billing@plinth.test".to_owned(),
            to: vec!["admin@acme.test".to_owned()],
            data: data.to_owned(),
        }
    }

    #[test]
    fn headers_are_unfolded_and_case_insensitive() {
        let m = mail(concat!(
            "From: Plinth <billing@plinth.test>\r\n",
            "Subject: a long\r\n",
            "\tsubject\r\n",
            "Content-Type: multipart/mixed;\r\n",
            " boundary=\"abc\"\r\n",
            "\r\n",
            "body\r\n",
        ));
        assert_eq!(m.header("subject").as_deref(), Some("a long\tsubject"));
        assert_eq!(
            m.header("CONTENT-TYPE").as_deref(),
            Some("multipart/mixed; boundary=\"abc\"")
        );
        assert_eq!(m.header("X-Missing"), None);
    }

    #[test]
    fn encoded_words_are_decoded() {
        let m = mail(concat!(
            "Subject: =?utf-8?b?QWRtaW5pc3RyYXTDtnI=?=\r\n",
            "X-Split: =?utf-8?b?0KLQtdC80LAg?=\r\n",
            " =?utf-8?b?0YHQvtC+0LHRidC10L3QuNGP?= done\r\n",
            "X-Q: =?UTF-8?Q?Caf=C3=A9_ouvert?= et =?iso-8859-1?q?=E9t=E9?=\r\n",
            "X-Broken: =?utf-8?x?abc?= stays\r\n",
            "\r\n",
        ));
        assert_eq!(m.subject(), "Administratör");
        assert_eq!(m.header("X-Split").as_deref(), Some("Тема сообщения done"));
        assert_eq!(m.header("X-Q").as_deref(), Some("Café ouvert et été"));
        assert_eq!(
            m.header("X-Broken").as_deref(),
            Some("=?utf-8?x?abc?= stays")
        );
    }

    #[test]
    fn quoted_printable_and_base64_decode() {
        assert_eq!(
            quoted_printable_decode("Caf=C3=A9 =3D 1=\r\nsoft=\nbreaks = kept"),
            "Café = 1softbreaks = kept".as_bytes()
        );
        assert_eq!(quoted_printable_decode("end="), b"end");
        assert_eq!(
            base64_decode("aGVs\r\nbG8=").as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(base64_decode("aGVsbG8h").as_deref(), Some(&b"hello!"[..]));
        assert_eq!(base64_decode("").as_deref(), Some(&b""[..]));
        assert_eq!(base64_decode("a*b"), None);
        assert_eq!(percent_decode("%E2%82%AC%zz"), "€%zz".as_bytes());
    }

    #[test]
    fn parameters_parse_quoted_and_extended_values() {
        let params = parameters("attachment; filename=\"in;voice \\\"1\\\".pdf\"; size=42");
        assert_eq!(
            params,
            vec![
                ("filename".to_owned(), "in;voice \"1\".pdf".to_owned()),
                ("size".to_owned(), "42".to_owned()),
            ]
        );
        let extended = parameters("attachment; filename*=utf-8''%E2%82%AC.pdf");
        assert_eq!(
            extended_parameter(&extended, "filename").as_deref(),
            Some("€.pdf")
        );
        let continued =
            parameters("attachment; filename*0*=utf-8''%E2%82%AC; filename*1=\"-long.pdf\"");
        assert_eq!(
            extended_parameter(&continued, "filename").as_deref(),
            Some("€-long.pdf")
        );
    }

    #[test]
    fn multipart_mixed_gives_text_and_attachments() {
        let m = mail(concat!(
            "From: billing@plinth.test\r\n",
            "Subject: =?utf-8?b?SW52b2ljZSDigqw=?=\r\n",
            "MIME-Version: 1.0\r\n",
            "Content-Type: multipart/mixed;\r\n",
            " boundary=\"XyZ\"\r\n",
            "\r\n",
            "preamble\r\n",
            "--XyZ\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "\r\n",
            "Hello Caf=C3=A9,\r\n",
            "a very long line that was wrapped by the enc=\r\n",
            "oder.\r\n",
            "--XyZ\r\n",
            "Content-Type: application/pdf\r\n",
            "Content-Disposition: attachment; filename=\"PL-000042.pdf\"\r\n",
            "Content-Transfer-Encoding: base64\r\n",
            "\r\n",
            "JVBERi0x\r\n",
            "LjcK\r\n",
            "--XyZ--\r\n",
            "epilogue\r\n",
        ));
        assert_eq!(m.subject(), "Invoice €");
        assert_eq!(
            m.text(),
            "Hello Café,\na very long line that was wrapped by the encoder."
        );
        assert_eq!(
            m.attachments(),
            vec![(
                "PL-000042.pdf".to_owned(),
                "application/pdf".to_owned(),
                b"%PDF-1.7\n".to_vec()
            )]
        );
    }

    #[test]
    fn a_single_part_message_is_its_own_text() {
        let m = mail(concat!(
            "Subject: hi\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
            "Content-Transfer-Encoding: 7bit\r\n",
            "\r\n",
            "line one\r\n",
            "line two\r\n",
            "\r\n",
        ));
        assert_eq!(m.text(), "line one\nline two");
        assert!(m.attachments().is_empty());
    }

    #[test]
    fn multipart_splitting_handles_empty_and_unclosed_parts() {
        assert_eq!(
            split_multipart("--b\r\n--b\r\nA: 1\r\n\r\nx\r\n--b--\r\n", "b"),
            vec!["", "A: 1\r\n\r\nx"]
        );
        assert_eq!(
            split_multipart("--b\nA: 1\n\ny\n", "b"),
            vec!["A: 1\n\ny\n"]
        );
        assert!(split_multipart("no delimiters", "b").is_empty());
    }

    #[test]
    fn command_paths_parse() {
        assert_eq!(
            path("FROM:<a@b.test> BODY=8BITMIME SIZE=10", "FROM:"),
            Some(("a@b.test".to_owned(), "BODY=8BITMIME SIZE=10"))
        );
        assert_eq!(
            path("to: <c@d.test>", "TO:"),
            Some(("c@d.test".to_owned(), ""))
        );
        assert_eq!(path("FROM:<>", "FROM:"), Some((String::new(), "")));
        assert_eq!(path("FROM:a@b.test", "FROM:"), None);
        assert_eq!(declared_size("BODY=8BITMIME SIZE=10"), Some(10));
        assert_eq!(declared_size("BODY=8BITMIME"), None);
    }

    #[tokio::test]
    async fn a_raw_conversation_is_stored() -> anyhow::Result<()> {
        use tokio::io::AsyncReadExt;

        let sink = SmtpSink::start().await?;
        let mut stream = TcpStream::connect(("127.0.0.1", sink.port())).await?;
        stream
            .write_all(
                concat!(
                    "EHLO client.test\r\n",
                    "FOO\r\n",
                    "MAIL FROM:<a@b.test> BODY=8BITMIME\r\n",
                    "RCPT TO:<c@d.test>\r\n",
                    "DATA\r\n",
                    "Subject: dots\r\n",
                    "\r\n",
                    "..leading dot\r\n",
                    ".\r\n",
                    "QUIT\r\n",
                )
                .as_bytes(),
            )
            .await?;
        let mut replies = String::new();
        stream.read_to_string(&mut replies).await?;
        assert!(replies.starts_with("220 "), "{replies}");
        assert!(replies.contains("250 SIZE 10485760\r\n"), "{replies}");
        assert!(replies.contains("502 "), "{replies}");
        assert!(replies.contains("354 "), "{replies}");
        assert!(replies.ends_with("221 2.0.0 Bye\r\n"), "{replies}");

        let received = sink.wait_for(1, Duration::from_secs(5)).await?;
        assert_eq!(received[0].from, "a@b.test");
        assert_eq!(received[0].to, vec!["c@d.test".to_owned()]);
        assert_eq!(received[0].subject(), "dots");
        assert_eq!(received[0].text(), ".leading dot");
        assert!(sink.wait_for(2, Duration::from_millis(50)).await.is_err());
        Ok(())
    }
}
