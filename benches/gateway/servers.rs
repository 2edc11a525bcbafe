//! The two servers every comparison runs with: the fixture (release build, answers in a few
//! µs, so what is measured is the path to it) and server-everything (Node, the realistic one).

use crate::bins::Bins;
use crate::services::toml;

/// A stdio MCP server.
pub struct Server {
    /// Its short name in the reports and in Tether's configs.
    pub name: &'static str,
    /// The command line that starts it.
    pub argv: Vec<String>,
}

impl Server {
    pub fn fixture(bins: &Bins) -> Server {
        Server {
            name: "fixture",
            argv: vec![bins.fixture.to_string_lossy().into_owned()],
        }
    }

    pub fn everything(bins: &Bins) -> Server {
        Server {
            name: "everything",
            argv: vec![
                bins.node.to_string_lossy().into_owned(),
                bins.everything.to_string_lossy().into_owned(),
                "stdio".into(),
            ],
        }
    }

    /// Its `[servers.NAME]` table in a Tether config, with `more` arguments and `extra` lines.
    pub fn table(&self, name: &str, more: &[&str], extra: &str) -> String {
        let args: Vec<String> = self.argv[1..]
            .iter()
            .map(String::as_str)
            .chain(more.iter().copied())
            .map(|a| serde_json::to_string(a).unwrap_or_default())
            .collect();
        format!(
            "[servers.{name}]\ncommand = {}\nargs = [{}]\n{extra}\n",
            toml(std::path::Path::new(&self.argv[0])),
            args.join(", ")
        )
    }
}
