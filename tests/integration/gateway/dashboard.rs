//! The admin API over loopback HTTP and the dashboard (`tether serve --admin-listen`): every
//! request needs the admin token or the login cookie, a foreign Host or Origin is refused, the
//! login sets an HttpOnly SameSite=Strict cookie and takes the token out of the address, a
//! non-loopback address is refused at start; and the page in a real browser (headless
//! chromium, `tests/browser/dashboard.mjs`) shows a session with its instance and the real
//! pids of its process tree, and ends it with two clicks, its processes gone from the host.

#![allow(clippy::disallowed_methods)] // The test starts the browser it drives.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::http::{self, Response};
use super::support::{fixture_server, Gateway, SLACK};
use crate::harness::{eventually, require, tether_json_ok, tether_run, Cookie, Feature, Mode, StderrLog};

/// A token for `--admin-token-file`.
const TOKEN: &str = "admin-token-0123456789abcdef";

/// Starts a gateway serving `fx` (one instance per session, the server with two children)
/// with `extra` arguments.
fn start(cookie: &Cookie, extra: &[&str]) -> Gateway {
    std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
    let config = cookie.state_dir().join("gateway.toml");
    let servers = fixture_server("fx", cookie, &["--children", "2"], "lifetime = \"session\"");
    std::fs::write(&config, servers).expect("writing the configuration");
    Gateway::start_file(cookie, Mode::Cgroup, config, extra)
}

/// The address in the gateway's "admin API and dashboard at http://ADDR/" line.
fn admin_addr(gw: &Gateway) -> SocketAddr {
    const LINE: &str = "admin API and dashboard at http://";
    gw.wait_log(LINE);
    let log = gw.log();
    let rest = &log[log.find(LINE).expect("the line") + LINE.len()..];
    rest.split('/').next().and_then(|a| a.parse().ok()).expect("an address")
}

/// `tether dashboard`: its exit code, stdout and stderr.
fn dashboard(cookie: &Cookie) -> (Option<i32>, String, String) {
    let out = tether_run(cookie, &["dashboard"]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    http::request(addr, method, path, headers, b"").expect("a request to the admin listener")
}

/// The `error` of a JSON refusal.
fn refusal(r: &Response) -> String {
    let v: Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()));
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {v}"))
        .to_string()
}

#[test]
fn the_admin_listener_wants_its_token_its_host_and_its_origin() {
    let cookie = Cookie::new();
    std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
    let token_file = cookie.state_dir().join("admin-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("writing the token");
    let gw = start(
        &cookie,
        &[
            "--admin-listen",
            "127.0.0.1:0",
            "--admin-token-file",
            token_file.to_str().expect("a path"),
        ],
    );
    let addr = admin_addr(&gw);
    let bearer = format!("Bearer {TOKEN}");
    let good = [("Authorization", bearer.as_str())];

    // No token, a wrong one: 401, saying what is needed.
    let none = request(addr, "GET", "/v1/sessions", &[]);
    assert_eq!(none.status, 401, "{}", none.text());
    assert!(refusal(&none).contains("admin token"), "{}", none.text());
    assert!(none.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")));
    let wrong = request(
        addr,
        "GET",
        "/v1/sessions",
        &[("Authorization", "Bearer admin-token-0123456789abcdeX")],
    );
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    let ok = request(addr, "GET", "/v1/sessions", &good);
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(
        serde_json::from_slice::<Value>(&ok.body).ok(),
        Some(Value::Array(vec![]))
    );
    let metrics = request(addr, "GET", "/metrics", &good);
    assert_eq!(metrics.status, 200, "{}", metrics.text());
    assert!(metrics.text().contains("tether_sessions 0"), "{}", metrics.text());
    let gone = request(addr, "GET", "/v1/nothing", &good);
    assert_eq!(gone.status, 404, "{}", gone.text());
    assert!(refusal(&gone).contains("no such call"), "{}", gone.text());

    // DNS rebinding: a foreign Host, even with the token, is refused; localhost is the listener.
    let rebound = request(
        addr,
        "GET",
        "/v1/sessions",
        &[("Host", &format!("evil.example:{}", addr.port())), good[0]],
    );
    assert_eq!(rebound.status, 403, "{}", rebound.text());
    assert!(refusal(&rebound).contains("Host"), "{}", rebound.text());
    let other_port = request(addr, "GET", "/v1/sessions", &[("Host", "127.0.0.1:1"), good[0]]);
    assert_eq!(other_port.status, 403, "{}", other_port.text());
    let localhost = request(
        addr,
        "GET",
        "/v1/sessions",
        &[("Host", &format!("localhost:{}", addr.port())), good[0]],
    );
    assert_eq!(localhost.status, 200, "{}", localhost.text());

    // CSRF: a state-changing call from a page of another origin (another local port too) is
    // refused whatever it carries; from the listener's own origin it is answered.
    for (method, path) in [("DELETE", "/v1/scopes/nosuchid"), ("POST", "/v1/reload")] {
        for origin in ["https://evil.example", "http://localhost:3000", "null"] {
            let r = request(addr, method, path, &[("Origin", origin), good[0]]);
            assert_eq!(r.status, 403, "{method} {path} from {origin}: {}", r.text());
            assert!(refusal(&r).contains("Origin"), "{}", r.text());
        }
    }
    let own = format!("http://{addr}");
    let r = request(addr, "DELETE", "/v1/scopes/nosuchid", &[("Origin", &own), good[0]]);
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(refusal(&r).contains("no session or instance"), "{}", r.text());

    // The login URL is the unix socket's to give: over HTTP the call does not exist.
    let asked = request(addr, "GET", "/v1/dashboard", &good);
    assert_eq!(asked.status, 404, "{}", asked.text());
    let (code, url, err) = dashboard(&cookie);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(url, format!("http://{addr}/?token={TOKEN}"));

    // The login: a wrong token gets a page saying how to get the URL; the right one, a cookie
    // (not the token) and a redirect to a clean address.
    for path in ["/", "/?token=wrong-token-0123456789"] {
        let page = request(addr, "GET", path, &[]);
        assert_eq!(page.status, 401, "{path}: {}", page.text());
        assert!(page.text().contains("tether dashboard"), "{}", page.text());
    }
    let login = request(addr, "GET", &format!("/?token={TOKEN}"), &[]);
    assert_eq!(login.status, 303, "{}", login.text());
    assert_eq!(login.header("location"), Some("/"));
    let set = login.header("set-cookie").expect("a cookie").to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.split("; ").any(|a| a == attribute), "{attribute} in {set}");
    }
    let pair = set.split(';').next().expect("name=value").to_string();
    assert!(!pair.contains(TOKEN), "the cookie is not the token: {set}");
    let with_cookie = [("Cookie", pair.as_str())];
    let page = request(addr, "GET", "/", &with_cookie);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("/dashboard.js"), "{}", page.text());
    assert!(
        page.header("content-security-policy")
            .is_some_and(|c| c.contains("script-src 'self'")),
        "{:?}",
        page.headers
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    for asset in ["/dashboard.js", "/dashboard.css"] {
        assert_eq!(request(addr, "GET", asset, &with_cookie).status, 200, "{asset}");
        assert_eq!(
            request(addr, "GET", asset, &[]).status,
            401,
            "{asset} without the cookie"
        );
    }
    assert_eq!(request(addr, "GET", "/v1/instances", &with_cookie).status, 200);
    let forged = [("Cookie", "tether_admin_1=x")];
    assert_eq!(request(addr, "GET", "/v1/instances", &forged).status, 401);

    assert!(!gw.log().contains(TOKEN), "the token is never logged:\n{}", gw.log());
    gw.shut_down(&cookie);
}

#[test]
fn a_non_loopback_admin_address_or_a_bad_token_file_is_refused_at_start() {
    let cookie = Cookie::new();
    std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
    let config = cookie.state_dir().join("gateway.toml");
    std::fs::write(&config, fixture_server("fx", &cookie, &[], "")).expect("writing the configuration");
    let short = cookie.state_dir().join("short-token");
    std::fs::write(&short, "tooshort").expect("writing the token");
    let missing = cookie.state_dir().join("no-such-token");
    for (args, says) in [
        (
            vec!["--admin-listen", "0.0.0.0:0"],
            "not a loopback address".to_string(),
        ),
        (vec!["--admin-listen", "[::]:0"], "not a loopback address".to_string()),
        (
            vec![
                "--admin-listen",
                "127.0.0.1:0",
                "--admin-token-file",
                short.to_str().expect("a path"),
            ],
            "at least 16 characters".to_string(),
        ),
        (
            vec![
                "--admin-listen",
                "127.0.0.1:0",
                "--admin-token-file",
                missing.to_str().expect("a path"),
            ],
            missing.display().to_string(),
        ),
    ] {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend(&args);
        let (mut child, log) = Gateway::spawn(&cookie, Mode::Cgroup, &config, &all);
        let status = log.wait_exit(&mut child, SLACK);
        let err = log.lines().join("\n");
        assert_eq!(status.code(), Some(125), "{args:?}: {err}");
        assert!(err.contains(&says), "{args:?} should say {says:?}: {err}");
        assert!(!err.contains("serving"), "{args:?} started serving: {err}");
    }
    cookie.assert_none_survive(SLACK);
}

#[test]
fn tether_dashboard_says_when_the_gateway_serves_no_dashboard() {
    let cookie = Cookie::new();
    let gw = start(&cookie, &[]);
    let (code, out, err) = dashboard(&cookie);
    assert_eq!(code, Some(1), "{out} {err}");
    assert!(err.contains("without --admin-listen"), "{err}");
    assert!(!gw.log().contains("admin API and dashboard"), "{}", gw.log());
    gw.shut_down(&cookie);
    let (code, _, err) = dashboard(&cookie);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no gateway answers"), "{err}");
}

/// `tests/browser/dashboard.mjs` in node, its stdout read a line at a time.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    log: StderrLog,
}

impl Browser {
    fn start(cookie: &Cookie, url: &str, screenshot: &Path) -> Browser {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.mjs");
        let mut cmd = Command::new("node");
        // The cookie in its environment: chromium inherits it, so the survivor check (and a
        // failing test's clean-up) finds the browser too.
        cookie.set_env(&mut cmd);
        cmd.arg(script)
            .arg(url)
            .arg(screenshot)
            .env("TETHER_BROWSER_MODULES", tether_supervisor::testing::browser_modules())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting node");
        let log = StderrLog::collect(&mut child);
        let stdin = child.stdin.take().expect("its stdin");
        let stdout = child.stdout.take().expect("its stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Browser {
            child,
            stdin,
            lines,
            log,
        }
    }

    /// The next line, which must start with `prefix`; the rest of it.
    fn expect(&mut self, prefix: &str) -> String {
        // Chromium's first start on a loaded 2-core machine takes seconds; every wait of the
        // script has a deadline of its own, shorter than this.
        let line = self.lines.recv_timeout(Duration::from_secs(90)).unwrap_or_else(|e| {
            panic!(
                "the browser script said nothing ({e}) while the test waited for {prefix:?}; its stderr:\n{}",
                self.log.lines().join("\n")
            )
        });
        line.strip_prefix(prefix).map(str::to_string).unwrap_or_else(|| {
            panic!(
                "the browser script said {line:?} where the test waited for {prefix:?}; its stderr:\n{}",
                self.log.lines().join("\n")
            )
        })
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("writing to the browser script");
    }

    /// Waits for the script's exit, which must be clean.
    fn finish(mut self) {
        let status = self.log.wait_exit(&mut self.child, SLACK);
        assert!(
            status.success(),
            "the browser script exited with {status}: {}",
            self.log.lines().join("\n")
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn alive(pid: i32) -> bool {
    tether_supervisor::process::procfs::state_of(pid).is_some_and(|s| s != 'Z')
}

#[test]
fn the_dashboard_shows_a_session_s_processes_and_ends_them_in_a_browser() {
    if !require(Feature::Browser, "skipping the dashboard's browser test") {
        return;
    }
    let cookie = Cookie::new();
    let gw = start(&cookie, &["--admin-listen", "127.0.0.1:0"]);
    let addr = admin_addr(&gw);
    let (code, url, err) = dashboard(&cookie);
    assert_eq!(code, Some(0), "{err}");
    assert!(url.starts_with(&format!("http://{addr}/?token=")), "{url}");
    assert!(!gw.log().contains(&url), "the login URL is never logged");

    let screenshot: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/artifacts/dashboard.png");
    std::fs::create_dir_all(screenshot.parent().expect("a directory")).expect("target/artifacts");
    let _ = std::fs::remove_file(&screenshot);
    let mut browser = Browser::start(&cookie, &url, &screenshot);
    browser.expect("ready");

    // A session, and a call: its instance, the fixture and its two children, exist.
    let mut client = gw.client(Some("fx"));
    client.initialize();
    client.echo("seen in a browser");
    let listing = tether_json_ok(&cookie, "sessions", &[]);
    let sid = client.session.clone().expect("a session");
    let key = listing["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["id"] == sid.as_str())
        .and_then(|s| s["key"].as_str())
        .unwrap_or_else(|| panic!("the session in {listing:#}"))
        .to_string();
    browser.send(&format!("session {key}"));
    let mut shown: Vec<i32> = browser
        .expect("pids ")
        .split_whitespace()
        .map(|p| p.parse().expect("a pid"))
        .collect();
    shown.sort_unstable();

    // The pids the page shows are the instance's real processes: what the admin API reports
    // (its tree, or its shim where it reports no tree), alive, carrying the test's cookie.
    let instance = listing["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["session"] == key.as_str())
        .unwrap_or_else(|| panic!("the session's instance in {listing:#}"));
    let mut reported: Vec<i32> = match instance["tree"].as_array() {
        Some(tree) => tree
            .iter()
            .filter_map(|p| p["pid"].as_i64())
            .map(|p| p as i32)
            .collect(),
        None => instance["shim_pid"].as_i64().map(|p| p as i32).into_iter().collect(),
    };
    reported.sort_unstable();
    assert!(!shown.is_empty(), "the page shows no pid");
    assert_eq!(shown, reported, "the page's pids against the admin API's: {instance:#}");
    let carriers = cookie.carriers();
    for pid in &shown {
        assert!(
            alive(*pid) && carriers.contains(pid),
            "pid {pid} on the page is not a live process of the test: {}",
            crate::harness::describe(*pid)
        );
    }
    let shim = instance["shim_pid"].as_i64().expect("a shim pid") as i32;
    assert!(shown.contains(&shim), "the shim {shim} among {shown:?}");

    // End, "Really end?": the session and its processes leave the page, then the host.
    browser.send("end");
    browser.expect("ended");
    let mut left = Vec::new();
    let all_gone = eventually(SLACK, || {
        left = shown.iter().copied().filter(|p| alive(*p)).collect();
        left.is_empty()
    });
    assert!(all_gone, "processes the page showed outlived their session: {left:?}");
    let sessions = tether_json_ok(&cookie, "sessions", &[]);
    assert_eq!(sessions["sessions"], Value::Array(vec![]), "{sessions:#}");
    browser.finish();

    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
    gw.shut_down(&cookie);
}
