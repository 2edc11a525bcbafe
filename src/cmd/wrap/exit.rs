//! Ending the shim the way its server ended, so a client sees the same status either way.
//!
//! An exit code is passed through. A death by signal is re-raised on the shim itself (with core
//! dumps off, so a crashed server does not make the shim dump core), falling back to the shell
//! convention 128 + signal number if the signal cannot end the shim.

use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal};

use tether_supervisor::shim::ServerExit;

/// Exits like the server did.
pub fn exit_like(exit: ServerExit) -> ! {
    match exit {
        ServerExit::Code(code) => std::process::exit(code),
        ServerExit::Signal(sig) => {
            let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
            reset_to_default(sig);
            let mut set = SigSet::empty();
            set.add(sig);
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
            let _ = nix::sys::signal::raise(sig);
            std::process::exit(128 + sig as i32)
        }
    }
}

#[allow(unsafe_code)]
fn reset_to_default(sig: Signal) {
    // SAFETY: installs the default disposition; no handler code of ours runs.
    let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) };
}
