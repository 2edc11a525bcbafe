//! Protocol revision 2026-07-28 at the front door, beside the session-based revisions.
//!
//! The revision removes `initialize` and `Mcp-Session-Id`: every request carries the protocol
//! version, the client's capabilities and info in `params._meta` (the [`envelope`]), and the
//! method (and, for `tools/call`, `prompts/get` and `resources/read`, the name or URI) again in
//! the `Mcp-Method` and `Mcp-Name` headers; `server/discover` tells what the server is;
//! `subscriptions/listen` replaces the GET stream; a server never sends the client a request,
//! but answers a call with an `InputRequiredResult` that the client retries with
//! `inputResponses`.
//!
//! Tether's servers speak the session-based revisions, so the gateway translates ([`front`]):
//! a 2026-07-28 request is served in a session of the gateway's own (one per request, or, for
//! a client that names one with the `Tether-Session` header, a lasting one, which `session`
//! servers need); a server's request during a call ends the client's POST with an
//! `InputRequiredResult` while the server's call waits, parked ([`parked`]), until the client's
//! retry brings the answers and picks the call up; results get the revision's fields
//! ([`stamp`]); a listen stream is a session's stream, filtered and stamped ([`listen`]).

pub mod envelope;
pub mod front;
pub mod listen;
pub mod parked;
pub mod stamp;

/// The revision.
pub const REVISION: &str = "2026-07-28";

/// The header a 2026-07-28 client names its lasting session with, by default.
pub const DEFAULT_SESSION_HEADER: &str = "tether-session";

/// Error codes of the revision.
pub mod code {
    /// A routing header does not match the body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// The request needs a capability the client did not declare.
    pub const MISSING_CAPABILITY: i64 = -32021;
    /// The protocol version is not supported.
    pub const UNSUPPORTED_VERSION: i64 = -32022;
}

/// Methods of the session-based revisions that 2026-07-28 removed: answered as unknown.
pub const REMOVED: [&str; 6] = [
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
    "notifications/initialized",
];
