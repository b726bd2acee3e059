//! A GCE metadata server on the host's loopback, for a gce image booted in
//! QEMU with `craton qemu --gce-metadata` (QEMU's user network forwards the
//! guest's 169.254.169.254:80 here). It answers what the guest asks, in the
//! shapes of Google's "About VM metadata" documentation: single values
//! under /computeMetadata/v1/ (Ignition's gcp provider reads
//! `instance/attributes/user-data`), the whole tree as JSON for
//! `?recursive=true` (google-guest-agent's accounts daemon reads
//! `ssh-keys` from it), with an ETag, and a `wait_for_change` request that
//! names the current ETag held until its `timeout` as the real server
//! does. Every request must carry `Metadata-Flavor: Google`; answers carry
//! it too. It records the paths asked, so a test can tell who came.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The server's address ("127.0.0.1:PORT") and the requests it saw.
pub struct MetadataServer {
    pub addr: String,
    pub seen: Arc<Mutex<Vec<String>>>,
}

/// The longest a `wait_for_change` request is held (the agent asks for
/// 60 s; a test need not wait that long between its polls).
const HOLD_SECS: u64 = 20;
const ETAG: &str = "craton-test-etag-1";

/// Serves `tree` (the JSON of /computeMetadata/v1/: `{"instance":
/// {...}, "project": {...}}`) until the process ends.
pub fn serve(tree: serde_json::Value) -> MetadataServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let tree = Arc::new(tree);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (tree, log) = (tree.clone(), log.clone());
            std::thread::spawn(move || {
                let _ = answer(stream, &tree, &log);
            });
        }
    });
    MetadataServer { addr, seen }
}

fn answer(
    mut stream: TcpStream,
    tree: &serde_json::Value,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request)? == 0 {
            return Ok(());
        }
        let mut flavor = false;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
            let h = h.trim().to_ascii_lowercase();
            flavor |= h == "metadata-flavor: google";
        }
        let target = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
        log.lock().unwrap().push(target.clone());
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let params: Vec<(&str, &str)> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let param = |k: &str| params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        let (status, body) = if flavor {
            match lookup(tree, path) {
                None => ("404 Not Found", "not found\n".to_owned()),
                Some(v) => {
                    if param("wait_for_change") == Some("true") && param("last_etag") == Some(ETAG)
                    {
                        let asked: u64 = param("timeout_sec")
                            .or(param("timeout"))
                            .and_then(|t| t.parse().ok())
                            .unwrap_or(HOLD_SECS);
                        std::thread::sleep(Duration::from_secs(asked.min(HOLD_SECS)));
                    }
                    let text = match (param("recursive"), &v) {
                        (_, serde_json::Value::String(s)) => s.clone(),
                        (Some("true"), v) => v.to_string(),
                        (_, serde_json::Value::Object(m)) => m
                            .iter()
                            .map(|(k, v)| {
                                if v.is_object() {
                                    format!("{k}/\n")
                                } else {
                                    format!("{k}\n")
                                }
                            })
                            .collect(),
                        (_, v) => v.to_string(),
                    };
                    ("200 OK", text)
                }
            }
        } else {
            (
                "403 Forbidden",
                "Missing Metadata-Flavor:Google header.\n".to_owned(),
            )
        };
        write!(
            stream,
            "HTTP/1.1 {status}\r\nMetadata-Flavor: Google\r\nETag: {ETAG}\r\n\
             Content-Type: application/text\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        stream.write_all(body.as_bytes())?;
        stream.flush()?;
    }
}

/// The value at `/computeMetadata/v1/A/B/...`: keys of the tree, with
/// the JSON keys' camelCase spelled as the URL's dashes (`project-id` is
/// `projectId`), as Google maps them.
fn lookup<'a>(tree: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let rest = path.strip_prefix("/computeMetadata/v1")?;
    let mut v = tree;
    for part in rest.split('/').filter(|p| !p.is_empty()) {
        let camel: String = {
            let mut out = String::new();
            let mut up = false;
            for c in part.chars() {
                if c == '-' {
                    up = true;
                } else if up {
                    out.push(c.to_ascii_uppercase());
                    up = false;
                } else {
                    out.push(c);
                }
            }
            out
        };
        v = v.get(part).or_else(|| v.get(&camel))?;
    }
    Some(v)
}
