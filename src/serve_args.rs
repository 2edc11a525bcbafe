//! `tether serve`'s arguments, defined once for the two programs that parse them: `tether`
//! (its `--help`, and usage errors before anything runs) and `tether-gateway` (which runs them).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `tether serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The configuration: Tether's TOML, or a client's JSON (`mcpServers`, `mcp.servers`,
    /// `servers`). Default: $XDG_CONFIG_HOME/tether/config.toml if it exists, else the
    /// embedded default (the fixture server).
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Listen on this address instead of the configuration's (default 127.0.0.1:7300; a
    /// non-loopback address needs a token).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Serve one client on stdin and stdout instead of HTTP (a drop-in `command` for a
    /// desktop client's entry); its EOF ends every instance.
    #[arg(long, conflicts_with = "listen")]
    pub stdio: bool,

    /// How the log on stderr is written: `text` (one line an event, for people) or `json` (one
    /// JSON object an event: time, level, pid, message and the event's fields, such as
    /// session, instance, server, lifetime, pid, reason; for log collectors).
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Also serve the admin API and the dashboard over HTTP on this loopback address (port 0:
    /// any free one), every request with the admin token; `tether dashboard` prints the login URL.
    #[arg(long, value_name = "ADDR", value_parser = loopback)]
    pub admin_listen: Option<SocketAddr>,

    /// The admin token for --admin-listen, read from this file (for a scraper's
    /// credentials file); default: 128 random bits made at every start.
    #[arg(long, value_name = "FILE", requires = "admin_listen")]
    pub admin_token_file: Option<PathBuf>,
}

/// A loopback address: the admin listener is for this host only.
fn loopback(s: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s
        .parse()
        .map_err(|e| format!("{e}: expected an address and port, like 127.0.0.1:0"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{} is not a loopback address: the admin API and dashboard listen on this host only (127.0.0.1 or [::1])",
            addr.ip()
        ));
    }
    Ok(addr)
}

/// The formats of the gateway's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `tether[PID]: LEVEL: message field=value…`
    #[default]
    Text,
    /// `{"time":…,"level":…,"pid":…,"message":…,"field":…}`
    Json,
}

impl ServeArgs {
    /// The arguments again, as `tether-gateway` takes them.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args = Vec::new();
        if let Some(config) = &self.config {
            args.push("--config".into());
            args.push(config.clone().into_os_string());
        }
        if let Some(listen) = self.listen {
            args.push("--listen".into());
            args.push(listen.to_string().into());
        }
        if self.stdio {
            args.push("--stdio".into());
        }
        if self.log_format == LogFormat::Json {
            args.push("--log-format".into());
            args.push("json".into());
        }
        if let Some(addr) = self.admin_listen {
            args.push("--admin-listen".into());
            args.push(addr.to_string().into());
        }
        if let Some(file) = &self.admin_token_file {
            args.push("--admin-token-file".into());
            args.push(file.clone().into_os_string());
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn the_arguments_survive_the_hand_over() {
        for given in [
            vec![],
            vec!["--config", "/etc/tether/a b.toml", "--listen", "[::1]:7300"],
            vec!["-c", "x.json", "--stdio"],
            vec!["--stdio", "--log-format", "json"],
            vec!["--admin-listen", "127.0.0.1:0"],
            vec![
                "--admin-listen",
                "[::1]:9000",
                "--admin-token-file",
                "/etc/tether/admin token",
            ],
        ] {
            let first = Cli::try_parse_from(std::iter::once("t").chain(given.iter().copied())).expect("parses");
            let again = Cli::try_parse_from(std::iter::once(OsString::from("t")).chain(first.serve.to_args()))
                .expect("parses again");
            assert_eq!(format!("{:?}", first.serve), format!("{:?}", again.serve), "{given:?}");
        }
    }

    #[test]
    fn the_admin_listener_is_loopback_only_and_its_token_file_needs_it() {
        for refused in [
            vec!["--admin-listen", "0.0.0.0:9000"],
            vec!["--admin-listen", "192.168.1.2:9000"],
            vec!["--admin-listen", "localhost"],
            vec!["--admin-token-file", "t"],
        ] {
            assert!(
                Cli::try_parse_from(std::iter::once("t").chain(refused.iter().copied())).is_err(),
                "{refused:?}"
            );
        }
        let err = Cli::try_parse_from(["t", "--admin-listen", "0.0.0.0:9000"])
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("not a loopback address")),
            "{err:?}"
        );
    }
}
