//! File systems a test mounts for itself (root only): a small tmpfs that can be filled, and
//! an immutable file (`chattr +i`, which even root cannot write: file modes do not stop root).
//! Each is undone on drop, so a failing test leaves no mount and no immutable file behind.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size` mounted on a directory until dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` reads it, e.g. `2m`) on `dir`, 0700.
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=700"), "tmpfs"])
            .arg(dir));
        Tmpfs(dir.to_path_buf())
    }

    /// Fills the file system: writes `filler` until the disk is full.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).expect("creating the filler");
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a process of a failed test may still have a file open on it.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A file made immutable (`chattr +i`) until dropped.
pub struct Immutable(PathBuf);

impl Immutable {
    /// Makes `file` immutable.
    pub fn set(file: &Path) -> Immutable {
        run(Command::new("chattr").arg("+i").arg(file));
        Immutable(file.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("running a mount tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
