//! Knowing processes: reading `/proc`, holding processes through pidfds, recording identities
//! that outlive a pid, and the environment cookie that marks every process of an instance.

pub mod cookie;
pub mod identity;
pub mod pidfd;
pub mod procfs;
