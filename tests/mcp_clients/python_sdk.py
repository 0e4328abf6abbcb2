"""The official MCP Python SDK as a real client of a running Strongbox: discovery from the
401, dynamic registration, PKCE, consent submitted as the signed-in person, tokens, then
initialize, tools/list, every tool, and a refresh once the access token has expired.

Run by tests/mcp.rs, which starts the server and passes, in the environment, its URL, a
signed-in session cookie and the workspace to grant. Prints one line per step and exits 0
only if every check held."""

import asyncio
import os
import re
import sys
import urllib.parse

import httpx
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

SERVER = os.environ["STRONGBOX_URL"]
COOKIE = os.environ["STRONGBOX_SESSION_COOKIE"]
WORKSPACE = os.environ["STRONGBOX_WORKSPACE"]
RAW = ["ada@example.com", "4111 1111 1111 1111", "Acme Corp"]


class MemoryStorage(TokenStorage):
    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info):
        self.client = client_info


answer: dict[str, str | None] = {}


async def redirect_handler(url: str) -> None:
    """Plays the person: opens the consent page with their session and allows it."""
    async with httpx.AsyncClient(follow_redirects=False, headers={"Cookie": COOKIE}) as web:
        page = await web.get(url)
        assert page.status_code == 200, f"consent page: {page.status_code}"
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        fields = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        fields.update(csrf=csrf, workspace=WORKSPACE, decision="approve")
        done = await web.post(f"{SERVER}/oauth/authorize", data=fields, headers={"Origin": SERVER})
        assert done.status_code == 303, f"consent: {done.status_code}"
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(done.headers["location"]).query))
        assert query.get("iss") == SERVER, "RFC 9207 iss"
        answer["code"], answer["state"] = query["code"], query.get("state")
        print("consent given", flush=True)


async def callback_handler() -> tuple[str, str | None]:
    return answer["code"], answer["state"]


def check_masked(text: str) -> None:
    for raw in RAW:
        assert raw not in text, f"{raw!r} reached the client"


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
