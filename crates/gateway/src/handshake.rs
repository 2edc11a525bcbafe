//! A client's `initialize`: a new session, answered from what the server declared.
//!
//! The server's own `initialize` answer is needed to answer the client, so the instance that
//! will serve the session is found (or started) first: the shared instance, the session's own,
//! or for `request` servers a probe instance that ends at once. The client gets the server's
//! capabilities, `serverInfo` and instructions with the protocol revision negotiated for it.
//! If no instance can be had, no session is left behind and the client is told why; a client
//! that goes away during the handshake leaves no session either. Past `max_sessions`, a new
//! session is refused.

use std::sync::Arc;

use bytes::Bytes;

use crate::gateway::Gateway;
use crate::jsonrpc::{self, code, View};
use crate::protocol::{self, ClientInit};
use crate::route::{acquire_code, mode_for};
use crate::session::{Endpoint, Mode, Session};

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
    let mode = mode_for(gw, &endpoint).map_err(|why| jsonrpc::error_response(id, code::METHOD_NOT_FOUND, &why))?;
    let max = gw.config().gateway.max_sessions;
    if gw.sessions.len() >= max {
        crate::metrics::cap_hit("max_sessions");
        return Err(jsonrpc::error_response(
            id,
            code::CAP_REACHED,
            &format!(
                "the gateway's max_sessions ({max}) is reached: end a session (DELETE) or wait for idle ones to end"
            ),
        ));
    }
    let session = gw
        .sessions
        .create(endpoint, mode.clone(), token_tag, client, version)
        .map_err(|e| jsonrpc::error_response(id, code::INTERNAL_ERROR, &format!("minting a session id: {e}")))?;
    // Until the answer is out: a failure, or the client going away, ends the session.
    let pending = Pending(Some((gw, &session)));
    let server = match &mode {
        Mode::One(server) => server.clone(),
        Mode::All => {
            session.watch_views(gw.views.sender());
            // Nothing is started for an aggregate's initialize: listing starts what it needs.
            let answer =
                jsonrpc::result_response(id, &crate::aggregate::initialize_result(version, &gw.pool.enabled()));
            tracing::info!(session = %session.key, version, "session opened on every server");
            pending.done();
            return Ok((session, answer));
        }
    };
    let lease = gw
        .pool
        .acquire(&server, &session)
        .await
        .map_err(|e| jsonrpc::error_response(id, acquire_code(&e), &e.to_string()))?;
    let Some(init) = lease.upstream.init() else {
        return Err(jsonrpc::error_response(
            id,
            code::SERVER_UNAVAILABLE,
            &format!("server {server:?} has not finished starting"),
        ));
    };
    let answer = jsonrpc::result_response(id, &init.result_for(version));
    tracing::info!(session = %session.key, server = %server, version, "session opened");
    pending.done();
    Ok((session, answer))
}

/// A session whose `initialize` is not answered yet: ended on drop unless [`Pending::done`].
struct Pending<'a>(Option<(&'a Gateway, &'a Arc<Session>)>);

impl Pending<'_> {
    fn done(mut self) {
        self.0 = None;
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some((gw, session)) = self.0.take() {
            gw.end_session(
                session,
                crate::cause::Cause::Abandoned,
                "its initialize did not complete",
            );
        }
    }
}
