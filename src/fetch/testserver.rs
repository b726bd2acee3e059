//! A loopback HTTP/1.1 server for tests: serves a map of path -> bytes on
//! 127.0.0.1, answers 404 for anything else, can answer 500 a set number of
//! times for a path (to exercise retries) and counts requests per path.
//!
//! It understands just enough of HTTP for `ureq` GETs: one request per
//! connection, answered with `Connection: close`. Not for production.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    /// Path -> how many more requests get a 500.
    failures: HashMap<String, usize>,
    /// Path -> how many more requests get half the body, then a closed
    /// connection (a transfer that breaks off half way).
    truncations: HashMap<String, usize>,
    hits: HashMap<String, usize>,
    /// Paths in the order they were asked for.
    log: Vec<String>,
    /// Held before each answer, so that requests overlap in time.
    delay: Duration,
    in_flight: usize,
    max_in_flight: usize,
}

/// A running server; stopped when dropped.
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let state = state.clone();
                        std::thread::spawn(move || serve(conn, &state));
                    }
                }
            })
        };
        Self {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The URL of `path` (which starts with '/').
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn serve(&self, path: &str, body: impl Into<Vec<u8>>) {
        self.lock().files.insert(path.to_owned(), body.into());
    }

    /// The next `times` requests for `path` get HTTP 500.
    pub fn fail(&self, path: &str, times: usize) {
        self.lock().failures.insert(path.to_owned(), times);
    }

    /// The next `times` requests for `path` break off after half the body.
    pub fn truncate(&self, path: &str, times: usize) {
        self.lock().truncations.insert(path.to_owned(), times);
    }

    /// Holds every answer for `delay` (requests then overlap).
    pub fn delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// The most requests that were being answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }

    /// Paths in the order they were asked for.
    pub fn requests(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    /// Requests seen for `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.lock().hits.get(path).copied().unwrap_or(0)
    }

    /// Requests seen for all paths.
    pub fn total_hits(&self) -> usize {
        self.lock().hits.values().sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Skip the headers up to the empty line.
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let delay = {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        st.log.push(path.to_owned());
        st.in_flight += 1;
        st.max_in_flight = st.max_in_flight.max(st.in_flight);
        st.delay
    };
    std::thread::sleep(delay);
    let (status, body, cut) = {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        st.in_flight -= 1;
        *st.hits.entry(path.to_owned()).or_default() += 1;
        let cut = match st.truncations.get_mut(path).filter(|n| **n > 0) {
            Some(n) => {
                *n -= 1;
                true
            }
            None => false,
        };
        let failing = st.failures.get_mut(path).filter(|n| **n > 0);
        if method != "GET" {
            ("405 Method Not Allowed", Vec::new(), false)
        } else if let Some(n) = failing {
            *n -= 1;
            ("500 Internal Server Error", b"try again".to_vec(), false)
        } else if let Some(body) = st.files.get(path) {
            ("200 OK", body.clone(), cut)
        } else {
            ("404 Not Found", b"not found".to_vec(), false)
        }
    };
    let mut conn = conn;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let sent = if cut {
        &body[..body.len() / 2]
    } else {
        &body[..]
    };
    let _ = conn.write_all(sent);
    let _ = conn.flush();
}
