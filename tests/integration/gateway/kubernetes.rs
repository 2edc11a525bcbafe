//! The manifests in `packaging/kubernetes/` are what their comments say, as far as a host
//! without a cluster can tell: each parses as YAML (PyYAML, the `python3` on PATH or Debian's);
//! the fields that tie them together agree (ports, names, mounts, the session header and its
//! idle timeout, the grace the pod is given); the container's command, run as written on the
//! ConfigMap's configuration and a Secret-like token file (only the paths and the port moved to
//! this host), starts a gateway that demands the token and answers the load balancer's health
//! check; the in-cluster HAProxy's configuration passes `haproxy -c` and has the rules of the
//! one the replicas test runs. No API server validated them, and nothing here ran in a cluster
//! (docs/operations/replicas.md says so too).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{json, Value};

use super::http;
use super::support::{fixture_server, Gateway, SLACK};
use crate::harness::{require, Cookie, Feature, Mode, StderrLog, TETHER};

fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/kubernetes")
}

/// A Python that has PyYAML: the one on PATH, else Debian's.
fn python_with_yaml() -> PathBuf {
    for python in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(python)
            .args(["-c", "import yaml"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return PathBuf::from(python);
        }
    }
    panic!("no python3 with PyYAML (apt-get install python3-yaml, as .ci/run does)");
}

/// Every document of a manifest file, as JSON.
fn documents(file: &str) -> Vec<Value> {
    let path = manifests().join(file);
    let out = Command::new(python_with_yaml())
        .args([
            "-c",
            "import json, sys, yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)",
        ])
        .arg(&path)
        .output()
        .expect("running python3");
    assert!(
        out.status.success(),
        "{} is not YAML: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("PyYAML's JSON")
}

/// The one document of `kind` named `name` in `file`.
fn object(file: &str, kind: &str, name: &str) -> Value {
    let docs = documents(file);
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} {name} in {file}: {docs:#?}");
    found[0].clone()
}

fn str_of<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer}"))
}

fn duration(text: &str) -> Duration {
    humantime::parse_duration(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// The TOML string value of `key = "…"` lines in `config` (a flat scan: the keys looked up are
/// not nested in inline tables).
fn toml_values<'c>(config: &'c str, key: &str) -> Vec<&'c str> {
    config
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix(key)?
                .trim_start()
                .strip_prefix('=')?
                .trim()
                .strip_prefix('"')?
                .strip_suffix('"')
        })
        .collect()
}

/// The lines that make HAProxy's balancing and affinity (and health checks) in a configuration.
fn affinity_rules(cfg: &str) -> Vec<String> {
    cfg.lines()
        .map(str::trim)
        .filter(|l| {
            [
                "balance",
                "stick",
                "stick-table",
                "option httpchk",
                "http-check",
                "option redispatch",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn the_manifests_agree_with_each_other_and_with_the_gateway() {
    let deployment = object("deployment.yaml", "Deployment", "tether");
    let config_map = object("configmap.yaml", "ConfigMap", "tether-config");
    let service = object("service.yaml", "Service", "tether");
    let headless = object("service.yaml", "Service", "tether-replicas");
    let route = object("httproute.yaml", "HTTPRoute", "tether");
    let pod = &deployment["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "one container: {pod:#}");
    let container = &containers[0];

    // Two replicas, each selected by both Services.
    assert_eq!(deployment["spec"]["replicas"], 2);
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    for s in [&service, &headless] {
        assert_eq!(&s["spec"]["selector"], labels, "{s:#}");
    }
    assert_eq!(
        headless["spec"]["clusterIP"], "None",
        "headless: its name resolves to the pods"
    );

    // The command is `tether serve` with options `tether serve --help` lists.
    let command: Vec<&str> = container["command"]
        .as_array()
        .expect("a command")
        .iter()
        .map(|a| a.as_str().expect("a string"))
        .collect();
    assert_eq!(command[..2], ["tether", "serve"], "{command:?}");
    let help = Command::new(TETHER)
        .args(["serve", "--help"])
        .output()
        .expect("tether serve --help");
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in command.iter().filter(|a| a.starts_with("--")) {
        assert!(
            help.contains(&format!("{flag} <")),
            "tether serve --help has no {flag}:\n{help}"
        );
    }
    let after = |flag: &str| -> &str {
        let i = command
            .iter()
            .position(|a| *a == flag)
            .unwrap_or_else(|| panic!("no {flag}"));
        command[i + 1]
    };

    // One port everywhere: the listen address, the container's named port, the Services, the
    // probe and the route.
    let listen: std::net::SocketAddr = after("--listen").parse().expect("--listen ADDR");
    assert!(
        !listen.ip().is_loopback(),
        "the Service reaches the pod on its own address"
    );
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"], listen.port());
    let port_name = str_of(port, "/name");
    for s in [&service, &headless] {
        assert_eq!(s["spec"]["ports"][0]["targetPort"], port_name, "{s:#}");
    }
    assert_eq!(container["readinessProbe"]["tcpSocket"]["port"], port_name);
    let backend = &route["spec"]["rules"][0]["backendRefs"][0];
    assert_eq!(backend["name"], service["metadata"]["name"]);
    assert_eq!(backend["port"], service["spec"]["ports"][0]["port"]);

    // The configuration and the token: mounted where the command and the configuration say.
    let mounts = container["volumeMounts"].as_array().expect("volume mounts");
    let volumes = pod["volumes"].as_array().expect("volumes");
    let mounted_at = |volume: &Value| -> String {
        let name = &volume["name"];
        let m = mounts.iter().find(|m| &m["name"] == name).expect("mounted");
        str_of(m, "/mountPath").to_string()
    };
    let config_volume = volumes
        .iter()
        .find(|v| v["configMap"]["name"] == config_map["metadata"]["name"])
        .expect("the ConfigMap as a volume");
    let config_path = Path::new(after("--config"));
    let (config_dir, config_key) = (
        config_path.parent().expect("a directory"),
        config_path.file_name().and_then(|f| f.to_str()).expect("a file name"),
    );
    assert_eq!(Path::new(&mounted_at(config_volume)), config_dir);
    let config = config_map["data"][config_key].as_str().expect("the configuration");
    let token_volume = volumes
        .iter()
        .find(|v| v["secret"].is_object())
        .expect("the Secret as a volume");
    let token_files = toml_values(config, "token_file");
    assert_eq!(token_files.len(), 1, "the gateway's token is a file: {config}");
    let token_file = Path::new(token_files[0]);
    assert_eq!(
        Path::new(&mounted_at(token_volume)),
        token_file.parent().expect("a directory")
    );

    // The route keeps a session by the header the gateway names it with, for as long as the
    // gateway keeps an idle one.
    let persistence = &route["spec"]["rules"][0]["sessionPersistence"];
    assert_eq!(persistence["type"], "Header");
    let cookie = Cookie::new();
    let gw = Gateway::start(&cookie, Mode::Cgroup, &fixture_server("fx", &cookie, &[], ""));
    let client = gw.client(Some("fx"));
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "k8s", "version": "1"}}});
    let answer = client.post(&init);
    let header = str_of(persistence, "/sessionName").to_ascii_lowercase();
    assert!(
        answer.header(&header).is_some_and(|id| !id.is_empty()),
        "the gateway's answer to initialize has no {header}: {:?}",
        answer.headers
    );
    gw.shut_down(&cookie);
    let idle = toml_values(config, "session_idle_timeout");
    assert_eq!(idle.len(), 1, "{config}");
    assert_eq!(duration(str_of(persistence, "/idleTimeout")), duration(idle[0]));

    // The pod's grace covers the preStop wait, the 0.5 s for calls in flight and the longest
    // server grace (2 s for a server that sets none).
    let grace = toml_values(config, "grace")
        .into_iter()
        .map(duration)
        .chain(std::iter::once(Duration::from_secs(2)))
        .max()
        .expect("a grace");
    let pre_stop = Duration::from_secs(
        container["lifecycle"]["preStop"]["sleep"]["seconds"]
            .as_u64()
            .expect("a preStop sleep"),
    );
    let termination = Duration::from_secs(pod["terminationGracePeriodSeconds"].as_u64().expect("a grace period"));
    assert!(
        termination > pre_stop + Duration::from_millis(500) + grace,
        "terminationGracePeriodSeconds {termination:?} <= preStop {pre_stop:?} + 0.5 s + grace {grace:?}"
    );

    // What the pod must have: limits, and no privilege.
    for r in ["cpu", "memory"] {
        assert!(container["resources"]["limits"][r].is_string(), "a {r} limit");
    }
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    let env = container["env"].as_array().expect("env");
    let state = env
        .iter()
        .find(|e| e["name"] == "TETHER_STATE_DIR")
        .map(|e| str_of(e, "/value"))
        .expect("TETHER_STATE_DIR");
    let state_volume = volumes
        .iter()
        .find(|v| v["emptyDir"].is_object() && state.starts_with(&mounted_at(v)));
    let state_volume = state_volume.expect("the state directory on an emptyDir");
    assert_ne!(
        Path::new(state),
        Path::new(&mounted_at(state_volume)),
        "the state directory is one Tether creates in the volume: it refuses one owned by another user"
    );
}

#[test]
fn the_container_s_command_serves_with_the_token_on_the_config_map_s_configuration() {
    let deployment = object("deployment.yaml", "Deployment", "tether");
    let config_map = object("configmap.yaml", "ConfigMap", "tether-config");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let command: Vec<String> = container["command"]
        .as_array()
        .expect("a command")
        .iter()
        .map(|a| a.as_str().expect("a string").to_string())
        .collect();
    let config = config_map["data"]["config.toml"].as_str().expect("config.toml");
    let token_file = toml_values(config, "token_file")[0].to_string();

    // Here: the configuration and the token in the test's state directory, the port any free
    // one; everything else as written.
    let cookie = Cookie::new();
    let dir = cookie.state_dir();
    std::fs::create_dir_all(&dir).expect("a state directory");
    let local_token = dir.join("token");
    let token = tether_supervisor::ids::random_id().expect("a token");
    std::fs::write(&local_token, format!("{token}\n")).expect("writing the token");
    let local_config = dir.join("config.toml");
    let local_text = config.replace(&token_file, local_token.to_str().expect("a path"));
    std::fs::write(&local_config, local_text).expect("writing the configuration");
    let args: Vec<String> = command[1..]
        .iter()
        .map(|a| match a.as_str() {
            "/etc/tether/config.toml" => local_config.to_string_lossy().into_owned(),
            a if a.ends_with(":7300") => a.replace(":7300", ":0"),
            a => a.to_string(),
        })
        .collect();
    assert_eq!(command[0], "tether");
    let mut cmd = Command::new(TETHER);
    cookie.set_env(&mut cmd).args(&args);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the container's command");
    let log = StderrLog::collect(&mut child);
    let gw = Gateway::listening(child, log, local_config);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], gw.addr.port()));
    assert!(gw.log().contains("\"level\""), "--log-format json: {}", gw.log());

    // The load balancers' health check (haproxy.cfg): a preflight, 204 without the token.
    let check = http::request(addr, "OPTIONS", "/mcp", &[("Host", "localhost")], b"").expect("OPTIONS");
    assert_eq!(check.status, 204, "{}", check.text());
    // Everything else needs the Secret's token: refused without it or with another, past the
    // guard with it (to an unknown server here, which starts nothing).
    let post = |auth: Option<&str>| {
        let mut headers = vec![("Content-Type", "application/json"), ("Accept", "application/json")];
        let bearer = auth.map(|t| format!("Bearer {t}"));
        if let Some(b) = &bearer {
            headers.push(("Authorization", b.as_str()));
        }
        http::request(addr, "POST", "/mcp/nosuchserver", &headers, b"{}").expect("POST")
    };
    assert_eq!(post(None).status, 401);
    assert_eq!(post(Some("0123456789abcdef-not-it")).status, 401);
    let with_token = post(Some(&token));
    assert_eq!(with_token.status, 404, "{}", with_token.text());
    assert!(with_token.text().contains("no server named"), "{}", with_token.text());

    // SIGTERM, as the kubelet sends after the preStop hook: a clean exit.
    let mut gw = gw;
    gw.signal(Signal::SIGTERM);
    assert!(gw.wait_exit(SLACK).success(), "{}", gw.log());
    cookie.assert_none_survive(SLACK);
}

#[test]
fn the_in_cluster_haproxy_has_the_tested_rules_and_passes_haproxy_c() {
    let documented = {
        let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations/replicas.md"))
            .expect("docs/operations/replicas.md");
        let after = &doc[doc.find("<!-- tested: haproxy.cfg").expect("the marker")..];
        let start = after.find("```haproxy\n").expect("the block") + "```haproxy\n".len();
        after[start..start + after[start..].find("```").expect("its end")].to_string()
    };
    let config_map = object("haproxy.yaml", "ConfigMap", "tether-haproxy");
    let cfg = config_map["data"]["haproxy.cfg"].as_str().expect("haproxy.cfg");
    assert_eq!(
        affinity_rules(cfg),
        affinity_rules(&documented),
        "the rules the replicas test runs"
    );
    // It finds the pods by the headless Service's name, on its port.
    let headless = object("service.yaml", "Service", "tether-replicas");
    let target = format!(
        "{}.default.svc.cluster.local:{}",
        str_of(&headless, "/metadata/name"),
        headless["spec"]["ports"][0]["port"]
    );
    assert!(cfg.contains(&target), "no server-template for {target}:\n{cfg}");
    // Clients reach HAProxy on the same port as the replicas.
    let service = object("haproxy.yaml", "Service", "tether-haproxy");
    assert_eq!(
        service["spec"]["ports"][0]["port"],
        headless["spec"]["ports"][0]["port"]
    );

    if !require(Feature::Haproxy, "skipping haproxy -c (install haproxy, see .ci/run)") {
        return;
    }
    let dir = std::env::temp_dir().join(format!(
        "tether-k8s-haproxy-{}",
        tether_supervisor::ids::random_id().expect("an id")
    ));
    std::fs::create_dir_all(&dir).expect("a directory");
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, cfg).expect("writing haproxy.cfg");
    let out = Command::new(tether_supervisor::testing::haproxy_binary().expect("probed"))
        .arg("-c")
        .arg("-f")
        .arg(&file)
        .output()
        .expect("haproxy -c");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "haproxy -c: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
