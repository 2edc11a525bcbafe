//! The two `prctl` attributes a shim relies on: child subreaper (orphaned descendants come back
//! to the shim) and parent-death signal (the server dies with the shim).
//!
//! Each is proven by a round trip on this very process: set, read back, restore the value it
//! had, read back again. The doctor ends as it began; a round trip that cannot restore says so.
//! The subreaper flag is process-wide, so for the instant it is set an orphan re-parented from
//! below this process would land here instead of at init; the parent-death signal is set to
//! SIGWINCH, whose default action is to do nothing, so a parent dying in that instant is
//! harmless.

use nix::sys::prctl;
use nix::sys::signal::Signal;

use crate::host::check::{Check, CheckId, Status};

/// Signal used for the parent-death round trip when none is set.
const HARMLESS: Signal = Signal::SIGWINCH;

/// Proves `PR_SET_CHILD_SUBREAPER` with a set/get/restore round trip.
pub fn check_subreaper() -> Check {
    let result = (|| {
        let before = prctl::get_child_subreaper().map_err(|e| format!("PR_GET_CHILD_SUBREAPER: {e}"))?;
        prctl::set_child_subreaper(true).map_err(|e| format!("PR_SET_CHILD_SUBREAPER(1): {e}"))?;
        let set = prctl::get_child_subreaper();
        let restored = prctl::set_child_subreaper(before).and_then(|()| prctl::get_child_subreaper());
        match (set, restored) {
            (Ok(true), Ok(after)) if after == before => Ok(format!(
                "PR_SET_CHILD_SUBREAPER(1) then PR_GET_CHILD_SUBREAPER read 1; restored to {}",
                u8::from(before)
            )),
            (Ok(true), restored) => Err(format!(
                "set and read back 1, but restoring {} failed: {restored:?}",
                u8::from(before)
            )),
            (set, _) => Err(format!(
                "PR_SET_CHILD_SUBREAPER(1) accepted, but PR_GET_CHILD_SUBREAPER gave {set:?}"
            )),
        }
    })();
    match result {
        Ok(detail) => Check::ok(CheckId::Subreaper, detail),
        Err(detail) => Check::not_ok(
            CheckId::Subreaper,
            Status::Missing,
            detail,
            "use Linux ≥ 3.4 and allow prctl(PR_SET_CHILD_SUBREAPER) in the seccomp profile",
        ),
    }
}

/// Proves `PR_SET_PDEATHSIG` with a set/get/restore round trip.
pub fn check_pdeathsig() -> Check {
    let name = |s: Option<Signal>| s.map_or("0", Signal::as_str);
    let result = (|| {
        let before = prctl::get_pdeathsig().map_err(|e| format!("PR_GET_PDEATHSIG: {e}"))?;
        let probe = before.unwrap_or(HARMLESS);
        prctl::set_pdeathsig(probe).map_err(|e| format!("PR_SET_PDEATHSIG({}): {e}", probe.as_str()))?;
        let set = prctl::get_pdeathsig();
        let restored = prctl::set_pdeathsig(before).and_then(|()| prctl::get_pdeathsig());
        match (set, restored) {
            (Ok(Some(s)), Ok(after)) if s == probe && after == before => Ok(format!(
                "PR_SET_PDEATHSIG({0}) then PR_GET_PDEATHSIG read {0}; restored to {1}",
                probe.as_str(),
                name(before)
            )),
            (Ok(Some(s)), restored) if s == probe => Err(format!(
                "set and read back {}, but restoring {} failed: {restored:?}",
                probe.as_str(),
                name(before)
            )),
            (set, _) => Err(format!(
                "PR_SET_PDEATHSIG({}) accepted, but PR_GET_PDEATHSIG gave {set:?}",
                probe.as_str()
            )),
        }
    })();
    match result {
        Ok(detail) => Check::ok(CheckId::Pdeathsig, detail),
        Err(detail) => Check::not_ok(
            CheckId::Pdeathsig,
            Status::Missing,
            detail,
            "allow prctl(PR_SET_PDEATHSIG) in the seccomp profile",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Both checks run in one test, under the lock: they flip process-wide state, and a test
    // running at the same time could read it mid-round-trip.
    #[test]
    fn round_trips_leave_the_process_as_it_was() {
        let _serial = crate::host::PROCESS_STATE.lock().unwrap_or_else(|e| e.into_inner());
        let subreaper = prctl::get_child_subreaper().unwrap();
        let pdeathsig = prctl::get_pdeathsig().unwrap();
        assert!(check_subreaper().is_ok());
        assert!(check_pdeathsig().is_ok());
        assert_eq!(prctl::get_child_subreaper().unwrap(), subreaper);
        assert_eq!(prctl::get_pdeathsig().unwrap(), pdeathsig);
    }
}
