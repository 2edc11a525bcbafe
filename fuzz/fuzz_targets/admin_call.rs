//! The admin API's dispatch (`admin::call::call`): an arbitrary method and path. Never a panic,
//! and a scope to end is exactly what follows `/v1/scopes/` in a DELETE's path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_gateway::admin::call::{call, Call};

fuzz_target!(|data: &[u8]| {
    let Some((method, path)) = data.iter().position(|&b| b == b' ').map(|i| data.split_at(i)) else {
        return;
    };
    let (Ok(method), Ok(path)) = (hyper::Method::from_bytes(method), std::str::from_utf8(&path[1..])) else {
        return;
    };
    match call(&method, path) {
        Call::EndScope(id) => {
            assert_eq!(method, hyper::Method::DELETE);
            assert_eq!(Some(id), path.trim_end_matches('/').strip_prefix("/v1/scopes/"));
            assert!(!id.is_empty() && !id.ends_with('/'));
        }
        Call::NotAllowed | Call::NotFound => {}
        _ => assert!(path.starts_with('/')),
    }
});
