//! Command-line flags of `tether-fixture`.
//!
//! The public flags choose how the fixture misbehaves; the hidden ones
//! (`--sleeper`, `--intermediate`, `--notify-fd`, `--tough`) are only used when
//! the fixture re-executes itself to become one of its own escapee processes.

use clap::{Parser, ValueEnum};
use std::os::fd::RawFd;

/// A misbehaving stdio MCP server used by tether's integration tests.
#[derive(Debug, Clone, Parser)]
#[command(name = "tether-fixture", version)]
pub struct Args {
    /// Marker passed as `--tag STR` in the argv of every process the fixture spawns.
    #[arg(long, value_name = "STR")]
    pub tag: Option<String>,

    /// Keep running forever after stdin reaches EOF.
    #[arg(long)]
    pub ignore_eof: bool,

    /// Ignore SIGTERM and SIGHUP in the server process itself.
    #[arg(long)]
    pub ignore_sigterm: bool,

    /// Spawn N sleepers that stay in the fixture's own process group.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub children: usize,

    /// Spawn one sleeper that calls setsid() before exec.
    #[arg(long)]
    pub setsid_escapee: bool,

    /// Spawn a sleeper grandchild in a new session via an intermediate that exits at once.
    #[arg(long)]
    pub double_fork: bool,

    /// Like --double-fork, but the grandchild has a completely empty environment.
    #[arg(long)]
    pub env_i_escapee: bool,

    /// Every sleeper ignores SIGTERM, SIGINT and SIGHUP (only SIGKILL ends it).
    #[arg(long)]
    pub tough_children: bool,

    /// Shorthand for --children 2 --setsid-escapee --double-fork --env-i-escapee
    /// --tough-children --ignore-sigterm --ignore-eof.
    #[arg(long)]
    pub zoo: bool,

    /// Exit with --exit-code after answering N `tools/call` requests.
    #[arg(long, value_name = "N")]
    pub exit_after: Option<u64>,

    /// Exit status used on stdin EOF and after --exit-after.
    #[arg(long, value_name = "N", default_value_t = 0, allow_negative_numbers = true)]
    pub exit_code: i32,

    /// Write a line of non-JSON garbage to stdout before each response line.
    #[arg(long)]
    pub garbage: bool,

    /// Sleep MS milliseconds before each reply.
    #[arg(long, value_name = "MS")]
    pub slow: Option<u64>,

    /// Ignore JSON entirely: copy stdin to stdout byte for byte until EOF.
    #[arg(long)]
    pub raw_echo: bool,

    /// At start, write N numbered lines to stderr.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub stderr_lines: u64,

    /// Never answer `initialize`, and answer no other request either until the
    /// client sends `notifications/initialized`: a server that hangs at start-up,
    /// for start-up timeout tests.
    #[arg(long)]
    pub no_initialize: bool,

    /// Answer each `tools/call` with a line of invalid UTF-8: the bytes
    /// `{"jsonrpc":"2.0","id":N,` (the request's id) followed by a 0xff byte.
    /// Anything done before the answer (notifications, questions) still happens.
    #[arg(long, conflicts_with = "bad_json_reply")]
    pub bad_utf8_reply: bool,

    /// Answer each `tools/call` with truncated JSON: the bytes
    /// `{"jsonrpc":"2.0","id":N,"result":` (the request's id) and a newline.
    #[arg(long)]
    pub bad_json_reply: bool,

    /// From the start, write numbered lines to stderr without end (a thread does, blocking
    /// whenever the reader is slower), while serving as usual: each line has a byte that is
    /// not UTF-8, and every 5000th is preceded by 1 MiB without a newline.
    #[arg(long)]
    pub stderr_flood: bool,

    /// At start, close stdout (the reader sees its end of file) and stay alive, serving
    /// nothing, until killed.
    #[arg(long)]
    pub close_stdout_and_stay: bool,

    /// At start, close stdout and stderr (as a server that daemonizes in place) and stay alive,
    /// serving nothing, until killed. Over SSH only this shows as the channel's end of file:
    /// OpenSSH sends it once both streams are closed.
    #[arg(long)]
    pub close_stdio_and_stay: bool,

    /// At the first `tools/call`, instead of answering it, close stdout and stay alive until
    /// killed (the call is then in flight when the reader sees its end of file).
    #[arg(long)]
    pub close_stdout_at_call: bool,

    /// Before each `tools/call` answer, send N `notifications/message` log messages.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub notification_flood: u64,

    /// Before each `tools/call` answer, send answers to requests never sent (ids 987654321
    /// and "never-sent").
    #[arg(long)]
    pub reply_unsolicited: bool,

    /// Answer each `tools/list` and `tools/call` with a result that also carries a value
    /// nested N deep (`"deep":{"a":{"a":…1}}`), written as bytes: no recursive parser (nor
    /// serializer) could build it.
    #[arg(long, value_name = "N")]
    pub deep_reply: Option<usize>,

    /// Ignored: an argument a test can give any text (shell metacharacters) and read back
    /// from `/proc/PID/cmdline`.
    #[arg(long, value_name = "TEXT")]
    pub note: Vec<String>,

    /// Serve MCP over streamable HTTP at http://ADDR/mcp instead of stdio (ADDR like
    /// 127.0.0.1:0; the address bound is printed on stderr as `tether-fixture: listening on
    /// http://…/mcp`). Sessions, DELETE, a 404 for an unknown session; no GET stream (405).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,

    /// With --http: append one line per session event to FILE (`initialize SID`,
    /// `DELETE SID`, `POST METHOD SID`, `404 SID`), for tests to read.
    #[arg(long, value_name = "FILE", requires = "http")]
    pub http_record: Option<std::path::PathBuf>,

    /// With --http: serve https:// with a self-signed certificate for localhost and
    /// 127.0.0.1, made at start-up and written (PEM) to FILE for clients to trust.
    #[arg(long, value_name = "FILE", requires = "http")]
    pub tls_cert_out: Option<std::path::PathBuf>,

    /// With --http: spoil every `tools/call` (only those) this way.
    #[arg(long, value_name = "MODE", requires = "http")]
    pub http_misbehave: Option<HttpMisbehaviour>,

    /// Hidden: run as a sleeper of this kind.
    #[arg(long, hide = true, value_name = "KIND", conflicts_with = "intermediate")]
    pub sleeper: Option<SleeperKind>,

    /// Hidden: run as the intermediate that spawns a sleeper of this kind, then exits.
    #[arg(long, hide = true, value_name = "KIND")]
    pub intermediate: Option<SleeperKind>,

    /// Hidden: the inherited fd on which a sleeper reports `<pid> <kind>\n`.
    #[arg(long, hide = true, value_name = "FD")]
    pub notify_fd: Option<RawFd>,

    /// Hidden: the sleeper ignores SIGTERM, SIGINT and SIGHUP.
    #[arg(long, hide = true)]
    pub tough: bool,
}

/// How `--http` spoils a `tools/call`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HttpMisbehaviour {
    /// 200, application/json, a body that is not JSON.
    Garbage,
    /// 200, text/html: a web page, as a misconfigured proxy answers.
    Html,
    /// 500 Internal Server Error with a text body.
    Status500,
    /// 302 to another URL.
    Redirect,
    /// An event stream that stops in the middle of the answer's event.
    CutStream,
    /// 200, application/json, a 100 MB body.
    Huge,
    /// The session is forgotten when the first `tools/call` comes (once in the fixture's
    /// life), which is answered 404, as a server that restarted or expired it answers.
    ForgetSession,
    /// DELETE is not allowed (405), as the spec lets a server answer.
    NoDelete,
}

/// What kind of escapee a sleeper is; also its name in the ready line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum SleeperKind {
    /// Stays in the fixture's process group.
    #[value(name = "group")]
    Group,
    /// Direct child that called setsid() before exec.
    #[value(name = "setsid")]
    Setsid,
    /// Grandchild in a new session, orphaned by its exited parent.
    #[value(name = "double-fork")]
    DoubleFork,
    /// Like `DoubleFork`, with an empty environment.
    #[value(name = "env-i")]
    EnvI,
}

impl SleeperKind {
    /// The name used on the command line and in notify/ready lines.
    pub fn name(self) -> &'static str {
        match self {
            SleeperKind::Group => "group",
            SleeperKind::Setsid => "setsid",
            SleeperKind::DoubleFork => "double-fork",
            SleeperKind::EnvI => "env-i",
        }
    }

    /// Inverse of [`SleeperKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Group, Self::Setsid, Self::DoubleFork, Self::EnvI]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

impl Args {
    /// Expands `--zoo` into the flags it stands for.
    pub fn expand_zoo(mut self) -> Self {
        if self.zoo {
            self.children = self.children.max(2);
            self.setsid_escapee = true;
            self.double_fork = true;
            self.env_i_escapee = true;
            self.tough_children = true;
            self.ignore_sigterm = true;
            self.ignore_eof = true;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoo_expands() {
        let a = Args::parse_from(["f", "--zoo", "--tag", "T"]).expand_zoo();
        assert_eq!(a.children, 2);
        assert!(a.setsid_escapee && a.double_fork && a.env_i_escapee);
        assert!(a.tough_children && a.ignore_sigterm && a.ignore_eof);
        assert_eq!(a.tag.as_deref(), Some("T"));
    }

    #[test]
    fn kind_names_round_trip() {
        for k in [
            SleeperKind::Group,
            SleeperKind::Setsid,
            SleeperKind::DoubleFork,
            SleeperKind::EnvI,
        ] {
            assert_eq!(SleeperKind::from_name(k.name()), Some(k));
            let v = k.to_possible_value().unwrap();
            assert_eq!(v.get_name(), k.name());
        }
    }

    #[test]
    fn bad_reply_flags_parse_and_exclude_each_other() {
        let a = Args::parse_from(["f", "--no-initialize", "--bad-utf8-reply"]);
        assert!(a.no_initialize && a.bad_utf8_reply && !a.bad_json_reply);
        assert!(Args::parse_from(["f", "--bad-json-reply"]).bad_json_reply);
        assert!(Args::try_parse_from(["f", "--bad-json-reply", "--bad-utf8-reply"]).is_err());
    }

    #[test]
    fn negative_exit_code_parses() {
        let a = Args::parse_from(["f", "--exit-code", "-1"]);
        assert_eq!(a.exit_code, -1);
    }
}
