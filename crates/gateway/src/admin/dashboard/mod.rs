//! The dashboard: one page, its stylesheet and its script, embedded in the binary (no CDN, no
//! build step). The script polls the admin API every second (`/v1/sessions`,
//! `/v1/instances`, `/v1/teardowns`, with the login cookie) and draws sessions, their
//! instances and process trees, the instances no session holds, the recent teardowns and a
//! chart of processes and sessions; each session and instance has an End button
//! (`DELETE /v1/scopes/{id}`, after a second click). It shows only what the API answers:
//! commands (from the configuration), never environment values.

/// The page.
pub const INDEX: &str = include_str!("index.html");
/// Its stylesheet.
pub const STYLE: &str = include_str!("dashboard.css");
/// Its script.
pub const SCRIPT: &str = include_str!("dashboard.js");
/// The page a browser gets without the token (401), `{why}` replaced by why.
pub const LOGIN: &str = include_str!("login.html");

/// What the pages may load: their own script and stylesheet, and calls to their own origin;
/// no inline script, no frames (the End buttons cannot be clickjacked).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The content type and body of the dashboard's file at `path`, if it is one.
pub fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    match path {
        "/" | "/index.html" => Some(("text/html; charset=utf-8", INDEX)),
        "/dashboard.css" => Some(("text/css; charset=utf-8", STYLE)),
        "/dashboard.js" => Some(("text/javascript; charset=utf-8", SCRIPT)),
        _ => None,
    }
}
