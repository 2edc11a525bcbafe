//! Routing: every message reaches the client it belongs to and no other. Clients sharing one
//! instance use the same request ids and progress tokens and each gets exactly its own answers
//! and progress; a server's request during a call (sampling) reaches the caller and its answer
//! the server; a cancellation reaches the upstream request; a notification said during a call
//! travels on that call's stream.

use serde_json::{json, Value};

use super::support::{error_message, fixture_server, Client, Gateway, SLACK};
use crate::harness::{Cookie, Mode};

#[test]
fn clients_sharing_an_instance_with_the_same_ids_and_tokens_each_get_their_own() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    eight_clients_share(&gw, "fx");
    gw.shut_down(&cookie);
}

/// Eight clients of `server`'s one shared instance, 1,000 calls each, all with the same ids
/// and progress tokens: every answer and every progress notification checked to be the
/// client's own.
pub(super) fn eight_clients_share(gw: &Gateway, server: &str) {
    let clients: Vec<Client> = (0..8)
        .map(|_| {
            let mut c = gw.client(Some(server));
            c.initialize();
            c
        })
        .collect();
    let workers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(n, c)| {
            std::thread::spawn(move || {
                // 1,000 calls each, every one checked; every tenth reports progress (3 + n
                // steps: a client seeing another's progress would count the wrong total).
                for i in 0..1000 {
                    // Every client uses the same id and the same progress token.
                    let id = i % 10;
                    if i % 10 == 9 {
                        let r = c.post(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
                            "name": "progress", "arguments": {"steps": 3 + n, "ms": 0}, "_meta": {"progressToken": "tok"}}}));
                        let messages = r.messages();
                        let progress: Vec<&Value> = messages.iter().filter(|m| m["method"] == "notifications/progress").collect();
                        assert_eq!(progress.len(), 3 + n, "client {n} call {i}: its own progress, all of it: {}", r.text());
                        assert!(progress.iter().all(|p| p["params"]["progressToken"] == "tok"), "{}", r.text());
                        assert!(progress.iter().all(|p| p["params"]["total"] == json!(3 + n)), "only its own: {}", r.text());
                        assert_eq!(messages.last().map(|m| &m["id"]), Some(&json!(id)));
                        continue;
                    }
                    let text = format!("client {n} call {i}");
                    let r = c.post(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
                        "name": "echo", "arguments": {"text": text}, "_meta": {"progressToken": "tok"}}}));
                    let messages = r.messages();
                    assert_eq!(messages.len(), 1, "{}", r.text());
                    assert_eq!(messages[0]["id"], id);
                    assert_eq!(messages[0].pointer("/result/content/0/text"), Some(&json!(text)), "client {n} got {}", messages[0]);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a client thread");
    }
}

#[test]
fn a_server_s_request_during_a_call_reaches_the_caller_and_its_answer_the_server() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    let mut c = gw.client(Some("fx"));
    c.initialize();
    let mut call = c.stream(&json!({"jsonrpc": "2.0", "id": "s1", "method": "tools/call", "params": {"name": "sample", "arguments": {"prompt": "2+2?"}}}));
    let request = call.next(SLACK).expect("the sampling request, on the call's stream");
    assert_eq!(request["method"], "sampling/createMessage", "{request}");
    assert_eq!(
        request.pointer("/params/messages/0/content/text"),
        Some(&json!("2+2?")),
        "{request}"
    );
    // The gateway gave it an id of its own; the answer goes back under that id.
    let r = c.post(&json!({"jsonrpc": "2.0", "id": request["id"], "result": {
        "role": "assistant", "content": {"type": "text", "text": "four"}, "model": "m", "stopReason": "endTurn"}}));
    assert_eq!(r.status, 202);
    let answer = call.next(SLACK).expect("the answer");
    assert_eq!(answer["id"], "s1");
    assert_eq!(
        answer.pointer("/result/content/0/text"),
        Some(&json!("four")),
        "{answer}"
    );
    gw.shut_down(&cookie);
}

#[test]
fn a_cancellation_reaches_the_upstream_request() {
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("fx", &cookie, &[], "request_timeout = \"60s\""),
    );
    let mut c = gw.client(Some("fx"));
    c.initialize();
    // Streamed: once the headers are in, the request is in flight upstream.
    let mut call = c.stream(&json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": {"name": "sleep", "arguments": {"ms": 2000}}}));
    let r = c.post(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 41, "reason": "changed my mind"}}));
    assert_eq!(r.status, 202);
    // The gateway's own answer ("cancelled"), not the server's ("slept 2000 ms"): the client
    // does not wait for the server to finish.
    let answer = call.next(SLACK).expect("the call ends");
    assert!(error_message(&answer).contains("cancelled"), "{answer}");
    // The server was told, under its own id for the request (once the fixture, which reads
    // nothing while it sleeps, wakes up).
    gw.wait_log("tether-fixture: cancelled");
    let told = gw
        .log()
        .lines()
        .find(|l| l.contains("tether-fixture: cancelled"))
        .unwrap_or_default()
        .to_string();
    assert!(
        told.contains("changed my mind") && !told.contains("\"requestId\":41"),
        "the reason, and the gateway's id for the request, not the client's: {told}"
    );
    // The instance goes on.
    c.echo("after the cancel");
    gw.shut_down(&cookie);
}

#[test]
fn a_shared_server_s_logs_reach_the_one_client_calling_and_no_one_when_that_is_ambiguous() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    let log_call = |text: &str| {
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "notify", "arguments": {
        "method": "notifications/message", "params": {"level": "info", "data": text}}}})
    };
    let logs = |messages: &[Value]| -> Vec<Value> {
        messages
            .iter()
            .filter(|m| m["method"] == "notifications/message")
            .map(|m| m["params"]["data"].clone())
            .collect()
    };
    let mut a = gw.client(Some("fx"));
    a.initialize();
    // A alone uses the instance: the log said during its call is its own.
    assert_eq!(logs(&a.post(&log_call("for a")).messages()), vec![json!("for a")]);

    // B joins and listens on its GET stream. A is the only one calling: the log is A's still.
    let mut b = gw.client(Some("fx"));
    b.initialize();
    let sid = b.session.clone().expect("session");
    let mut listening = super::http::EventStream::open(
        gw.addr,
        "/mcp/fx",
        &[("Accept", "text/event-stream"), ("Mcp-Session-Id", &sid)],
    )
    .expect("GET");
    assert_eq!(
        logs(&a.post(&log_call("a calls alone")).messages()),
        vec![json!("a calls alone")]
    );

    // B's call waits on the fixture (its sampling question unanswered) while A calls: both have
    // calls in flight, the log cannot be told apart, and goes to no one.
    let mut waiting = b.stream(&json!({"jsonrpc": "2.0", "id": "s1", "method": "tools/call", "params": {"name": "sample", "arguments": {"prompt": "?"}}}));
    let question = waiting.next(SLACK).expect("the sampling request, on B's call stream");
    assert_eq!(question["method"], "sampling/createMessage", "{question}");
    assert_eq!(
        logs(&a.post(&log_call("whose?")).messages()),
        Vec::<Value>::new(),
        "not to A"
    );
    let r = b.post(&json!({"jsonrpc": "2.0", "id": question["id"], "result": {
        "role": "assistant", "content": {"type": "text", "text": "!"}, "model": "m", "stopReason": "endTurn"}}));
    assert_eq!(r.status, 202);
    let answer = waiting.next(SLACK).expect("B's answer, with no log before it");
    assert_eq!(answer["id"], "s1", "{answer}");

    // A list change concerns everyone: it is the first message on B's GET stream, so no log
    // ever reached B.
    let r = a.post(&json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "notify", "arguments": {"method": "notifications/tools/list_changed"}}}));
    assert_eq!(r.status, 200);
    let first = listening.next(SLACK).expect("a message on B's stream");
    assert_eq!(first["method"], "notifications/tools/list_changed", "{first}");
    gw.shut_down(&cookie);
}

#[test]
fn a_session_instance_s_logs_reach_its_session() {
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("fx", &cookie, &[], "lifetime = \"session\""),
    );
    let mut clients: Vec<Client> = (0..2)
        .map(|_| {
            let mut c = gw.client(Some("fx"));
            c.initialize();
            c
        })
        .collect();
    for (n, c) in clients.iter_mut().enumerate() {
        let text = format!("for {n}");
        let r = c.post(
            &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "notify", "arguments": {
            "method": "notifications/message", "params": {"level": "info", "data": text}}}}),
        );
        let logs: Vec<Value> = r
            .messages()
            .into_iter()
            .filter(|m| m["method"] == "notifications/message")
            .collect();
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert_eq!(logs[0]["params"]["data"], json!(text));
    }
    gw.shut_down(&cookie);
}
