//! The service files in `packaging/` are what they say: the systemd unit passes
//! `systemd-analyze verify` without a warning (an unknown key is only a warning there, so a
//! warning fails the test), with its `ExecStart` pointed at the `tether` just built, and it
//! keeps the settings Tether depends on.

#![allow(clippy::disallowed_methods)]

use std::process::Command;

const UNIT: &str = include_str!("../../packaging/systemd/tether.service");
const TETHER: &str = env!("CARGO_BIN_EXE_tether");

/// The unit's `key=value` settings (comments and sections left out).
fn settings() -> Vec<(String, String)> {
    UNIT.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_systemd_unit_keeps_what_tether_needs() {
    let s = settings();
    let has = |k: &str, v: &str| s.iter().any(|(a, b)| a == k && b == v);
    assert!(
        has("Delegate", "yes"),
        "the instance cgroups need the subtree delegated"
    );
    assert!(
        has("KillMode", "mixed"),
        "SIGTERM to Tether alone, which ends its instances"
    );
    assert!(has("ExecReload", "/bin/kill -HUP $MAINPID"), "reload is SIGHUP");
    for absent in ["ProtectControlGroups", "ProtectKernelTunables"] {
        assert!(
            !s.iter().any(|(k, v)| k == absent && v != "no"),
            "{absent} would make /sys/fs/cgroup read-only"
        );
    }
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Ok(found) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("skipping: systemd-analyze is not installed (package systemd; .ci/run installs it)");
        return;
    };
    assert!(found.status.success(), "systemd-analyze --version failed");
    let dir = std::env::temp_dir().join(format!("tether-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for the unit");
    let unit = dir.join("tether.service");
    std::fs::write(&unit, UNIT.replace("/usr/local/bin/tether", TETHER)).expect("writing the unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("running systemd-analyze verify");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed: {stderr}");
    assert!(stderr.trim().is_empty(), "systemd-analyze verify warned: {stderr}");
}
