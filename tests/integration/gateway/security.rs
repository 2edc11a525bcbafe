//! The front door's defaults: Host checked on a loopback bind (DNS rebinding), Origin checked
//! on every request, a bearer token when one is configured, the GET stream tied to its session,
//! slow clients cut off.

use super::http::{self, EventStream};
use super::support::{fixture_server, Gateway, SLACK};
use crate::harness::{Cookie, Mode};

const INIT: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

fn post(gw: &Gateway, headers: &[(&str, &str)]) -> http::Response {
    let mut all = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    all.extend_from_slice(headers);
    http::request(gw.addr, "POST", "/mcp/fx", &all, INIT).expect("POST")
}

#[test]
fn foreign_hosts_and_origins_are_refused() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    let own = gw.addr.to_string();
    assert_eq!(post(&gw, &[("Host", &own)]).status, 200);
    assert_eq!(
        post(&gw, &[("Host", &format!("localhost:{}", gw.addr.port()))]).status,
        200
    );
    let r = post(&gw, &[("Host", "evil.example.com")]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("DNS rebinding"));
    let r = post(&gw, &[("Host", &own), ("Origin", "http://evil.example.com")]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        post(
            &gw,
            &[
                ("Host", &own),
                ("Origin", &format!("http://localhost:{}", gw.addr.port()))
            ]
        )
        .status,
        200
    );
    gw.shut_down(&cookie);
}

#[test]
fn a_configured_token_is_required() {
    let cookie = Cookie::new();
    let token = "s3cret-token-0123456789";
    let config = format!(
        "[gateway]\ntoken = \"{token}\"\n\n{}",
        fixture_server("fx", &cookie, &[], "")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let r = post(&gw, &[]);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"tether\""));
    assert_eq!(
        post(&gw, &[("Authorization", "Bearer wrong-token-0123456789")]).status,
        401
    );
    let mut c = gw.client(Some("fx"));
    c.token = Some(token.into());
    c.initialize();
    c.echo("authorized");
    // The session id alone is not enough.
    c.token = None;
    let r = c.post(&serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}));
    assert_eq!(r.status, 401);
    assert!(!gw.log().contains(token), "the token never appears in the log");
    gw.shut_down(&cookie);
}

#[test]
fn a_session_is_bound_to_the_token_that_opened_it_across_a_token_rotation() {
    let cookie = Cookie::new();
    let with_token = |token: &str| {
        format!(
            "[gateway]\ntoken = \"{token}\"\n\n{}",
            fixture_server("fx", &cookie, &[], "")
        )
    };
    let (old, new) = ("old-token-0123456789abcdef", "new-token-0123456789abcdef");
    let gw = Gateway::start(&cookie, Mode::Cgroup, &with_token(old));
    let mut c = gw.client(Some("fx"));
    c.token = Some(old.into());
    c.initialize();
    c.echo("opened with the old token");
    let sid = c.session.clone().expect("session");
    // Its id is 128 random bits, in hex: nothing to guess from.
    assert!(sid.len() >= 32 && sid.chars().all(|ch| ch.is_ascii_hexdigit()), "{sid}");
    std::fs::write(&gw.config, with_token(new)).expect("rewriting the configuration");
    gw.signal(nix::sys::signal::Signal::SIGHUP);
    gw.wait_log("reload applied");
    let list = serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    // The old token no longer opens the door; the new one opens it, but not onto this session.
    assert_eq!(c.post(&list).status, 401);
    c.token = Some(new.into());
    let r = c.post(&list);
    assert_eq!(
        r.status,
        404,
        "a session is unknown to a token that did not open it: {}",
        r.text()
    );
    // A session opened with the new token is served.
    let mut fresh = gw.client(Some("fx"));
    fresh.token = Some(new.into());
    fresh.initialize();
    fresh.echo("opened with the new token");
    gw.shut_down(&cookie);
}

#[test]
fn state_files_and_sockets_are_the_gateway_user_s_only() {
    use std::os::unix::fs::PermissionsExt;
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    let mut c = gw.client(Some("fx"));
    c.initialize();
    c.echo("something in the ledger");
    let dir = cookie.state_dir();
    let mode = |p: &std::path::Path| std::fs::symlink_metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("the state directory").flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // The test's own configuration file lives there too; it is not the gateway's.
        if name.ends_with(".toml") {
            continue;
        }
        assert_eq!(mode(&path) & 0o077, 0, "{name} is open to others: {:o}", mode(&path));
        seen.push(name);
    }
    for needed in ["ledger.sqlite3", "ledger.sqlite3-wal", "admin.sock"] {
        assert!(seen.iter().any(|n| n == needed), "{needed} not found in {seen:?}");
    }
    // And another user really cannot read the ledger (becoming one takes root).
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: the modes above are the check");
        gw.shut_down(&cookie);
        return;
    }
    let mut cat = std::process::Command::new("setpriv");
    cat.args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(dir.join("ledger.sqlite3"));
    let other = cookie.set_env(&mut cat).output().expect("setpriv");
    assert!(!other.status.success(), "nobody read the ledger");
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("Permission denied"),
        "{other:?}"
    );
    gw.shut_down(&cookie);
}

#[test]
fn the_get_stream_belongs_to_its_session_and_ends_with_it() {
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    let mut c = gw.client(Some("fx"));
    c.initialize();
    let sid = c.session.clone().expect("session");
    let refused = EventStream::open(gw.addr, "/mcp/fx", &[("Accept", "text/event-stream")]).expect("GET");
    assert_eq!(refused.status, 400, "a GET stream needs its session");
    let mut stream = EventStream::open(
        gw.addr,
        "/mcp/fx",
        &[("Accept", "text/event-stream"), ("Mcp-Session-Id", &sid)],
    )
    .expect("GET");
    assert_eq!(stream.status, 200);
    // Another session's id, or none known: no stream.
    let foreign = EventStream::open(
        gw.addr,
        "/mcp/fx",
        &[
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", "0123456789abcdef0123456789abcdef"),
        ],
    )
    .expect("GET");
    assert_eq!(foreign.status, 404, "an unknown session has no stream");
    assert_eq!(c.delete(), 200);
    assert!(stream.closed_within(SLACK), "the stream ends with its session");
    gw.shut_down(&cookie);
}

#[test]
fn a_page_of_an_allowed_origin_gets_cors_headers_and_a_foreign_one_none() {
    let cookie = Cookie::new();
    let config = format!(
        "[gateway]\nallowed_origins = [\"https://app.example.com\"]\n\n{}",
        fixture_server("fx", &cookie, &[], "")
    );
    let gw = Gateway::start(&cookie, Mode::Cgroup, &config);
    let own = gw.addr.to_string();
    let preflight = http::request(
        gw.addr,
        "OPTIONS",
        "/mcp/fx",
        &[
            ("Host", &own),
            ("Origin", "https://app.example.com"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    )
    .expect("OPTIONS");
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(preflight
        .header("access-control-allow-headers")
        .is_some_and(|h| h.contains("mcp-session-id")));
    let r = post(&gw, &[("Host", &own), ("Origin", "https://app.example.com")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-expose-headers"), Some("mcp-session-id"));
    let foreign = http::request(
        gw.addr,
        "OPTIONS",
        "/mcp/fx",
        &[("Host", &own), ("Origin", "https://evil.example.com")],
        b"",
    )
    .expect("OPTIONS");
    assert_eq!(foreign.status, 403);
    assert_eq!(foreign.header("access-control-allow-origin"), None);
    gw.shut_down(&cookie);
}

/// Slow loris: a connection that trickles its headers, or promises a body it never sends, is
/// closed (or answered 408) within the request timeout, and the gateway serves on meanwhile.
#[test]
fn slow_clients_are_cut_off_and_the_gateway_serves_on() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    let limit = Duration::from_secs(10);
    let open = || {
        let s = std::net::TcpStream::connect(gw.addr).expect("connect");
        s.set_read_timeout(Some(limit * 3)).expect("read timeout");
        s
    };
    // Headers that never end, and a body that never comes.
    let mut headers = open();
    headers
        .write_all(b"POST /mcp/fx HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .expect("half the headers");
    let mut body = open();
    write!(
        body,
        "POST /mcp/fx HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: 100\r\n\r\n{{\"jsonrpc\"",
        gw.addr
    )
    .expect("headers and ten bytes");
    let t = Instant::now();
    // The gateway serves others meanwhile.
    let mut c = gw.client(Some("fx"));
    c.initialize();
    c.echo("not held up");
    let mut answer = String::new();
    let _ = body.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a body that never comes gets 408: {answer:?}"
    );
    assert!(answer.contains("did not arrive within 10s"), "{answer:?}");
    let mut rest = Vec::new();
    let closed = headers.read_to_end(&mut rest);
    assert!(
        closed.is_ok() && t.elapsed() < limit * 3,
        "headers that never end: the connection is closed ({closed:?} after {:?}, {:?})",
        t.elapsed(),
        String::from_utf8_lossy(&rest)
    );
    gw.shut_down(&cookie);
}

/// Nothing a client sends becomes a server's environment: headers named like dangerous
/// variables, and an `env` in initialize's `_meta` or in a call's arguments, are not in the
/// environment of the instance the session starts (read from `/proc`).
#[test]
fn nothing_from_a_client_reaches_a_server_s_environment() {
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("fx", &cookie, &[], "lifetime = \"session\""),
    );
    let planted = [
        ("LD_PRELOAD", "/tmp/tether-test-evil.so"),
        ("NODE_OPTIONS", "--require=/tmp/tether-test-evil.js"),
        ("PYTHONPATH", "/tmp/tether-test-evil"),
    ];
    let env: serde_json::Map<String, serde_json::Value> = planted
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"},
        "_meta": {"env": env}, "env": env}});
    let mut c = gw.client(Some("fx"));
    let r = c.post_raw(init.to_string().as_bytes(), &planted);
    assert_eq!(r.status, 200, "{}", r.text());
    c.session = r.header("mcp-session-id").map(str::to_string);
    assert!(c.session.is_some(), "a session: {}", r.text());
    c.call_tool("echo", serde_json::json!({"text": "x", "env": env}));
    let servers: Vec<i32> = cookie
        .carriers_except(&[gw.pid()])
        .into_iter()
        .filter(|&p| crate::harness::is_named(p, "tether-fixture"))
        .collect();
    assert!(!servers.is_empty(), "the session's server runs");
    for pid in servers {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("its environment");
        for (name, value) in planted {
            assert!(
                !environ.windows(value.len()).any(|w| w == value.as_bytes()),
                "{name}={value} reached server {pid}"
            );
        }
    }
    gw.shut_down(&cookie);
}

/// A secret in a server's configured environment reaches the server, and nowhere else an
/// operator looks: not the log (at debug level), the metrics, the admin API's answers (the
/// dashboard shows those) or `tether ps`.
#[test]
fn a_configured_secret_is_in_no_log_metric_or_admin_answer() {
    let cookie = Cookie::new();
    let secret = "tether-test-secret-5a1f9c";
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server(
            "fx",
            &cookie,
            &[],
            &format!("lifetime = \"session\"\nenv = {{ API_KEY = \"{secret}\" }}"),
        ),
    );
    let mut c = gw.client(Some("fx"));
    c.initialize();
    c.echo("with a secret");
    let server = cookie
        .carriers_except(&[gw.pid()])
        .into_iter()
        .find(|&p| crate::harness::is_named(p, "tether-fixture"))
        .expect("the server");
    let environ = std::fs::read(format!("/proc/{server}/environ")).expect("its environment");
    assert!(
        environ.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the server gets its secret"
    );
    let mut seen = vec![gw.log()];
    for path in [
        "/metrics",
        "/v1/gateway",
        "/v1/sessions",
        "/v1/instances",
        "/v1/teardowns",
    ] {
        seen.push(super::metrics::admin(&cookie, "GET", path).1);
    }
    for args in [
        &["ps"][..],
        &["ps", "--json"],
        &["ps", "--ledger"],
        &["sessions", "--json"],
    ] {
        seen.push(String::from_utf8_lossy(&crate::harness::tether_run(&cookie, args).stdout).into_owned());
    }
    assert_eq!(c.delete(), 200);
    seen.push(super::metrics::admin(&cookie, "GET", "/v1/teardowns").1);
    seen.push(gw.log());
    for text in &seen {
        assert!(!text.contains(secret), "the secret leaked into: {text}");
    }
    gw.shut_down(&cookie);
}
