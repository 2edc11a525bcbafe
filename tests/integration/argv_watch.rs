//! Watching every command line of the host while a test runs: a secret must never be in one
//! (`/proc/PID/cmdline` is readable by every user, and `ps` shows it), and only a watch that
//! reads them pass after pass, for the whole run, also sees the ones that live for a moment.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Reads every `/proc/*/cmdline`, pass after pass on a thread of its own, until finished, and
/// notes which process's command line held which needle.
pub struct ArgvWatch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Seen>,
}

/// What an [`ArgvWatch`] saw.
pub struct Seen {
    /// Complete passes over `/proc`.
    pub passes: usize,
    /// For each needle, the command lines (lossily decoded, their first 300 characters) that
    /// held it.
    pub hits: Vec<(String, Vec<String>)>,
}

impl Seen {
    /// The command lines that held `needle`.
    pub fn holding(&self, needle: &str) -> &[String] {
        self.hits
            .iter()
            .find(|(n, _)| n == needle)
            .map_or(&[], |(_, h)| h.as_slice())
    }
}

impl ArgvWatch {
    /// Starts watching for `needles`.
    pub fn start(needles: &[&str]) -> ArgvWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let needles: Vec<String> = needles.iter().map(|n| n.to_string()).collect();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Seen {
                passes: 0,
                hits: needles.iter().map(|n| (n.clone(), Vec::new())).collect(),
            };
            // No pause between passes: a command line that lives for a moment (the remote
            // login shell's, before its exec) must be caught too.
            while !flag.load(Ordering::Relaxed) {
                for pid in tether_supervisor::process::procfs::all_pids() {
                    let Ok(argv) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                        continue;
                    };
                    for (needle, hits) in &mut seen.hits {
                        if !argv.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                            continue;
                        }
                        // The start of the command line names the process; the wrapper's
                        // script would drown the report.
                        let shown: String = String::from_utf8_lossy(&argv)
                            .replace('\0', " ")
                            .chars()
                            .take(300)
                            .collect();
                        if hits.len() < 50 && !hits.contains(&shown) {
                            hits.push(shown);
                        }
                    }
                }
                seen.passes += 1;
                // Lets the processes under watch run on a loaded machine; no wait.
                std::thread::yield_now();
            }
            seen
        });
        ArgvWatch { stop, thread }
    }

    /// Stops and reports.
    pub fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the watcher thread")
    }

    /// Stops, and checks that `value_token` was in no command line while `name` was seen in
    /// one (the proof that the passes saw the processes of the run while they lived).
    pub fn assert_only_the_name_was_seen(self, name: &str, value_token: &str) {
        let seen = self.finish();
        assert!(seen.passes > 0, "the watcher never finished a pass");
        assert_eq!(
            seen.holding(value_token),
            &[] as &[String],
            "a value was in a command line ({} passes)",
            seen.passes
        );
        assert!(
            !seen.holding(name).is_empty(),
            "{name} was in no command line in {} passes: the watcher missed the run",
            seen.passes
        );
    }
}
