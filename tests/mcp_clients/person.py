"""What the SDK client scripts share: the person at the browser, who opens the consent page
with their signed-in session and allows it, and token storage in memory. Plain standard
library, so the scripts of either SDK version can use it."""

import os
import re
import urllib.error
import urllib.parse
import urllib.request

SERVER = os.environ["STRONGBOX_URL"]
COOKIE = os.environ["STRONGBOX_SESSION_COOKIE"]
WORKSPACE = os.environ["STRONGBOX_WORKSPACE"]


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def allow(url: str) -> dict[str, str | None]:
    """Opens the consent page at `url` as the signed-in person, allows it for the workspace,
    and returns the query the server sent the browser back with (code, state, iss)."""
    opener = urllib.request.build_opener(NoRedirects)
    page = opener.open(urllib.request.Request(url, headers={"Cookie": COOKIE}))
    assert page.status == 200, f"consent page: {page.status}"
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.read().decode()).group(1)
    fields = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    fields.update(csrf=csrf, workspace=WORKSPACE, decision="approve")
    request = urllib.request.Request(
        f"{SERVER}/oauth/authorize",
        data=urllib.parse.urlencode(fields).encode(),
        headers={"Cookie": COOKIE, "Origin": SERVER},
    )
    try:
        opener.open(request)
        raise AssertionError("consent: no redirect")
    except urllib.error.HTTPError as answer:
        assert answer.code == 303, f"consent: {answer.code}"
        location = answer.headers["location"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert query.get("iss") == SERVER, "RFC 9207 iss"
    print("consent given", flush=True)
    return {"code": query["code"], "state": query.get("state"), "iss": query.get("iss")}


class MemoryStorage:
    """The SDK's token storage, in memory."""

    def __init__(self):
        self.tokens = None
        self.client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info):
        self.client = client_info


def check_masked(text: str) -> None:
    for raw in ["ada@example.com", "4111 1111 1111 1111", "Acme Corp"]:
        assert raw not in text, f"{raw!r} reached the client"
