//! What the bench puts between the client and a server: `tether serve` over HTTP with a
//! config of the phase's own, supergateway and mcp-proxy; each started on loopback and ended
//! (and waited for) when dropped.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::bins::Bins;
use crate::poll;
use crate::servers::Server;

/// A process serving MCP over HTTP on loopback.
pub struct Service {
    child: Child,
    pub addr: SocketAddr,
}

impl Service {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `tether serve` with `config` (a TOML text), its state under `dir/name`.
    #[allow(clippy::disallowed_methods)] // The bench starts what it measures.
    pub fn tether(bins: &Bins, name: &'static str, config: &str) -> Result<Service> {
        let path = bins.dir.join(format!("{name}.toml"));
        std::fs::write(&path, config)?;
        let mut child = Command::new(&bins.tether)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&path)
            .env("TETHER_STATE_DIR", bins.dir.join(format!("state-{name}")))
            .env("TETHER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting tether serve")?;
        let stderr = child.stderr.take().context("stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Read to the end, so the gateway never blocks on a full pipe.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .split(" at http://")
                    .nth(1)
                    .and_then(|r| r.split('/').next())
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .context("tether serve did not start listening")?;
        Ok(Service { child, addr })
    }

    /// supergateway, stateful (one server process per session), in front of `server`.
    pub fn supergateway(bins: &Bins, server: &Server) -> Result<Service> {
        let port = free_port()?;
        // supergateway runs its --stdio command through a shell: each word quoted.
        let command = server.argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ");
        let mut c = Command::new(&bins.node);
        c.arg(&bins.supergateway)
            .args(["--stdio", &command, "--outputTransport", "streamableHttp", "--stateful"])
            .args(["--port", &port.to_string(), "--logLevel", "none"]);
        Service::listening(c, port, "supergateway")
    }

    /// mcp-proxy (one server process shared by every session) in front of `server`.
    pub fn mcp_proxy(bins: &Bins, server: &Server) -> Result<Service> {
        let port = free_port()?;
        let mut c = Command::new(&bins.mcp_proxy);
        c.args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--log-level",
            "WARNING",
            "--",
        ])
        .args(&server.argv);
        Service::listening(c, port, "mcp-proxy")
    }

    /// The floor relay (this executable, `--floor-relay`) in front of `server`.
    #[allow(clippy::disallowed_methods)]
    pub fn floor(server: &Server) -> Result<Service> {
        let exe = std::env::current_exe().context("the bench executable")?;
        let mut child = Command::new(exe)
            .arg("--floor-relay")
            .args(&server.argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the floor relay")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        match line.trim().parse::<SocketAddr>() {
            Ok(addr) => Ok(Service { child, addr }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the floor relay did not say where it listens: {line:?}")
            }
        }
    }

    /// Starts a peer, its output discarded (a pipe nobody reads would fill), and waits until
    /// it accepts connections on `port`.
    #[allow(clippy::disallowed_methods)]
    fn listening(mut command: Command, port: u16, name: &'static str) -> Result<Service> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut exited = None;
        let listening = poll::until(Duration::from_secs(60), Duration::from_millis(20), || {
            exited = child.try_wait().ok().flatten();
            exited.is_some() || TcpStream::connect(addr).is_ok()
        });
        if let Some(status) = exited {
            bail!("{name} exited before it listened ({status})");
        }
        if !listening {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{name} did not listen on {addr} within 60 s");
        }
        Ok(Service { child, addr })
    }
}

impl Drop for Service {
    /// SIGTERM, then SIGKILL if it has not exited within 15 s.
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if poll::until(Duration::from_secs(15), Duration::from_millis(10), || {
            !matches!(self.child.try_wait(), Ok(None))
        }) {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on loopback now (the peers take a port number, not 0).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `s` quoted for a POSIX shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A TOML string.
pub fn toml(s: &Path) -> String {
    serde_json::to_string(&s.to_string_lossy()).unwrap_or_default()
}
