//! One probe per capability: each proves what it reports by a read or a system call, in a
//! scratch cgroup or directory of its own that it removes again.

pub mod cgroup;
pub mod kernel;
pub mod layout;
pub mod pidfd;
pub mod pids;
pub mod prctl;
pub mod proc;
pub mod scratch_cgroup;
