#!/usr/bin/env python3
"""A real MCP client (the official `mcp` Python SDK) for mcp-tether's tests.

Usage:
    python mcp_client.py CONFIG_JSON_FILE SERVER_NAME [--tool NAME] [--args JSON]
                         [--timeout SECONDS]

CONFIG_JSON_FILE is a Claude Desktop style config:

    {"mcpServers": {"<name>": {"command": "...", "args": [...], "env": {...}}}}

(`args`, `env` and `cwd` are optional; `env` is merged over the current
environment, so PATH etc. survive.)

The client starts the server over stdio, initializes, lists the tools, calls
one tool (default: `echo` with {"message": "hello from tether"}) and prints
exactly ONE JSON line to stdout:

    {"server": "<serverInfo.name>", "tools": ["..."], "result": "<text content>"}

Leaving the SDK's context managers closes the session, which closes the
server's stdin (the SDK then waits, and escalates to SIGTERM/SIGKILL of the
process group only if the server does not exit on its own).

Exit status: 0 on success; 1 on any failure (error on stderr); 2 on usage
errors. The whole run is bounded by --timeout (default 60 s), with a hard
backstop so the process can never hang.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any

DEFAULT_TOOL = "echo"
DEFAULT_ARGS = {"message": "hello from tether"}


def fail(msg: str, code: int = 1) -> None:
    print(f"mcp_client: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def load_server(config_path: str, name: str) -> dict[str, Any]:
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"cannot read config {config_path!r}: {e}", 2)
    servers = config.get("mcpServers") if isinstance(config, dict) else None
    if not isinstance(servers, dict):
        fail(f"config {config_path!r} has no \"mcpServers\" object", 2)
    entry = servers.get(name)
    if not isinstance(entry, dict):
        fail(f"server {name!r} not found in {config_path!r} (have: {sorted(servers)})", 2)
    if not isinstance(entry.get("command"), str) or not entry["command"]:
        fail(f"server {name!r}: \"command\" must be a non-empty string", 2)
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        fail(f"server {name!r}: \"args\" must be a list of strings", 2)
    env = entry.get("env") or {}
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        fail(f"server {name!r}: \"env\" must be an object of strings", 2)
    return {"command": entry["command"], "args": args, "env": env, "cwd": entry.get("cwd")}


def _attr(obj: Any, *names: str) -> Any:
    """Field access that works across SDK versions (snake_case v2, camelCase v1)."""
    for n in names:
        if hasattr(obj, n):
            return getattr(obj, n)
    return None


def _flatten(exc: BaseException) -> list[BaseException]:
    """Unwraps (nested) exception groups raised by anyio task groups."""
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, (list, tuple)) and inner:
        out: list[BaseException] = []
        for e in inner:
            out.extend(_flatten(e))
        return out
    return [exc]


async def run(server: dict[str, Any], tool: str, tool_args: dict[str, Any], timeout: float) -> dict:
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=server["command"],
        args=server["args"],
        env={**os.environ, **server["env"]},
        cwd=server["cwd"],
    )
    with anyio.fail_after(timeout):
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                info = _attr(init, "server_info", "serverInfo")
                server_name = _attr(info, "name")

                tools: list[str] = []
                cursor = None
                while True:
                    if cursor is None:
                        listing = await session.list_tools()
                    else:
                        from mcp.types import PaginatedRequestParams

                        listing = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
                    tools.extend(t.name for t in listing.tools)
                    cursor = _attr(listing, "next_cursor", "nextCursor")
                    if not cursor:
                        break

                if tool not in tools:
                    raise RuntimeError(f"server does not offer tool {tool!r} (tools: {tools})")
                result = await session.call_tool(tool, tool_args)
                texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
                text = "\n".join(texts)
                if _attr(result, "is_error", "isError"):
                    raise RuntimeError(f"tool {tool!r} returned an error: {text}")
    return {"server": server_name, "tools": tools, "result": text}


def main() -> None:
    p = argparse.ArgumentParser(description="Real MCP stdio client (official mcp SDK) for tests.")
    p.add_argument("config", help="Claude Desktop style JSON config file")
    p.add_argument("server", help="server name under mcpServers")
    p.add_argument("--tool", default=DEFAULT_TOOL, help=f"tool to call (default: {DEFAULT_TOOL})")
    p.add_argument("--args", dest="tool_args", default=None, help="tool arguments as a JSON object")
    p.add_argument("--timeout", type=float, default=60.0, help="overall timeout in seconds (default 60)")
    ns = p.parse_args()

    if ns.tool_args is None:
        tool_args = DEFAULT_ARGS if ns.tool == DEFAULT_TOOL else {}
    else:
        try:
            tool_args = json.loads(ns.tool_args)
        except ValueError as e:
            fail(f"--args is not valid JSON: {e}", 2)
        if not isinstance(tool_args, dict):
            fail("--args must be a JSON object", 2)

    server = load_server(ns.config, ns.server)

    # Hard backstop in case something blocks outside the event loop's control:
    # the SDK's shutdown may need a few more seconds (stdin close, SIGTERM, SIGKILL).
    def _alarm(_sig: int, _frame: Any) -> None:
        print(f"mcp_client: error: hard timeout ({ns.timeout:.0f}s + grace) exceeded", file=sys.stderr, flush=True)
        os._exit(124)

    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(int(ns.timeout) + 15)

    try:
        import anyio

        out = anyio.run(run, server, ns.tool, tool_args, ns.timeout)
    except ImportError as e:
        fail(f"the `mcp` SDK is not installed in this Python ({sys.executable}): {e}")
    except BaseException as e:  # noqa: BLE001 - report everything, including groups
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        errs = _flatten(e)
        if any(isinstance(x, TimeoutError) for x in errs):
            fail(f"timed out after {ns.timeout:g}s talking to server {ns.server!r}")
        fail("; ".join(f"{type(x).__name__}: {x}" for x in errs))
    finally:
        signal.alarm(0)

    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
