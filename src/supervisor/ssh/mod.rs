//! SSH-launched servers: the POSIX-sh scripts Tether sends as the remote command, the ssh command
//! line that carries them, and the reading of what comes back.
//!
//! Nothing is installed on the remote host. A server ([`SshServer`]: a [`SshTarget`] and a
//! command) runs under [`remote::wrapper_command`] (`remote_wrapper.sh`), which ties its life to
//! the ssh connection and announces an identity line on stderr before the server writes anything
//! ([`identity::RemoteIdentity`], taken out of the stream by [`stderr::IdentityFilter`]); the
//! ledger keeps it as a [`RemoteRecord`]. An explicit kill goes over a second connection
//! ([`kill::RemoteKill`], running [`remote::kill_command`], read back with
//! [`report::KillReport`]) and is refused when that identity no longer matches.
//! [`failure::SshFailure`] turns what ssh and the remote shell said into a sentence naming the
//! host; [`remote::preflight_command`] tells a POSIX login shell from one that would mangle the
//! quoting ([`report::Preflight`]).

pub mod failure;
pub mod identity;
pub mod kill;
pub mod quote;
pub mod record;
pub mod remote;
pub mod report;
pub mod server;
pub mod stderr;
pub mod target;

pub use identity::RemoteIdentity;
pub use record::RemoteRecord;
pub use server::SshServer;
pub use target::SshTarget;
