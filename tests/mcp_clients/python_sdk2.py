"""The official MCP Python SDK 2.x as a real client of a running Strongbox on protocol
2026-07-28: the SDK probes server/discover, is refused for want of a token, runs the OAuth
flow (discovery from the 401, registration, PKCE, consent submitted as the signed-in person),
then uses every tool and the resources statelessly, and refreshes once the access token has
expired. With STRONGBOX_CLIENT_METADATA_URL set, the client names itself by that metadata
document's URL instead of registering.

Run by tests/mcp_clients.rs, which starts the server and passes, in the environment, its
URL, a signed-in session cookie and the workspace to grant. Prints one line per step and
exits 0 only if every check held."""

import asyncio
import os
import sys

from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import OAuthClientMetadata
from person import SERVER, MemoryStorage, allow, check_masked

STATELESS = "2026-07-28"
METADATA_URL = os.environ.get("STRONGBOX_CLIENT_METADATA_URL")

answer: dict[str, str | None] = {}


async def redirect_handler(url: str) -> None:
    answer.update(allow(url))


async def callback_handler() -> AuthorizationCodeResult:
    return AuthorizationCodeResult(code=answer["code"], state=answer["state"], iss=answer["iss"])


async def stateless_round(auth: OAuthClientProvider, every_tool: bool) -> None:
    async with create_mcp_http_client(auth=auth) as http:
        transport = streamable_http_client(f"{SERVER}/mcp", http_client=http)
        async with Client(transport, mode="auto") as client:
            assert client.protocol_version == STATELESS, client.protocol_version
            assert client.server_info is not None and client.server_info.name == "strongbox"
            print(f"connected: {client.protocol_version}", flush=True)
            tools = sorted(t.name for t in (await client.list_tools()).tools)
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
                result = await client.call_tool(name, arguments)
                assert not result.is_error, f"{name}: {result.content}"
                text = "".join(getattr(c, "text", "") for c in result.content)
                check_masked(text)
                print(f"{name}: ok", flush=True)
            record = await client.call_tool("get_record", {"collection": "customers", "id": "c1"})
            data = record.structured_content["data"]
            assert data["email"] == "[EMAIL_1]" and data["note"].startswith("Client A"), data
            resources = (await client.list_resources()).resources
            assert [str(r.uri) for r in resources] == ["strongbox://collections/customers"], resources
            read = await client.read_resource("strongbox://collections/customers")
            check_masked(read.model_dump_json())
            print("resources: ok", flush=True)


async def main() -> int:
    storage = MemoryStorage()
    auth = OAuthClientProvider(
        server_url=f"{SERVER}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="mcp-python-sdk-2",
            redirect_uris=["http://127.0.0.1:3030/callback"],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            scope="mcp:read offline_access",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        client_metadata_url=METADATA_URL,
    )
    await stateless_round(auth, every_tool=True)
    print(f"client_id: {storage.client.client_id}", flush=True)
    first = storage.tokens.access_token
    # The test moves the server's clock past the access token's hour, then says so.
    print("waiting for expiry", flush=True)
    sys.stdin.readline()
    # The SDK judges expiry by its own clock, which the test cannot move; it is told the
    # hour is up, as it would see an hour later.
    auth.context.token_expiry_time = 1.0
    answer.clear()
    await stateless_round(auth, every_tool=False)
    assert storage.tokens.access_token != first, "the token was refreshed"
    assert not answer, "refreshed without asking the person again"
    print("refreshed: ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
