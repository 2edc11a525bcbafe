//! The doctor's host report against the truth: every finding of `probe_host()` is compared
//! with what this test learns by itself (`uname -r`, its own parse of `/proc/self/mountinfo`
//! and `/proc/self/cgroup`, cgroups it creates and removes, raw `pidfd_open`), so a doctor that
//! claims more, or less, than the host offers fails here. Nothing in it is specific to one
//! machine: on a host without cgroups the doctor must say so just as loudly.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use tether_supervisor::host::{probe_host, CheckId, GuaranteeId, HostReport, Status, Verdict};

/// The doctor flips this process's subreaper and parent-death attributes for an instant: the
/// tests here run one at a time so that one's before/after comparison never sees another's.
static DOCTOR: Mutex<()> = Mutex::new(());

/// One mount from mountinfo, as this test reads it.
struct Mount {
    root: String,
    point: PathBuf,
    fstype: String,
    super_options: Vec<String>,
    read_only: bool,
}

fn mounts() -> Vec<Mount> {
    let text = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some(Mount {
                root: left.get(3)?.to_string(),
                point: PathBuf::from(left.get(4)?),
                fstype: right.first()?.to_string(),
                super_options: right.get(2)?.split(',').map(str::to_string).collect(),
                read_only: left.get(5)?.split(',').any(|o| o == "ro"),
            })
        })
        .collect()
}

/// The path in `/proc/self/cgroup` of the hierarchy whose controller list satisfies `wanted`.
fn own_cgroup(wanted: impl Fn(&str) -> bool) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        wanted(controllers).then(|| path.to_string())
    })
}

fn dir_under(mount: &Mount, path: &str) -> Option<PathBuf> {
    let rel = if mount.root == "/" {
        path
    } else {
        path.strip_prefix(&mount.root)?
    };
    let rel = rel.trim_matches('/');
    Some(if rel.is_empty() {
        mount.point.clone()
    } else {
        mount.point.join(rel)
    })
}

/// Creates and removes a cgroup under `dir`; true when both worked. Returns whether the new
/// cgroup had each of `files`.
fn try_cgroup(dir: &Path, files: &[&str]) -> Option<Vec<bool>> {
    let probe = dir.join(format!(
        "tether-doctortest-{}",
        tether_supervisor::ids::random_id().ok()?
    ));
    fs::create_dir(&probe).ok()?;
    let found = files.iter().map(|f| probe.join(f).exists()).collect();
    let removed = fs::remove_dir(&probe);
    assert!(
        removed.is_ok(),
        "test could not remove {}: {removed:?}",
        probe.display()
    );
    Some(found)
}

#[allow(unsafe_code)]
fn raw_pidfd_inode(pid: i32) -> Option<u64> {
    // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: fstat writes into a zeroed stat we own; close takes the fd we just opened.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        let ok = libc::fstat(fd, &mut st) == 0;
        libc::close(fd);
        ok.then_some(st.st_ino)
    }
}

fn status(report: &HostReport, id: CheckId) -> Status {
    report.check(id).unwrap_or_else(|| panic!("no {id:?} check")).status
}

fn verdict(report: &HostReport, id: GuaranteeId) -> Verdict {
    report
        .guarantees
        .iter()
        .find(|g| g.id == id)
        .expect("guarantee")
        .verdict
}

fn holds_iff(report: &HostReport, id: GuaranteeId, expected: bool) {
    let want = if expected { Verdict::Holds } else { Verdict::Degrades };
    assert_eq!(verdict(report, id), want, "{id:?}: {:#?}", report.guarantees);
}

#[test]
fn the_host_report_matches_the_kernel_and_the_mounts() {
    let _one_at_a_time = DOCTOR.lock().unwrap_or_else(|e| e.into_inner());
    let subreaper_before = nix::sys::prctl::get_child_subreaper().unwrap();
    let pdeathsig_before = nix::sys::prctl::get_pdeathsig().unwrap();
    let report = probe_host();
    let json = serde_json::to_string_pretty(&report).unwrap();
    eprintln!("{json}");

    // The doctor leaves this process as it found it.
    assert_eq!(nix::sys::prctl::get_child_subreaper().unwrap(), subreaper_before);
    assert_eq!(nix::sys::prctl::get_pdeathsig().unwrap(), pdeathsig_before);

    // Kernel: uname -r, and the feature minimums.
    let out = Command::new("uname").arg("-r").output().expect("uname -r");
    let release = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let kernel = report.kernel.as_ref().expect("kernel facts");
    assert_eq!(kernel.release, release);
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (numbers.next().unwrap(), numbers.next().unwrap());
    for (feature, needs) in [
        ("pidfd_open", (5, 3)),
        ("cgroup.kill", (5, 14)),
        ("pidfs unique inodes", (6, 9)),
    ] {
        let f = kernel.features.iter().find(|f| f.feature == feature).expect(feature);
        assert_eq!(f.new_enough, Some((major, minor) >= needs), "{feature}");
    }
    assert_eq!(status(&report, CheckId::Kernel) == Status::Ok, (major, minor) >= (6, 9));

    // Layout and this process's v2 cgroup.
    let mounts = mounts();
    let v2_mounts: Vec<&Mount> = mounts.iter().filter(|m| m.fstype == "cgroup2").collect();
    let has_v1 = mounts.iter().any(|m| m.fstype == "cgroup");
    let layout = match (!v2_mounts.is_empty(), has_v1) {
        (true, false) => "pure_v2",
        (true, true) => "hybrid",
        (false, true) => "v1_only",
        (false, false) => "none",
    };
    assert_eq!(serde_json::to_value(report.cgroup.layout).unwrap(), layout);
    let own_v2 = own_cgroup(str::is_empty).and_then(|p| v2_mounts.iter().find_map(|m| dir_under(m, &p)));
    assert_eq!(report.cgroup.own_v2_dir, own_v2);
    assert_eq!(status(&report, CheckId::CgroupV2) == Status::Ok, own_v2.is_some());

    // Writable: the test makes a cgroup of its own where the doctor made its probe.
    let v2_read_only = v2_mounts
        .iter()
        .any(|m| own_v2.as_ref().is_some_and(|d| d.starts_with(&m.point)) && m.read_only);
    let v2_probe = own_v2
        .as_deref()
        .filter(|_| !v2_read_only)
        .and_then(|d| try_cgroup(d, &["cgroup.kill", "pids.max"]));
    // Moving a process in also needs write access to our own cgroup.procs (opened, not written).
    let procs_writable = own_v2
        .as_ref()
        .is_some_and(|d| fs::OpenOptions::new().write(true).open(d.join("cgroup.procs")).is_ok());
    let writable = v2_probe.is_some() && procs_writable;
    assert_eq!(report.cgroup.v2_writable, writable);
    assert_eq!(
        status(&report, CheckId::CgroupWritable) == Status::Ok,
        writable,
        "{json}"
    );
    if let Some(found) = &v2_probe {
        assert_eq!(
            status(&report, CheckId::CgroupKill) == Status::Ok,
            found[0],
            "cgroup.kill"
        );
    }

    // pids in v2: offered to our cgroup, and (after the doctor) enabled below it.
    let offered = own_v2
        .as_ref()
        .and_then(|d| fs::read_to_string(d.join("cgroup.controllers")).ok())
        .is_some_and(|c| c.split_whitespace().any(|c| c == "pids"));
    let v2_pids = status(&report, CheckId::PidsV2) == Status::Ok;
    if !offered || !writable {
        assert!(!v2_pids, "pids_v2 claimed without a controller or a writable cgroup");
    } else {
        let enabled = fs::read_to_string(own_v2.as_ref().unwrap().join("cgroup.subtree_control"))
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"));
        assert_eq!(v2_pids, enabled);
    }

    // pids in v1: the hierarchy, our cgroup in it, and a cgroup the test makes there.
    let v1_mount = mounts
        .iter()
        .find(|m| m.fstype == "cgroup" && m.super_options.iter().any(|o| o == "pids"));
    let v1_dir = v1_mount.and_then(|m| {
        let path = own_cgroup(|c| c.split(',').any(|c| c == "pids"))?;
        dir_under(m, &path)
    });
    assert_eq!(report.cgroup.v1_pids_dir, v1_dir);
    let v1_writable = v1_mount.is_some_and(|m| !m.read_only)
        && v1_dir.as_deref().and_then(|d| try_cgroup(d, &["pids.max"])) == Some(vec![true]);
    assert_eq!(status(&report, CheckId::PidsV1) == Status::Ok, v1_writable);
    let via = match (writable, v2_pids, v1_writable) {
        (false, _, _) => serde_json::Value::Null,
        (true, true, _) => "v2".into(),
        (true, false, true) => "v1".into(),
        (true, false, false) => serde_json::Value::Null,
    };
    assert_eq!(serde_json::to_value(report.cgroup.pids_via).unwrap(), via);

    // pidfd and pidfs, by raw system calls.
    let own_inode = raw_pidfd_inode(std::process::id() as i32);
    let init_inode = raw_pidfd_inode(1);
    assert_eq!(status(&report, CheckId::Pidfd) == Status::Ok, own_inode.is_some());
    let unique = matches!((own_inode, init_inode), (Some(a), Some(b)) if a != b);
    assert_eq!(status(&report, CheckId::PidfsInodes) == Status::Ok, unique);

    // Subreaper: the test's own round trip must agree with the doctor's.
    let subreaper =
        nix::sys::prctl::set_child_subreaper(true).is_ok() && nix::sys::prctl::get_child_subreaper() == Ok(true);
    nix::sys::prctl::set_child_subreaper(subreaper_before).unwrap();
    assert_eq!(status(&report, CheckId::Subreaper) == Status::Ok, subreaper);

    // /proc: the hidepid option as mounted, and the files the sweeps read.
    let proc_mount = mounts
        .iter()
        .find(|m| m.fstype == "proc" && m.point == Path::new("/proc"));
    let hidepid = proc_mount.and_then(|m| {
        m.super_options
            .iter()
            .find_map(|o| o.strip_prefix("hidepid=").map(str::to_string))
    });
    assert_eq!(report.proc.hidepid, hidepid);
    if status(&report, CheckId::Proc) != Status::Missing {
        assert!(fs::read("/proc/self/environ").is_ok());
        assert!(fs::read_to_string("/proc/sys/kernel/random/boot_id").is_ok());
    }
    if nix::unistd::geteuid().is_root() {
        // Root reads every environment but those of processes holding more privileges.
        let readable = tether_supervisor::process::procfs::all_pids()
            .into_iter()
            .filter(|&p| fs::metadata(format!("/proc/{p}")).is_ok_and(|m| m.uid() == 0))
            .any(|p| p != std::process::id() as i32 && fs::read(format!("/proc/{p}/environ")).is_ok());
        assert!(report.proc.environ_readable > 0 || !readable);
    }

    // Guarantees follow from the truth, not from the doctor's findings.
    // Without a cgroup, the keeper (a subreaper above the shim) carries both.
    holds_iff(&report, GuaranteeId::ShimSigkill, writable || subreaper);
    holds_iff(&report, GuaranteeId::Escapees, writable || subreaper);
    holds_iff(&report, GuaranteeId::PidsCap, writable && (v2_pids || v1_writable));
    holds_iff(&report, GuaranteeId::PidReuse, own_inode.is_some());
    holds_iff(&report, GuaranteeId::UniqueIdentity, unique);

    // Advice exactly where something is not ok.
    for c in &report.checks {
        assert_eq!(c.advice.is_some(), c.status != Status::Ok, "{c:?}");
    }
}

#[test]
fn the_text_report_shows_every_check_and_guarantee() {
    let _one_at_a_time = DOCTOR.lock().unwrap_or_else(|e| e.into_inner());
    let report = probe_host();
    let text = tether_supervisor::host::render_text(&report);
    for c in &report.checks {
        assert!(text.contains(c.id.title()), "{} missing from:\n{text}", c.id.title());
    }
    for g in &report.guarantees {
        assert!(text.contains(g.promise), "{text}");
    }
}
