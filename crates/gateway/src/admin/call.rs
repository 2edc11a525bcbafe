//! Which admin call a request is, from its method and path alone: kept apart from the answers
//! ([`super::routes`]), which need a running gateway, so that the dispatch can be tested and
//! fuzzed on its own.

use hyper::Method;

/// An admin call, named by its method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call<'a> {
    /// `GET /metrics`.
    Metrics,
    /// `GET /v1/gateway`.
    Gateway,
    /// `GET /v1/sessions`.
    Sessions,
    /// `GET /v1/instances`.
    Instances,
    /// `POST /v1/reload`.
    Reload,
    /// `POST /v1/sweep`.
    Sweep,
    /// `GET /v1/teardowns`.
    Teardowns,
    /// `DELETE /v1/scopes/{id}`, with the id as written (possibly empty).
    EndScope(&'a str),
    /// A known path with a method it does not take: 405.
    NotAllowed,
    /// No such call: 404.
    NotFound,
}

/// The call `method` on `path` (trailing slashes ignored) asks for.
pub fn call<'a>(method: &Method, path: &'a str) -> Call<'a> {
    let path = path.trim_end_matches('/');
    match (method, path) {
        (&Method::GET, "/metrics") => Call::Metrics,
        (&Method::GET, "/v1/gateway") => Call::Gateway,
        (&Method::GET, "/v1/sessions") => Call::Sessions,
        (&Method::GET, "/v1/instances") => Call::Instances,
        (&Method::POST, "/v1/reload") => Call::Reload,
        (&Method::POST, "/v1/sweep") => Call::Sweep,
        (&Method::GET, "/v1/teardowns") => Call::Teardowns,
        (&Method::DELETE, p) => match p.strip_prefix("/v1/scopes/") {
            Some(id) => Call::EndScope(id),
            None => not_allowed_or_found(p),
        },
        (_, p) => not_allowed_or_found(p),
    }
}

fn not_allowed_or_found(path: &str) -> Call<'static> {
    match path {
        "/v1/gateway" | "/v1/sessions" | "/v1/instances" | "/v1/reload" | "/v1/sweep" | "/v1/teardowns" => {
            Call::NotAllowed
        }
        _ => Call::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls() {
        assert_eq!(call(&Method::GET, "/metrics/"), Call::Metrics);
        assert_eq!(call(&Method::GET, "/v1/gateway"), Call::Gateway);
        assert_eq!(call(&Method::GET, "/v1/sessions"), Call::Sessions);
        assert_eq!(call(&Method::GET, "/v1/instances//"), Call::Instances);
        assert_eq!(call(&Method::POST, "/v1/reload"), Call::Reload);
        assert_eq!(call(&Method::POST, "/v1/sweep"), Call::Sweep);
        assert_eq!(call(&Method::GET, "/v1/teardowns"), Call::Teardowns);
        assert_eq!(call(&Method::DELETE, "/v1/scopes/ab12/"), Call::EndScope("ab12"));
        assert_eq!(call(&Method::DELETE, "/v1/scopes/"), Call::NotFound);
        assert_eq!(call(&Method::POST, "/v1/gateway"), Call::NotAllowed);
        assert_eq!(call(&Method::DELETE, "/v1/sweep"), Call::NotAllowed);
        assert_eq!(call(&Method::POST, "/metrics"), Call::NotFound);
        assert_eq!(call(&Method::GET, "/v2/gateway"), Call::NotFound);
        assert_eq!(call(&Method::GET, ""), Call::NotFound);
    }
}
