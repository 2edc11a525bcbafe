//! `tether sessions`, `tether kill`, `tether reload` and `tether teardowns`: a running gateway
//! asked through its admin API (`admin.sock` in the state directory; the calls are documented
//! in the gateway's `admin` module), through [`super::admin_client`].

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;
use tether_supervisor::ids::short;

use super::admin_client::ask;

/// `tether sessions`.
#[derive(Debug, clap::Args)]
pub struct SessionsArgs {
    /// Print the gateway's JSON (sessions and instances) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `tether kill`.
#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// A session (its id or key) or an instance (its id, or the start of it) to end.
    #[arg(value_name = "SESSION|INSTANCE")]
    pub id: String,
    /// Print the gateway's JSON answer.
    #[arg(long)]
    pub json: bool,
}

/// `tether teardowns`.
#[derive(Debug, clap::Args)]
pub struct TeardownsArgs {
    /// Print the gateway's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `tether reload`.
#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    /// Print the gateway's JSON answer.
    #[arg(long)]
    pub json: bool,
}

/// Prints `value` as JSON, or `text(value)`; an error answer goes to stderr with status 1.
pub(super) fn answer(asked: Result<(u16, Value), String>, json: bool, text: impl Fn(&Value) -> String) -> ExitCode {
    match asked {
        Ok((200, v)) => {
            if json {
                println!("{v:#}");
            } else {
                print!("{}", text(&v));
            }
            ExitCode::SUCCESS
        }
        Ok((_, v)) => {
            eprintln!("tether: {}", v["error"].as_str().unwrap_or("the gateway refused"));
            ExitCode::from(1)
        }
        Err(why) => {
            eprintln!("tether: {why}");
            ExitCode::from(1)
        }
    }
}

/// Runs `tether sessions`.
pub fn sessions(args: &SessionsArgs, state_dir: Option<&Path>) -> ExitCode {
    let both = ask(state_dir, "GET", "/v1/sessions").and_then(|(status, sessions)| {
        let (_, instances) = ask(state_dir, "GET", "/v1/instances")?;
        Ok((
            status,
            serde_json::json!({"sessions": sessions, "instances": instances}),
        ))
    });
    answer(both, args.json, sessions_text)
}

/// Sessions, each with its instances; then the instances no session holds.
fn sessions_text(v: &Value) -> String {
    let none = Vec::new();
    let sessions = v["sessions"].as_array().unwrap_or(&none);
    let instances = v["instances"].as_array().unwrap_or(&none);
    let line = |i: &Value| {
        format!(
            "  instance {}  {} ({}), {}, shim pid {}, {} process(es), idle {} ms\n",
            short(i["id"].as_str().unwrap_or("?")),
            i["server"].as_str().unwrap_or("?"),
            i["lifetime"].as_str().unwrap_or("?"),
            i["state"].as_str().unwrap_or("?"),
            i["shim_pid"],
            i["processes"],
            i["idle_ms"]
        )
    };
    let mut out = format!("{} session(s), {} instance(s)\n", sessions.len(), instances.len());
    for s in sessions {
        out += &format!(
            "session {}  {}  {} {}  protocol {}  idle {} ms\n",
            s["key"].as_str().unwrap_or("?"),
            s["endpoint"].as_str().unwrap_or("?"),
            s["client"]["name"].as_str().unwrap_or("?"),
            s["client"]["version"].as_str().unwrap_or(""),
            s["protocol"].as_str().unwrap_or("?"),
            s["idle_ms"]
        );
        for i in instances.iter().filter(|i| i["session"] == s["key"]) {
            out += &line(i);
        }
    }
    let unheld: Vec<&Value> = instances.iter().filter(|i| i["session"].is_null()).collect();
    if !unheld.is_empty() {
        out += "held by no session (shared, request):\n";
        for i in unheld {
            out += &line(i);
        }
    }
    out
}

/// Runs `tether kill`.
pub fn kill(args: &KillArgs, state_dir: Option<&Path>) -> ExitCode {
    // The id goes in the path: only the characters ids and keys are made of pass.
    if args.id.is_empty() || !args.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        eprintln!("tether: {:?} is not a session or instance id", args.id);
        return ExitCode::from(1);
    }
    let asked = ask(state_dir, "DELETE", &format!("/v1/scopes/{}", args.id));
    answer(asked, args.json, |v| match v["ended"].as_str() {
        Some("session") => format!(
            "ended session {} and its {} instance(s)\n",
            v["key"].as_str().unwrap_or("?"),
            v["instances"].as_array().map_or(0, Vec::len)
        ),
        _ => format!(
            "ended instance {} of {}\n",
            short(v["id"].as_str().unwrap_or("?")),
            v["server"].as_str().unwrap_or("?")
        ),
    })
}

/// Runs `tether reload`.
pub fn reload(args: &ReloadArgs, state_dir: Option<&Path>) -> ExitCode {
    let asked = ask(state_dir, "POST", "/v1/reload");
    let applied = matches!(&asked, Ok((200, v)) if v["applied"] == true);
    let status = answer(asked, args.json, |v| {
        if v["applied"] == true {
            "reloaded: the configuration in force is the file's\n".to_string()
        } else {
            "not reloaded: the configuration did not validate or did not change (the gateway's log says which)\n"
                .to_string()
        }
    });
    if applied || status != ExitCode::SUCCESS {
        status
    } else {
        ExitCode::from(1)
    }
}

/// Runs `tether teardowns`.
pub fn teardowns(args: &TeardownsArgs, state_dir: Option<&Path>) -> ExitCode {
    answer(ask(state_dir, "GET", "/v1/teardowns"), args.json, |v| {
        let none = Vec::new();
        let list = v.as_array().unwrap_or(&none);
        let mut out = format!("{} recent teardown(s), newest first\n", list.len());
        for t in list {
            out += &format!(
                "{}  instance {} of {}: {} ms, {}; {}\n",
                t["ended_at"].as_str().unwrap_or("?"),
                t["instance"].as_str().unwrap_or("?"),
                t["server"].as_str().unwrap_or("?"),
                t["teardown_ms"],
                t["status"].as_str().unwrap_or("?"),
                t["reason"].as_str().unwrap_or("it ended by itself")
            );
        }
        out
    })
}
