//! A fault-injecting HTTP/1.1 server on 127.0.0.1:0 that answers each connection with the next
//! act of a script: a response (any status, headers, body), a reset (RST), a close without an
//! answer, or a delay before either. It records what every request carried and when it came.
//!
//! It speaks HTTP/1.1 by hand over a `TcpListener` rather than through axum, because dropping
//! or resetting a connection at a chosen point is the fault under test, and a router cannot do
//! that. Every answer closes its connection, so each attempt is one connection.
//!
//! Time is `tokio::time`: under `#[tokio::test(start_paused = true)]` the arrival instants are
//! virtual, and the gaps between them are exactly the waits the client chose.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// What the server does with one connection.
#[derive(Debug, Clone)]
pub enum Act {
    /// Answer.
    Respond { status: u16, headers: Vec<(String, String)>, body: String },
    /// Read the request, then reset the connection (RST).
    Reset,
    /// Read the request, then close the connection without answering (FIN).
    Close,
    /// Wait (in tokio time), then do the act.
    Delay(Duration, Box<Act>),
}

impl Act {
    pub fn status(status: u16) -> Act {
        Act::Respond { status, headers: Vec::new(), body: String::new() }
    }

    /// A rebuff-dialect problem body with this status and code.
    pub fn problem(status: u16, code: &str) -> Act {
        let body = format!(
            r#"{{"type":"https://rebuff.dev/errors#{code}","title":"t","status":{status},"code":"{code}","request_id":"req_body"}}"#
        );
        Act::Respond {
            status,
            headers: vec![("content-type".into(), "application/problem+json".into())],
            body,
        }
    }

    pub fn ok() -> Act {
        Act::Respond {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: r#"{"ok":true}"#.into(),
        }
    }

    #[must_use]
    pub fn header(self, name: &str, value: impl Into<String>) -> Act {
        match self {
            Act::Respond { status, mut headers, body } => {
                headers.push((name.to_owned(), value.into()));
                Act::Respond { status, headers, body }
            }
            other => other,
        }
    }

    pub fn after(self, delay: Duration) -> Act {
        Act::Delay(delay, Box::new(self))
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub struct Server {
    pub addr: SocketAddr,
    script: Arc<Mutex<VecDeque<Act>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Starts the server; once the script is played out, it answers 200.
    pub async fn start(script: impl IntoIterator<Item = Act>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let script = Arc::new(Mutex::new(script.into_iter().collect::<VecDeque<_>>()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, v) = (script.clone(), seen.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (s, v) = (s.clone(), v.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, s, v).await;
                });
            }
        });
        Server { addr, script, seen, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Appends acts to the script.
    pub fn then(&self, acts: impl IntoIterator<Item = Act>) {
        self.script.lock().expect("lock").extend(acts);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    /// The gaps between consecutive requests, in milliseconds.
    pub fn gaps_ms(&self) -> Vec<u128> {
        let seen = self.seen();
        seen.windows(2).map(|w| (w[1].at - w[0].at).as_millis()).collect()
    }
}

async fn serve(
    mut stream: TcpStream,
    script: Arc<Mutex<VecDeque<Act>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<()> {
    let Some(request) = read_request(&mut stream).await? else { return Ok(()) };
    seen.lock().expect("lock").push(request);
    let mut act = script.lock().expect("lock").pop_front().unwrap_or_else(Act::ok);
    loop {
        match act {
            Act::Delay(d, next) => {
                tokio::time::sleep(d).await;
                act = *next;
            }
            Act::Reset => {
                stream.set_zero_linger()?;
                drop(stream);
                return Ok(());
            }
            Act::Close => {
                stream.shutdown().await?;
                return Ok(());
            }
            Act::Respond { status, headers, body } => {
                let mut out =
                    format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
                for (n, v) in headers {
                    out.push_str(&format!("{n}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&body);
                stream.write_all(out.as_bytes()).await?;
                stream.shutdown().await?;
                return Ok(());
            }
        }
    }
}

/// Reads one request (head and a `Content-Length` body).
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Seen>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let at = Instant::now();
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut have = buf.len() - (head_end + 4);
    while have < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Ok(Some(Seen { at, method, path, headers }))
}
