//! The container recipe in `packaging/container/` is what it says, as far as it can be proven
//! without building the image (no registry to pull its base images from here): the Dockerfile
//! keeps the settings Tether depends on (Tether itself as PID 1, SIGTERM to stop, a non-root
//! user, the ledger on a volume, a health check without curl), and the image's configuration,
//! run as the image runs it (PID 1 of a PID namespace, on every interface), refuses to start
//! without its token file and serves behind the token with one.

use std::process::Command;

use nix::sys::signal::Signal;

use crate::gateway::support::{Gateway, SLACK};
use crate::harness::{require, Cookie, Feature, Mode, TETHER};
use crate::pid1::{launcher, Namespace};

const DOCKERFILE: &str = include_str!("../../packaging/container/Dockerfile");
const CONFIG: &str = include_str!("../../packaging/container/config.toml");
const CARGO_TOML: &str = include_str!("../../Cargo.toml");

/// Where the image has the fixture and the token; the test substitutes its own.
const IMAGE_FIXTURE: &str = "/usr/local/bin/tether-fixture";
const IMAGE_TOKEN: &str = "/run/secrets/tether_token";
const IMAGE_LISTEN: &str = "0.0.0.0:7300";

/// The Dockerfile's instructions: (keyword, arguments), continuation lines joined, comments and
/// the parser directive left out.
fn instructions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in DOCKERFILE.lines() {
        let trimmed = line.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let (keyword, args) = pending.split_once(char::is_whitespace).unwrap_or((&pending, ""));
        out.push((keyword.to_ascii_uppercase(), args.trim().to_string()));
        pending.clear();
    }
    assert!(pending.is_empty(), "the Dockerfile ends in a continuation: {pending}");
    out
}

/// The arguments of the last `keyword` of the final stage (the image).
fn last(keyword: &str) -> String {
    let all = instructions();
    let image = all.iter().rposition(|(k, _)| k == "FROM").expect("a FROM");
    all[image..]
        .iter()
        .rev()
        .find(|(k, _)| k == keyword)
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| panic!("no {keyword} in the image's stage"))
}

/// An exec-form (JSON array) argument list; panics on the shell form.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("{args:?} is not the exec form (a JSON array): {e}"))
}

/// The health check's command.
fn healthcheck() -> Vec<String> {
    let hc = last("HEALTHCHECK");
    let cmd = hc.split_once("CMD ").map(|(_, c)| c).expect("HEALTHCHECK … CMD […]");
    exec_form(cmd)
}

#[test]
fn the_dockerfile_keeps_what_tether_needs() {
    let known = [
        "FROM",
        "ARG",
        "WORKDIR",
        "COPY",
        "RUN",
        "ENV",
        "VOLUME",
        "USER",
        "EXPOSE",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "ENTRYPOINT",
        "CMD",
    ];
    for (k, a) in instructions() {
        assert!(known.contains(&k.as_str()), "unknown instruction {k} {a}");
    }
    // The exec form: with the shell form, /bin/sh would be PID 1, and neither reap nor forward.
    assert_eq!(exec_form(&last("ENTRYPOINT")), ["tether", "serve"]);
    assert_eq!(exec_form(&last("CMD")), ["--config", "/etc/tether/config.toml"]);
    assert!(
        instructions()
            .iter()
            .any(|(k, a)| k == "COPY" && a == "packaging/container/config.toml /etc/tether/config.toml"),
        "the image's configuration is the file tested here"
    );
    assert_eq!(last("STOPSIGNAL"), "SIGTERM", "what the gateway shuts down on");
    let user = last("USER");
    let uid = user.split(':').next().unwrap_or_default();
    assert!(!matches!(uid, "" | "0" | "root"), "a user of its own, not root: {user}");
    let env = last("ENV");
    let state = env
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("TETHER_STATE_DIR="))
        .expect("TETHER_STATE_DIR in the image's ENV");
    assert!(
        exec_form(&last("VOLUME")).iter().any(|v| v == state),
        "the ledger ({state}) on a volume, so a restarted container's sweep finds it"
    );
    assert_eq!(healthcheck(), ["tether", "sessions"]);
    // The programs built are the package's.
    let build = instructions()
        .into_iter()
        .find(|(k, a)| k == "RUN" && a.contains("cargo build"))
        .map(|(_, a)| a)
        .expect("a cargo build");
    assert!(build.contains("--release") && build.contains("--locked"), "{build}");
    for bin in ["tether", "tether-gateway", "tether-fixture"] {
        assert!(build.contains(&format!("--bin {bin} ")), "{bin} is built: {build}");
        assert!(
            CARGO_TOML.contains(&format!("[[bin]]\nname = \"{bin}\"")),
            "{bin} is a program of the package"
        );
    }
}

#[test]
fn the_image_configuration_needs_its_token_and_serves_behind_it_as_pid1() {
    let cookie = Cookie::new();
    std::fs::create_dir_all(cookie.state_dir()).expect("state dir");
    let token_file = cookie.state_dir().join("tether_token");
    let config = cookie.state_dir().join("config.toml");
    assert!(CONFIG.contains(IMAGE_FIXTURE) && CONFIG.contains(IMAGE_TOKEN) && CONFIG.contains(IMAGE_LISTEN));
    let text = CONFIG
        .replace(IMAGE_FIXTURE, crate::harness::FIXTURE)
        .replace(IMAGE_TOKEN, &token_file.display().to_string())
        // Every interface still, on a port of its own.
        .replace(IMAGE_LISTEN, "0.0.0.0:0");
    std::fs::write(&config, text).expect("writing the configuration");
    // As the image runs it: `tether serve --config FILE`, PID 1 where the host allows.
    let pid1 = require(
        Feature::PidNs,
        "running the gateway as an ordinary process instead of PID 1",
    );
    let launcher = if pid1 { launcher() } else { Vec::new() };
    let launcher: Vec<&str> = launcher.iter().map(String::as_str).collect();

    // No token file mounted: it refuses to start, and says which file.
    let (mut child, log) = Gateway::spawn_via(&launcher, &cookie, Mode::Cgroup, &config, &[]);
    let status = log.wait_exit(&mut child, SLACK);
    let said = log.lines().join("\n");
    assert_eq!(status.code(), Some(125), "{said}");
    assert!(said.contains(&token_file.display().to_string()), "{said}");

    let token = "0123456789abcdef0123456789abcdef";
    std::fs::write(&token_file, format!("{token}\n")).expect("writing the token");
    let (child, log) = Gateway::spawn_via(&launcher, &cookie, Mode::Cgroup, &config, &[]);
    let ns = (!launcher.is_empty()).then(|| Namespace::of_unshare(child.id() as i32));
    let mut gw = Gateway::listening(child, log, config.clone());
    assert!(
        gw.addr.ip().is_unspecified(),
        "listening on every interface: {}",
        gw.addr
    );
    let mut c = gw.client(Some("fixture"));
    let initialize = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}
    }});
    assert_eq!(c.post(&initialize).status, 401, "no token, no session");
    c.token = Some(token.into());
    c.initialize();
    c.echo("through the image's configuration");
    assert!(!gw.log().contains(token), "the token never appears in the log");

    // The health check answers while the gateway serves, and fails once it is gone.
    let health = |expect: bool| {
        let argv = healthcheck();
        let out = cookie
            .set_env(&mut Command::new(TETHER))
            .args(&argv[1..])
            .output()
            .expect("running the health check");
        assert_eq!(
            out.status.success(),
            expect,
            "{argv:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    health(true);
    // The image's stop: SIGTERM to PID 1.
    match &ns {
        Some(ns) => ns.signal_init(Signal::SIGTERM),
        None => gw.signal(Signal::SIGTERM),
    }
    let status = gw.wait_exit(SLACK);
    assert!(status.success(), "{status}; log:\n{}", gw.log());
    if let Some(ns) = &ns {
        ns.wait_empty();
    }
    health(false);
    cookie.assert_none_survive(SLACK);
}
