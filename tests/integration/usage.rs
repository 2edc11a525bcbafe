//! The command line's own failures: every usage error of every subcommand exits with 125 (the
//! status of all of Tether's own failures, never clap's 2, which servers use themselves), names
//! what was wrong on stderr and starts nothing; `--help` and `--version` print to stdout and
//! succeed.

use std::time::Duration;

use tether_supervisor::ledger::FILE_NAME;

use crate::harness::{tether_run, Cookie, FIXTURE};

const SLACK: Duration = Duration::from_secs(3);

/// Runs `tether ARGS…`, asserts it is a usage error naming `named`, and that nothing ran: no
/// ledger was written, nothing carries the cookie. Returns its stderr.
fn assert_usage_error(cookie: &Cookie, args: &[&str], named: &str) -> String {
    let out = tether_run(cookie, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(125),
        "tether {args:?}: a usage error is 125, like every failure of Tether's own; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains(named),
        "tether {args:?} does not name {named}:\n{stderr}"
    );
    assert!(out.stdout.is_empty(), "tether {args:?} printed to stdout");
    assert!(
        !cookie.state_dir().join(FILE_NAME).exists(),
        "tether {args:?} recorded an instance"
    );
    cookie.assert_none_survive(SLACK);
    stderr.into_owned()
}

#[test]
fn a_misspelt_wrap_flag_is_named_and_starts_nothing() {
    // Not taken for `--grace`: a prefix is not the flag.
    let cookie = Cookie::new();
    assert_usage_error(
        &cookie,
        &["wrap", "--grac", "1s", "--", FIXTURE, "--tag", &cookie.0],
        "'--grac'",
    );
}

#[test]
fn every_subcommand_refuses_an_unknown_flag_with_125() {
    let cookie = Cookie::new();
    for args in [
        &["--bogus"][..],
        &["wrap", "--bogus", "--", FIXTURE, "--tag", &cookie.0],
        &["ps", "--bogus"],
        &["reap", "--bogus"],
        &["doctor", "--bogus"],
        &["demo", "--bogus"],
        &["settle-remote", "--bogus"],
        &["dashboard", "--bogus"],
    ] {
        assert_usage_error(&cookie, args, "'--bogus'");
    }
}

#[test]
fn missing_and_bad_values_are_usage_errors_too() {
    let cookie = Cookie::new();
    assert_usage_error(&cookie, &[], "<COMMAND>");
    assert_usage_error(&cookie, &["wrap"], "<CMD>");
    assert_usage_error(&cookie, &["wrap", "--"], "<CMD>");
    assert_usage_error(&cookie, &["ps", "--state-dir"], "--state-dir");
    assert_usage_error(
        &cookie,
        &["wrap", "--grace", "soon", "--", FIXTURE, "--tag", &cookie.0],
        "--grace",
    );
    assert_usage_error(&cookie, &["no-such-subcommand"], "'no-such-subcommand'");
}

#[test]
fn an_absurd_grace_is_refused_before_anything_starts() {
    let cookie = Cookie::new();
    let stderr = assert_usage_error(
        &cookie,
        &["wrap", "--grace", "1e20", "--", FIXTURE, "--tag", &cookie.0],
        "--grace",
    );
    assert!(stderr.contains("longer than a day"), "{stderr}");
}

#[test]
fn help_and_version_print_to_stdout_and_succeed() {
    let cookie = Cookie::new();
    for (args, expected) in [
        (&["--help"][..], "Usage: tether [OPTIONS] <COMMAND>"),
        (&["help"], "Usage: tether [OPTIONS] <COMMAND>"),
        (&["wrap", "--help"], "Usage: tether wrap [OPTIONS] <CMD>..."),
        (&["ps", "--help"], "Usage: tether ps"),
        (&["--version"], "tether "),
    ] {
        let out = tether_run(&cookie, args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "tether {args:?}: {out:?}");
        assert!(stdout.contains(expected), "tether {args:?} printed:\n{stdout}");
        assert!(out.stderr.is_empty(), "tether {args:?} wrote to stderr: {out:?}");
    }
    cookie.assert_none_survive(SLACK);
}
