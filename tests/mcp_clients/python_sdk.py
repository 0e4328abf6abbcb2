"""The official MCP Python SDK as a real client of a running Strongbox: discovery from the
401, dynamic registration, PKCE, consent submitted as the signed-in person, tokens, then
initialize, tools/list, every tool, and a refresh once the access token has expired.

Run by tests/mcp_clients.rs, which starts the server and passes, in the environment, its URL, a
signed-in session cookie and the workspace to grant. Prints one line per step and exits 0
only if every check held."""

import asyncio
import sys

from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.auth import OAuthClientMetadata
from person import SERVER, MemoryStorage, allow, check_masked

answer: dict[str, str | None] = {}


async def redirect_handler(url: str) -> None:
    answer.update(allow(url))


async def callback_handler() -> tuple[str, str | None]:
    return answer["code"], answer["state"]


async def session_round(auth: OAuthClientProvider, every_tool: bool) -> None:
    async with streamablehttp_client(f"{SERVER}/mcp", auth=auth) as (read, write, _):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            print(f"initialized: {init.protocolVersion}", flush=True)
            tools = sorted(t.name for t in (await session.list_tools()).tools)
            assert tools == ["aggregate", "get_record", "list_collections", "query", "search"], tools
            if not every_tool:
                return
            calls = [
                ("list_collections", {}),
                ("search", {"query": "Client A"}),
                ("get_record", {"collection": "customers", "id": "c1"}),
                ("query", {"collection": "customers", "filters": [{"field": "name", "op": "eq", "value": "Ada"}]}),
                ("aggregate", {"collection": "customers", "function": "count", "group_by": "name"}),
            ]
            for name, arguments in calls:
                result = await session.call_tool(name, arguments)
                assert not result.isError, f"{name}: {result.content}"
                text = "".join(getattr(c, "text", "") for c in result.content)
                check_masked(text)
                print(f"{name}: ok", flush=True)
            record = await session.call_tool("get_record", {"collection": "customers", "id": "c1"})
            data = record.structuredContent["data"]
            assert data["email"] == "[EMAIL_1]" and data["note"].startswith("Client A"), data


async def main() -> int:
    storage = MemoryStorage()
    auth = OAuthClientProvider(
        server_url=f"{SERVER}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="mcp-python-sdk",
            redirect_uris=["http://127.0.0.1:3030/callback"],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            scope="mcp:read offline_access",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    await session_round(auth, every_tool=True)
    first = storage.tokens.access_token
    # The test moves the server's clock past the access token's hour, then says so.
    print("waiting for expiry", flush=True)
    sys.stdin.readline()
    # The SDK judges expiry by its own clock, which the test cannot move; it is told the
    # hour is up, as it would see an hour later.
    auth.context.token_expiry_time = 1.0
    answer.clear()
    await session_round(auth, every_tool=False)
    assert storage.tokens.access_token != first, "the token was refreshed"
    assert not answer, "refreshed without asking the person again"
    print("refreshed: ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
