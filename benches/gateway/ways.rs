//! A way of calling a server (directly, through Tether at one of its doors, through a peer):
//! how to open a client that way, the tool's name there, and the process whose CPU time is the
//! cost of the way (none for the direct baseline).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;

use crate::bins::Bins;
use crate::clients::{Caller, Http, Piped};
use crate::servers::Server;
use crate::services::Service;

pub struct Way {
    pub label: String,
    pub tool: String,
    /// The process in between, whose CPU time is measured.
    pub pid: Option<u32>,
    open: Box<dyn Fn() -> Result<Box<dyn Caller>> + Sync>,
}

impl Way {
    pub fn open(&self) -> Result<Box<dyn Caller>> {
        (self.open)()
    }

    /// The server started directly, spoken to over its stdio.
    pub fn direct(server: &Server) -> Way {
        let argv = server.argv.clone();
        Way {
            label: "direct stdio".into(),
            tool: "echo".into(),
            pid: None,
            open: Box::new(move || {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                Ok(Box::new(Piped::start(c)?) as Box<dyn Caller>)
            }),
        }
    }

    /// An HTTP endpoint: a Tether door or a peer.
    pub fn http(label: impl Into<String>, service: &Service, path: &str, tool: &str) -> Way {
        let (addr, path): (SocketAddr, String) = (service.addr, path.to_string());
        Way {
            label: label.into(),
            tool: tool.into(),
            pid: Some(service.pid()),
            open: Box::new(move || Ok(Box::new(Http::open(addr, &path)?) as Box<dyn Caller>)),
        }
    }

    /// `tether serve --stdio` with `server` as its one server.
    pub fn tether_stdio(bins: &Bins, server: &Server) -> Result<Way> {
        let config: PathBuf = bins.dir.join(format!("stdio-{}.toml", server.name));
        std::fs::write(&config, server.table("s", &[], ""))?;
        let (tether, state) = (bins.tether.clone(), bins.dir.join("state-stdio"));
        Ok(Way {
            label: "tether serve --stdio".into(),
            tool: "echo".into(),
            pid: None,
            open: Box::new(move || {
                let mut c = Command::new(&tether);
                c.args(["serve", "--stdio", "--config"])
                    .arg(&config)
                    .env("TETHER_STATE_DIR", &state);
                Ok(Box::new(Piped::start(c)?) as Box<dyn Caller>)
            }),
        })
    }
}
