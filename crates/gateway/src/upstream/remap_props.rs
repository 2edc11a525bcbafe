//! Property (proptest): id remapping never mixes two clients' ids.
//!
//! Several clients share one instance and send requests with ids of any JSON type (integers
//! past 2^64, negative, floats, exponents, strings with escapes and any Unicode), the same ids
//! across clients; the server answers in any order, interleaved with new requests. Through
//! the real path (`route::send_upstream` out, `Upstream::route` back, the instance's outbox
//! standing for the server's stdin): no two requests in flight share an upstream id, the server
//! sees each request byte for byte with only its id replaced, and each answer reaches exactly
//! the client that asked, under the id it wrote, byte for byte, once.

use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch};

use super::{Anchor, Made, Out, Owner, Upstream};
use crate::jsonrpc::View;
use crate::protocol::ClientInit;
use crate::session::{Endpoint, Mode, Session};

/// An id as a client writes it: raw JSON text of any type JSON-RPC allows.
fn any_id() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        // Past u64 and i64: only their bytes can carry them.
        "-?[1-9][0-9]{20,40}",
        // Floats, exponents, negative zero: numbers serde would rewrite.
        "-?(0|[1-9][0-9]{0,5})\\.[0-9]{1,6}([eE][+-]?[0-9]{1,3})?",
        Just("-0".to_string()),
        Just("1e400".to_string()),
        // Any string, as serde writes it (control characters escaped, the rest as is).
        any::<String>().prop_map(|s| serde_json::Value::from(s).to_string()),
        // A string written with escapes only: \uXXXX (surrogate pairs too), \n, \", \\, \/.
        proptest::collection::vec(any::<char>(), 0..6).prop_map(|chars| escaped(&chars)),
        // Ids every client picks.
        prop_oneof![Just("1"), Just("0"), Just("\"1\""), Just("\"a\"")].prop_map(str::to_string),
    ]
}

/// `chars` as a JSON string of escapes.
fn escaped(chars: &[char]) -> String {
    let mut out = String::from("\"");
    for c in chars {
        match c {
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// What a test step does: a client sends a request, or the server answers one in flight.
#[derive(Debug, Clone)]
enum Step {
    Send { client: usize, id: String },
    Answer { pick: usize },
}

fn steps(clients: usize) -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        3 => (0..clients, any_id()).prop_map(|(client, id)| Step::Send { client, id }),
        1 => any::<usize>().prop_map(|pick| Step::Answer { pick }),
    ];
    proptest::collection::vec(step, 1..60)
}

fn session(n: usize) -> Arc<Session> {
    let params =
        RawValue::from_string(r#"{"protocolVersion":"2025-06-18","capabilities":{}}"#.into()).expect("valid JSON");
    let client = ClientInit::parse(Some(&params)).expect("initialize params");
    Arc::new(Session::new(
        format!("session-{n}"),
        format!("s{n}"),
        Endpoint::All,
        Mode::All,
        0,
        client,
        "2025-06-18",
    ))
}

/// A shared instance of a server that is never started: its lifeline is made (a pipe) but no
/// shim is spawned; its outbox is what the server would read.
fn instance() -> (Arc<Upstream>, mpsc::Receiver<Bytes>) {
    let config = crate::config::parse(std::path::Path::new("remap.toml"), "[servers.fx]\ncommand = \"fx\"\n")
        .expect("a configuration");
    let server = Arc::new(config.servers["fx"].clone());
    let launch = tether_supervisor::launch::Launch::new(
        "tether".into(),
        tether_supervisor::launch::ServerCommand::Local(vec!["fx".into()]),
        "owner".into(),
        "instance".into(),
    );
    let lifeline = launch.prepare().expect("a lifeline pipe").lifeline;
    let (_exit_tx, exit) = watch::channel(None);
    let Made { up, inbox } = Upstream::make(
        "instance".into(),
        server,
        Owner::Shared,
        Anchor::Shim(lifeline),
        exit,
        None,
    );
    (up, inbox)
}

/// A request in flight.
struct Asked {
    client: usize,
    id: String,
    upstream: u64,
    /// A number only this request's answer carries.
    mark: usize,
    reply: mpsc::Receiver<Out>,
}

fn request(id: &str, mark: usize) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"mark":{mark}}}}}}}"#
    )
}

fn answer(id: &str, mark: usize) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"mark":{mark}}}}}"#)
}

/// The server answers the request in flight at `pick` (modulo), and only its client hears.
fn answer_one(up: &Arc<Upstream>, in_flight: &mut Vec<Asked>, pick: usize, done: &mut Vec<Asked>) {
    if in_flight.is_empty() {
        return;
    }
    let mut asked = in_flight.swap_remove(pick % in_flight.len());
    up.route(answer(&asked.upstream.to_string(), asked.mark).as_bytes());
    match asked.reply.try_recv() {
        Ok(Out::Answer(bytes)) => assert_eq!(
            std::str::from_utf8(&bytes).expect("UTF-8"),
            answer(&asked.id, asked.mark),
            "client {} (id {}) got another's answer, or its id changed",
            asked.client,
            asked.id
        ),
        other => panic!("client {} (id {}) got no answer: {other:?}", asked.client, asked.id),
    }
    done.push(asked);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn id_remapping_never_mixes_two_clients_ids(steps in steps(4)) {
        let sessions: Vec<Arc<Session>> = (0..4).map(session).collect();
        let (up, mut server_stdin) = instance();
        let (mut in_flight, mut done) = (Vec::<Asked>::new(), Vec::<Asked>::new());
        for (mark, step) in steps.into_iter().enumerate() {
            match step {
                // A client does not reuse an id of its own while it is in flight (JSON-RPC);
                // other clients may.
                Step::Send { client, id } if in_flight.iter().any(|a| a.client == client && a.id == id) => {}
                Step::Send { client, id } => {
                    let text = request(&id, mark);
                    let view = View::parse(&text).expect("a request");
                    let (upstream, reply) = crate::route::send_upstream(&up, &sessions[client], &view, None)
                        .map_err(|e| TestCaseError::fail(format!("refused: {e:?}")))?;
                    prop_assert!(
                        in_flight.iter().all(|a| a.upstream != upstream),
                        "upstream id {upstream} given to two requests in flight"
                    );
                    let sent = server_stdin.try_recv().expect("the request reached the server");
                    prop_assert_eq!(
                        std::str::from_utf8(&sent).expect("UTF-8"),
                        request(&upstream.to_string(), mark),
                        "the server must see the request with only its id replaced"
                    );
                    in_flight.push(Asked { client, id, upstream, mark, reply });
                }
                Step::Answer { pick } => answer_one(&up, &mut in_flight, pick, &mut done),
            }
        }
        while !in_flight.is_empty() {
            let pick = in_flight.len() / 2;
            answer_one(&up, &mut in_flight, pick, &mut done);
        }
        // Nothing else reached anyone: each client heard its own answers, once.
        for asked in &mut done {
            prop_assert!(asked.reply.try_recv().is_err(), "client {} heard twice", asked.client);
        }
        prop_assert!(server_stdin.try_recv().is_err());
    }
}

#[test]
fn the_ids_drawn_are_json_of_every_kind() {
    // The generator's escapes are JSON a parser reads back to the same string.
    let chars = ['\u{1F600}', '"', '\\', '/', '\n', '\u{0}', 'é'];
    let s: String = serde_json::from_str(&escaped(&chars)).expect("valid JSON");
    assert_eq!(s, chars.iter().collect::<String>());
    for id in ["-0", "1e400", "123456789012345678901234567890", "-1.5e-7"] {
        let text = request(id, 0);
        let view = View::parse(&text).expect("a request");
        assert_eq!(view.id.map(RawValue::get), Some(id));
    }
}
