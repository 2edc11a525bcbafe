//! SSH-launched servers: the POSIX-sh scripts Tether sends as the remote command, the ssh command
//! line that carries them, and the reading of what comes back.
//!
//! Nothing is installed on the remote host. A server ([`SshServer`]: a [`SshTarget`] and a
//! command) runs under [`scripts::wrapper_command`] (`scripts/wrapper.sh`), which ties its life
//! to the ssh connection and announces an identity line on stderr before the server writes
//! anything ([`RemoteIdentity`], parsed by [`identity_line`], taken out of the stream by
//! [`stderr_filter::IdentityFilter`]); the ledger keeps it in the instance's [`RemoteSide`]. An
//! explicit kill goes over a second connection ([`remote_kill::RemoteKill`], running
//! [`scripts::kill_command`], its answer read by [`replies::KillReport`]) and is refused when
//! that identity no longer matches. [`failure::SshFailure`] turns what ssh and the remote shell
//! said into a sentence naming the host; [`scripts::preflight_command`] tells a POSIX login
//! shell from one that would mangle the quoting ([`replies::Preflight`]). The server's
//! environment goes down the channel, never in a command line ([`env_header`]).

pub mod env_header;
pub mod failure;
pub mod identity_line;
pub mod quote;
pub mod remote_kill;
pub mod remote_side;
pub mod replies;
pub mod scripts;
pub mod server;
pub mod stderr_filter;
pub mod target;

pub use identity_line::RemoteIdentity;
pub use remote_side::RemoteSide;
pub use server::SshServer;
pub use target::SshTarget;
