//! A loopback HTTP receiver for tests of outbound HTTP: answers every request `200 ok` and
//! records when each came and what it carried.

#![allow(
    dead_code,
    reason = "shared by several test binaries; each uses part of it"
)]

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request the receiver answered.
#[derive(Debug, Clone)]
pub struct Hit {
    /// When it was answered, in Unix milliseconds.
    pub at_ms: u128,
    /// Its request line, e.g. `POST /hook HTTP/1.1`.
    pub request_line: String,
    /// Its body, lossily decoded.
    pub body: String,
}

/// A running receiver: its URL (`http://127.0.0.1:PORT/hook`) and what it received.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// Where to send requests.
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    /// Starts a receiver on an ephemeral loopback port; it runs until the runtime stops.
    pub async fn start() -> Result<Receiver> {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let recorded = Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let recorded = Arc::clone(&recorded);
                tokio::spawn(async move {
                    if let Ok(hit) = answer(stream).await
                        && let Ok(mut hits) = recorded.lock()
                    {
                        hits.push(hit);
                    }
                });
            }
        });
        Ok(Receiver { url, hits })
    }

    /// Everything received so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits
            .lock()
            .map(|hits| hits.clone())
            .unwrap_or_default()
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// Reads one request (headers and a `content-length` body) and answers 200.
async fn answer(mut stream: tokio::net::TcpStream) -> Result<Hit> {
    let mut read = Vec::new();
    let mut buf = [0_u8; 4096];
    let body_start = loop {
        let n = stream.read(&mut buf).await?;
        ensure!(n > 0, "closed before the headers ended");
        read.extend_from_slice(&buf[..n]);
        if let Some(at) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let headers = String::from_utf8_lossy(&read[..body_start]).into_owned();
    let length: usize = headers
        .to_ascii_lowercase()
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while read.len() < body_start + length {
        let n = stream.read(&mut buf).await?;
        ensure!(n > 0, "closed before the body ended");
        read.extend_from_slice(&buf[..n]);
    }
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        .await?;
    Ok(Hit {
        at_ms: now_ms(),
        request_line: headers.lines().next().unwrap_or_default().to_owned(),
        body: String::from_utf8_lossy(&read[body_start..]).into_owned(),
    })
}
