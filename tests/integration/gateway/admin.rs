//! The admin API through the CLI: `tether sessions` lists a running gateway's sessions and
//! instances (with their shims' pids and process counts), `tether kill` ends a session or an
//! instance and every process of it, `tether reload` applies a changed configuration; the
//! socket is 0600, an unknown id and a missing gateway are errors that say so.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use super::support::{fixture_server, Gateway, SLACK};
use crate::harness::{eventually, tether_json_ok, tether_run, Cookie, Mode};

/// The shim pids of the instances `listing` shows for session `key`.
fn shims_of(listing: &Value, key: &str) -> Vec<i32> {
    listing["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["session"] == key)
        .filter_map(|i| i["shim_pid"].as_i64().and_then(|p| i32::try_from(p).ok()))
        .collect()
}

fn alive(pid: i32) -> bool {
    tether_supervisor::process::procfs::state_of(pid).is_some_and(|s| s != 'Z')
}

#[test]
fn sessions_kill_and_reload_through_the_admin_socket() {
    let cookie = Cookie::new();
    let gw = Gateway::start(
        &cookie,
        Mode::Cgroup,
        &fixture_server("fx", &cookie, &[], "lifetime = \"session\""),
    );
    let socket = cookie.state_dir().join("admin.sock");
    let mode = std::fs::metadata(&socket)
        .expect("the admin socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the admin socket is the gateway user's only");

    let (mut a, mut b) = (gw.client(Some("fx")), gw.client(Some("fx")));
    for c in [&mut a, &mut b] {
        c.initialize();
        c.echo("listed");
    }
    let listing = tether_json_ok(&cookie, "sessions", &[]);
    let sessions = listing["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2, "{listing:#}");
    let key = |i: usize| sessions[i]["key"].as_str().expect("a key").to_string();
    let (first, second) = (key(0), key(1));
    for k in [&first, &second] {
        let shims = shims_of(&listing, k);
        assert_eq!(shims.len(), 1, "one instance for session {k}: {listing:#}");
        assert!(alive(shims[0]), "shim {} of session {k} runs", shims[0]);
    }
    assert!(
        listing["instances"][0]["processes"].as_u64().is_some_and(|n| n >= 2),
        "a shim and its server at least: {listing:#}"
    );

    // A session, by its key: its instance's whole tree ends; the other session is untouched.
    let ended = tether_json_ok(&cookie, "kill", &[&first]);
    assert_eq!(ended["ended"], "session", "{ended}");
    let shim = shims_of(&listing, &first)[0];
    assert!(
        eventually(SLACK, || !alive(shim)),
        "the killed session's shim {shim} is still alive"
    );
    let other = shims_of(&listing, &second)[0];
    assert!(alive(other), "the other session's shim {other} was ended too");

    // An instance, by the start of its id.
    let instance = listing["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["session"] == second.as_str())
        .and_then(|i| i["id"].as_str())
        .expect("the second session's instance")
        .to_string();
    let ended = tether_json_ok(&cookie, "kill", &[&instance[..8]]);
    assert_eq!(
        (ended["ended"].as_str(), ended["id"].as_str()),
        (Some("instance"), Some(instance.as_str()))
    );
    assert!(
        eventually(SLACK, || !alive(other)),
        "the killed instance's shim {other} is still alive"
    );

    // Both ends are in the recent teardowns, newest first, with their reasons and durations.
    let mut recent = Value::Null;
    let listed = eventually(SLACK, || {
        recent = tether_json_ok(&cookie, "teardowns", &[]);
        recent.as_array().is_some_and(|r| r.len() == 2)
    });
    assert!(listed, "two teardowns expected: {recent:#}");
    for t in recent.as_array().into_iter().flatten() {
        assert_eq!(t["server"], "fx", "{t}");
        assert!(t["reason"].as_str().is_some_and(|r| r.contains("tether kill")), "{t}");
        assert!(t["teardown_ms"].as_u64().is_some(), "{t}");
    }
    assert_eq!(
        recent[0]["instance"].as_str(),
        Some(&instance[..8]),
        "newest first: {recent:#}"
    );

    let unknown = tether_run(&cookie, &["kill", "nosuchid"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no session or instance \"nosuchid\""),
        "{unknown:?}"
    );

    // A server added to the file is served once `tether reload` says so.
    let mut config = std::fs::read_to_string(&gw.config).expect("the config");
    config.push_str(&fixture_server("more", &cookie, &[], ""));
    std::fs::write(&gw.config, config).expect("writing the config");
    let reloaded = tether_json_ok(&cookie, "reload", &[]);
    assert_eq!(reloaded["applied"], true, "{reloaded}");
    let mut more = gw.client(Some("more"));
    more.initialize();
    more.echo("after the reload");
    gw.shut_down(&cookie);

    let gone = tether_run(&cookie, &["sessions"]);
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("no gateway answers"),
        "{gone:?}"
    );
}

/// A gateway in `mode` with one session instance of the fixture and its two children, and the
/// listing `tether sessions` gives, once the instance's tree (shown) is exactly the processes
/// carrying the cookie but the gateway: `processes` of them.
fn one_instance_tree(cookie: &Cookie, mode: Mode, processes: usize) -> (Gateway, super::support::Client, Value) {
    let gw = Gateway::start(
        cookie,
        mode,
        &fixture_server("fx", cookie, &["--children", "2"], "lifetime = \"session\""),
    );
    let mut c = gw.client(Some("fx"));
    c.initialize();
    c.echo("a tree");
    cookie.wait_for_carriers(processes + 1);
    let listing = tether_json_ok(cookie, "sessions", &[]);
    let instance = &listing["instances"][0];
    let mut shown: Vec<i32> = instance["tree"]
        .as_array()
        .expect("a tree")
        .iter()
        .filter_map(|p| p["pid"].as_i64().and_then(|p| i32::try_from(p).ok()))
        .collect();
    shown.sort_unstable();
    let mut carriers = cookie.carriers_except(&[gw.pid()]);
    carriers.sort_unstable();
    assert_eq!(
        shown, carriers,
        "the tree is exactly the instance's processes: {instance:#}"
    );
    (gw, c, listing)
}

#[test]
fn without_a_cgroup_the_tree_shows_the_keeper_above_the_shim() {
    let cookie = Cookie::new();
    // Keeper, shim, watchdog, the server and its two children.
    let (gw, mut c, listing) = one_instance_tree(&cookie, Mode::NoCgroup, 6);
    let instance = &listing["instances"][0];
    let tree = instance["tree"].as_array().expect("a tree");
    assert_eq!(tree[0]["found_by"], "keeper", "the gateway's child: {instance:#}");
    let found_by = |what: &str| tree.iter().filter(|p| p["found_by"] == what).count();
    assert_eq!(
        [found_by("shim"), found_by("watchdog"), found_by("server")],
        [1, 1, 1],
        "{instance:#}"
    );
    let layers = instance["layers"].to_string();
    assert!(
        layers.contains("\"keeper\"") && !layers.contains("\"cgroup\""),
        "{instance:#}"
    );
    assert_eq!(c.delete(), 200);
    gw.shut_down(&cookie);
}

#[test]
fn instances_show_their_process_trees_and_ps_shows_the_live_gateway() {
    let cookie = Cookie::new();
    // The shim, its watchdog, the server and its two children.
    let (gw, mut c, listing) = one_instance_tree(&cookie, Mode::Cgroup, 5);
    let instance = &listing["instances"][0];
    let tree = instance["tree"].as_array().expect("a tree");
    let pids: Vec<i32> = tree
        .iter()
        .filter_map(|p| p["pid"].as_i64().and_then(|p| i32::try_from(p).ok()))
        .collect();
    assert_eq!(tree[0]["found_by"], "shim", "{instance:#}");
    assert_eq!(tree[0]["pid"], instance["shim_pid"], "{instance:#}");
    let found_by = |what: &str| tree.iter().filter(|p| p["found_by"] == what).count();
    assert_eq!((found_by("watchdog"), found_by("server")), (1, 1), "{instance:#}");
    assert!(
        tree.iter()
            .all(|p| p["rss_kib"].as_u64().is_some_and(|k| k > 0) && p["cpu_ms"].is_u64()),
        "every process has its RSS and CPU time: {instance:#}"
    );
    assert_eq!(instance["processes"], 5, "{instance:#}");
    let layers: Vec<&str> = instance["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for layer in ["cgroup", "subreaper", "group", "cookie"] {
        assert!(layers.contains(&layer), "{layer} in force: {instance:#}");
    }
    assert!(
        instance["cgroup"].as_str().is_some_and(|c| c.contains("tether-")),
        "{instance:#}"
    );
    assert!(
        instance["age_ms"].is_u64() && instance["idle_ms"].is_u64(),
        "{instance:#}"
    );

    // `tether ps`: the gateway's live view first, the same processes; `--ledger`, the ledger's.
    let ps = tether_run(&cookie, &["ps"]);
    assert!(ps.status.success(), "{ps:?}");
    let text = String::from_utf8_lossy(&ps.stdout);
    assert!(text.starts_with(&format!("gateway pid {} (live", gw.pid())), "{text}");
    let key = listing["sessions"][0]["key"].as_str().expect("a key");
    assert!(text.contains(&format!("session {key}")), "{text}");
    for pid in &pids {
        assert!(text.contains(&format!(" {pid} ")), "process {pid} in {text}");
    }
    let live = tether_json_ok(&cookie, "ps", &[]);
    assert_eq!(live["gateway"]["pid"], gw.pid(), "{live:#}");
    assert_eq!(live["instances"][0]["id"], instance["id"], "{live:#}");
    assert_eq!(live["sessions"][0]["key"], key, "{live:#}");
    assert!(live["others"]["owners"].is_array(), "{live:#}");
    let ledger = tether_json_ok(&cookie, "ps", &["--ledger"]);
    assert_eq!(ledger["owners"][0]["instances"][0]["id"], instance["id"], "{ledger:#}");

    assert_eq!(c.delete(), 200);
    gw.shut_down(&cookie);
    // With no gateway, `tether ps` is the ledger's view.
    let after = tether_json_ok(&cookie, "ps", &[]);
    assert!(after.get("owners").is_some(), "{after:#}");
}
