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
        ] {
            let first = Cli::try_parse_from(std::iter::once("t").chain(given.iter().copied())).expect("parses");
            let again = Cli::try_parse_from(std::iter::once(OsString::from("t")).chain(first.serve.to_args()))
                .expect("parses again");
            assert_eq!(format!("{:?}", first.serve), format!("{:?}", again.serve), "{given:?}");
        }
    }
}
