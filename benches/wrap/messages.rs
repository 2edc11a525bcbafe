//! The JSON-RPC lines the bench sends (`initialize` and the fixture's `echo` tool) and the
//! checks on the replies, so that every timed call is also a correct one.
//!
//! Requests are built before the clock starts: timing sees only the round trip.

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

fn line(value: &Value) -> Vec<u8> {
    let mut bytes = value.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

pub fn initialize_request() -> Vec<u8> {
    line(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "tether-bench", "version": "1"}}}))
}

pub fn check_initialize(reply: &[u8]) -> Result<()> {
    let v: Value = serde_json::from_slice(reply).context("initialize reply is not JSON")?;
    ensure!(
        v["id"] == 0 && v["result"]["serverInfo"]["name"] == "tether-fixture",
        "unexpected initialize reply: {v}"
    );
    Ok(())
}

/// `tools/call` requests to the fixture's `echo` tool with ids 1, 2, …, all carrying one text.
pub struct Echoes {
    pub text: String,
    pub requests: Vec<Vec<u8>>,
}

impl Echoes {
    pub fn new(calls: usize, text: &str) -> Echoes {
        let requests = (1..=calls as u64).map(|id| echo_request(id, text)).collect();
        Echoes {
            text: text.to_owned(),
            requests,
        }
    }

    /// Checks that `reply` answers the request with `id` and carries the text back.
    pub fn check(&self, reply: &[u8], id: u64) -> Result<()> {
        let v: Value = serde_json::from_slice(reply).context("echo reply is not JSON")?;
        ensure!(v["id"] == id, "echo reply has id {} instead of {id}", v["id"]);
        let got = v["result"]["content"][0]["text"].as_str();
        ensure!(
            got == Some(self.text.as_str()),
            "echo reply {id} does not carry the text back ({} bytes expected)",
            self.text.len()
        );
        Ok(())
    }
}

fn echo_request(id: u64, text: &str) -> Vec<u8> {
    line(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text}}}))
}
