#!/usr/bin/env python3
"""A real MCP server of protocol revision 2026-07-28 (the official `mcp` Python SDK's MCPServer,
which also speaks the session-based revisions to clients that initialize), over streamable HTTP,
for mcp-tether's tests of servers that speak 2026-07-28 behind the gateway.

Usage:
    python mcp_modern_server.py PORT      (streamable HTTP on 127.0.0.1:PORT)
    python mcp_modern_server.py --stdio   (stdio: the first request decides the revision)

Tools: `echo` (text), `add` (a, b), `greet` (asks the user's name by elicitation first: an
InputRequiredResult in 2026-07-28), `slow` (progress and logs, then "done"), `change` (announces a
tool list change and an update of the resource `test://r1`).
"""

from __future__ import annotations

import sys
from typing import Annotated

import uvicorn
from pydantic import BaseModel
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve

server = MCPServer("tether-modern-test", version="1.0.0", instructions="a 2026-07-28 server for tether's tests")


class Name(BaseModel):
    name: str


def ask_name() -> Elicit[Name]:
    return Elicit("What is your name?", Name)


@server.tool()
async def echo(text: str) -> str:
    """Returns its text."""
    return text


@server.tool()
async def add(a: int, b: int) -> int:
    """Adds two numbers."""
    return a + b


@server.tool()
async def greet(who: Annotated[Name, Resolve(ask_name)]) -> str:
    """Asks the user's name, then greets them."""
    return f"hello {who.name}"


@server.tool()
async def slow(ctx: Context) -> str:
    """Reports progress and logs, then answers."""
    await ctx.report_progress(0.5, 1.0, "half")
    await ctx.info("an info log")
    return "done"


@server.tool()
async def change(ctx: Context) -> str:
    """Announces that the tool list changed and that test://r1 was updated."""
    await ctx.notify_tools_changed()
    await ctx.notify_resource_updated("test://r1")
    return "changed"


@server.resource("test://r1")
def r1() -> str:
    """A resource that `change` says was updated."""
    return "r1 content"


if __name__ == "__main__":
    if sys.argv[1] == "--stdio":
        server.run("stdio")
    else:
        uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
