//! Integration tests: the real `tether` binary against real processes.
