//! SSH-launched servers: the POSIX-sh scripts Tether sends as the remote command, and the Rust
//! side that builds those commands and reads what the scripts print.
//!
//! Nothing is installed on the remote host. A server runs under [`remote::wrapper_command`]
//! (`remote_wrapper.sh`), which ties its life to the ssh connection and announces an identity
//! line on stderr before the server writes anything ([`identity::RemoteIdentity`]; only the
//! remote login's own noise may precede it); an explicit kill goes over a second
//! connection ([`remote::kill_command`], read back with [`report::KillReport`]) and is refused
//! when that identity no longer matches; [`remote::preflight_command`] tells a POSIX login shell
//! from one that would mangle the quoting ([`report::Preflight`]). Spawning ssh itself is not
//! here: this module only makes and reads strings.

pub mod identity;
pub mod quote;
pub mod remote;
pub mod report;

pub use identity::RemoteIdentity;
