//! A client's `initialize`: a new session, answered from what the server declared.
//!
//! The server's own `initialize` answer is needed to answer the client, so the instance that
//! will serve the session is found (or started) first: the shared instance, the session's own,
//! or for `request` servers a probe instance that ends at once. The client gets the server's
//! capabilities, `serverInfo` and instructions with the protocol revision negotiated for it.
//! If no instance can be had, no session is made and the client is told why.

use std::sync::Arc;

use bytes::Bytes;

use crate::gateway::Gateway;
use crate::jsonrpc::{self, code, View};
use crate::protocol::{self, ClientInit};
use crate::route::{acquire_code, target, Target};
use crate::session::{Endpoint, Session};

/// Opens a session for `view` (an `initialize` request) at `endpoint`; returns it with the
/// answer, or the error answer.
pub async fn open(
    gw: &Gateway,
    endpoint: Endpoint,
    token_tag: u64,
    view: &View<'_>,
) -> Result<(Arc<Session>, Bytes), Bytes> {
    let id = view.id.map_or("null", |i| i.get());
    let client =
        ClientInit::parse(view.params).map_err(|why| jsonrpc::error_response(id, code::INVALID_PARAMS, &why))?;
    let version = protocol::negotiate(&client.protocol_version);
    let session = gw
        .sessions
        .create(endpoint, token_tag, client, version)
        .map_err(|e| jsonrpc::error_response(id, code::INTERNAL_ERROR, &format!("minting a session id: {e}")))?;
    let fail = |code: i64, why: String| {
        gw.end_session(&session, "its initialize failed");
        jsonrpc::error_response(id, code, &why)
    };
    let server = match target(gw, &session).map_err(|why| fail(code::METHOD_NOT_FOUND, why))? {
        Target::One(server) => server,
        Target::All(servers) => {
            // Nothing is started for an aggregate's initialize: listing starts what it needs.
            let answer = jsonrpc::result_response(id, &crate::aggregate::initialize_result(version, &servers));
            tracing::info!(session = %session.key, servers = servers.len(), version, "session opened on every server");
            return Ok((session, answer));
        }
    };
    let lease = gw
        .pool
        .acquire(&server, &session)
        .await
        .map_err(|e| fail(acquire_code(&e), e.to_string()))?;
    let Some(init) = lease.upstream.init() else {
        return Err(fail(
            code::SERVER_UNAVAILABLE,
            format!("server {server:?} has not finished starting"),
        ));
    };
    let answer = jsonrpc::result_response(id, &init.result_for(version));
    tracing::info!(session = %session.key, server = %server, version, "session opened");
    Ok((session, answer))
}
