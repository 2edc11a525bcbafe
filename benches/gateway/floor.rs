//! The floor: the least an HTTP hop in front of a stdio server can cost, measured in the same
//! run as Tether. A relay with nothing but what every gateway must do: hyper 1 on a
//! current-thread runtime, one upstream child initialized once, each client's id replaced by
//! one of its own and put back on the answer, one task writing to the child and one reading
//! it. No sessions to speak of, no routing, no limits, no ledger. The bench runs it as
//! `gateway --floor-relay COMMAND…` (its own executable): it prints the address it listens on.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

type Waiting = Arc<Mutex<HashMap<u64, (Value, oneshot::Sender<Value>)>>>;

struct Relay {
    to_child: mpsc::UnboundedSender<Vec<u8>>,
    waiting: Waiting,
    next: Mutex<u64>,
    init: Value,
}

/// Runs the relay in front of `argv` until killed.
pub fn main(argv: &[String]) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    rt.block_on(serve(argv))
}

#[allow(clippy::disallowed_methods)] // The bench starts what it measures.
async fn serve(argv: &[String]) -> Result<()> {
    let mut child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the server")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"floor","version":"1"}}}"#;
    stdin.write_all(format!("{init}\n").as_bytes()).await?;
    let init: Value = loop {
        let line = lines.next_line().await?.context("the server closed its output")?;
        let v: Value = serde_json::from_str(&line)?;
        if v.get("id").is_some() {
            break v["result"].clone();
        }
    };
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
        .await?;
    let (to_child, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(line) = queue.recv().await {
            if stdin.write_all(&line).await.is_err() {
                return;
            }
        }
    });
    let waiting: Waiting = Arc::default();
    let answers = waiting.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(mut v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let Some(id) = v.get("id").and_then(Value::as_u64) else {
                continue;
            };
            let Some((client_id, reply)) = answers.lock().ok().and_then(|mut w| w.remove(&id)) else {
                continue;
            };
            v["id"] = client_id;
            let _ = reply.send(v);
        }
    });
    let relay = Arc::new(Relay {
        to_child,
        waiting,
        next: Mutex::new(1),
        init,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let relay = relay.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(relay.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(relay: Arc<Relay>, req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let json = |status: StatusCode, body: Vec<u8>| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut().insert(
            "content-type",
            hyper::header::HeaderValue::from_static("application/json"),
        );
        r
    };
    let Ok(body) = req.into_body().collect().await else {
        return Ok(json(StatusCode::BAD_REQUEST, Vec::new()));
    };
    let Ok(mut message) = serde_json::from_slice::<Value>(&body.to_bytes()) else {
        return Ok(json(StatusCode::BAD_REQUEST, Vec::new()));
    };
    let Some(client_id) = message.get("id").cloned() else {
        return Ok(json(StatusCode::ACCEPTED, Vec::new()));
    };
    if message["method"] == "initialize" {
        let answer = serde_json::json!({"jsonrpc": "2.0", "id": client_id, "result": relay.init});
        let mut r = json(StatusCode::OK, answer.to_string().into_bytes());
        r.headers_mut()
            .insert("mcp-session-id", hyper::header::HeaderValue::from_static("floor"));
        return Ok(r);
    }
    let own = {
        let Ok(mut next) = relay.next.lock() else {
            return Ok(json(StatusCode::INTERNAL_SERVER_ERROR, Vec::new()));
        };
        *next += 1;
        *next
    };
    message["id"] = own.into();
    let (tx, rx) = oneshot::channel();
    if let Ok(mut w) = relay.waiting.lock() {
        w.insert(own, (client_id, tx));
    }
    let mut line = message.to_string().into_bytes();
    line.push(b'\n');
    let _ = relay.to_child.send(line);
    Ok(match rx.await {
        Ok(answer) => json(StatusCode::OK, answer.to_string().into_bytes()),
        Err(_) => json(StatusCode::BAD_GATEWAY, Vec::new()),
    })
}
