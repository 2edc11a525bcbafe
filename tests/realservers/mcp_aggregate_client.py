#!/usr/bin/env python3
"""A real MCP client (the official `mcp` Python SDK) for mcp-tether's aggregation tests.

Usage:
    python mcp_aggregate_client.py (--url URL | --stdio COMMAND [ARG...]) --calls JSON

Connects over streamable HTTP to URL, or starts COMMAND as a stdio server; answers sampling
(with "sampled: <the prompt's text>") and elicitation (accepting, with a value for every field
of the requested schema) whenever a server asks during a call; lists the tools and prompts;
makes each call of JSON (a list of {"tool": NAME, "args": {...}}); closes; and prints exactly
ONE JSON line to stdout:

    {"tools": [...], "prompts": [...], "results": [{"tool": ..., "text": ..., "is_error": ...}],
     "sampled": [<prompt texts>], "elicited": [<messages>]}

Exit status: 0 on success; 1 on any failure (error on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys

import anyio
import mcp.types as types
from mcp import Client, StdioServerParameters


def answer_for(schema: dict) -> dict:
    """A value for every property of an elicitation's requested schema."""
    content = {}
    for name, prop in (schema.get("properties") or {}).items():
        if prop.get("enum"):
            content[name] = prop["enum"][0]
        elif prop.get("oneOf"):
            content[name] = prop["oneOf"][0].get("const")
        elif prop.get("type") == "boolean":
            content[name] = True
        elif prop.get("type") in ("number", "integer"):
            content[name] = prop.get("minimum", 1)
        elif prop.get("type") == "array":
            items = (prop.get("items") or {}).get("enum") or ["x"]
            content[name] = items[:1]
        else:
            content[name] = "tether"
    return content


async def run(target, calls: list) -> dict:
    sampled: list = []
    elicited: list = []

    async def sampling(context, params: types.CreateMessageRequestParams):
        texts = [getattr(m.content, "text", "") for m in params.messages]
        prompt = " ".join(t for t in texts if t)
        sampled.append(prompt)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=f"sampled: {prompt}"),
            model="tether-test",
            stopReason="endTurn",
        )

    async def elicitation(context, params):
        elicited.append(getattr(params, "message", ""))
        schema = getattr(params, "requested_schema", None) or getattr(params, "requestedSchema", None) or {}
        if hasattr(schema, "model_dump"):
            schema = schema.model_dump(by_alias=True)
        return types.ElicitResult(action="accept", content=answer_for(schema))

    async with Client(target, sampling_callback=sampling, elicitation_callback=elicitation) as client:
        tools = await client.list_tools()
        prompts = await client.list_prompts()
        results = []
        for call in calls:
            r = await client.call_tool(call["tool"], call.get("args", {}))
            texts = [c.text for c in r.content if getattr(c, "type", None) == "text"]
            results.append({"tool": call["tool"], "text": "\n".join(texts), "is_error": bool(r.is_error)})
        return {
            "tools": [t.name for t in tools.tools],
            "prompts": [p.name for p in prompts.prompts],
            "results": results,
            "sampled": sampled,
            "elicited": elicited,
        }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url")
    p.add_argument("--stdio", nargs=argparse.REMAINDER)
    p.add_argument("--calls", default="[]")
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args()
    if a.stdio:
        target = StdioServerParameters(command=a.stdio[0], args=a.stdio[1:])
    elif a.url:
        target = a.url
    else:
        p.error("--url or --stdio")

    async def bounded() -> dict:
        with anyio.fail_after(a.timeout):
            return await run(target, json.loads(a.calls))

    try:
        out = anyio.run(bounded)
    except BaseException as e:  # noqa: BLE001 - report whatever went wrong, in one line
        print(f"mcp_aggregate_client: error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
