#!/usr/bin/env python3
"""A real MCP client over streamable HTTP (the official `mcp` Python SDK) for mcp-tether's tests.

Usage:
    python mcp_http_client.py URL [--tool NAME] [--args JSON] [--timeout SECONDS]

Connects to URL, lists the tools, calls one (default: `echo` with {"message": "hello from
tether"}), closes (the SDK sends DELETE), and prints exactly ONE JSON line to stdout:

    {"server": "<serverInfo.name>", "tools": ["..."], "result": "<text content>", "is_error": false}

Exit status: 0 on success; 1 on any failure (error on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys

import anyio
from mcp import Client


async def run(url: str, tool: str, args: dict) -> dict:
    async with Client(url) as client:
        tools = await client.list_tools()
        result = await client.call_tool(tool, args)
        texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
        return {
            "server": client.server_info.name if client.server_info else None,
            "tools": [t.name for t in tools.tools],
            "result": "\n".join(texts),
            "is_error": bool(result.is_error),
        }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--tool", default="echo")
    p.add_argument("--args", default='{"message": "hello from tether"}')
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args()

    async def bounded() -> dict:
        with anyio.fail_after(a.timeout):
            return await run(a.url, a.tool, json.loads(a.args))

    try:
        out = anyio.run(bounded)
    except BaseException as e:  # noqa: BLE001 - report whatever went wrong, in one line
        print(f"mcp_http_client: error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
