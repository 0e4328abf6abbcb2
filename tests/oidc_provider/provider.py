"""A small OpenID Connect provider for the tests, built on Flask and Authlib's JOSE.

It does what a real provider does for the authorization code flow with PKCE: discovery,
a JWKS with an RSA key made at start, a sign-in page that asks who you are, single-use
codes bound to the client, redirect URI and S256 challenge, and RS256 ID tokens carrying
the request's nonce. A test can ask it, through /_test/next-token, to get the next ID token
wrong in one way (another audience, another nonce or none, an expired token, a broken
signature) to check that Strongbox refuses it.

    python provider.py --port PORT --client-id ID --client-secret SECRET
"""

import argparse
import base64
import hashlib
import html
import secrets
import time
from urllib.parse import unquote_plus, urlencode

from authlib.jose import JsonWebKey, jwt
from flask import Flask, abort, jsonify, request, redirect

app = Flask(__name__)
KEY = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "test-key-1"})
CODES = {}
NEXT_TOKEN = {}
ACCOUNTS = {
    "ada": {"sub": "ada-0001", "email": "ada@example.com", "email_verified": True},
    "bob": {"sub": "bob-0002", "email": "bob@example.com", "email_verified": False},
    "owner": {"sub": "owner-0003", "email": "owner@example.com", "email_verified": True},
    "cy": {"sub": "cy-0004", "email": "cy@example.com", "email_verified": True},
}


def issuer():
    return f"http://127.0.0.1:{app.config['PORT']}"


@app.get("/.well-known/openid-configuration")
def discovery():
    return jsonify(
        issuer=issuer(),
        authorization_endpoint=f"{issuer()}/authorize",
        token_endpoint=f"{issuer()}/token",
        jwks_uri=f"{issuer()}/jwks",
        response_types_supported=["code"],
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=["RS256"],
        code_challenge_methods_supported=["S256"],
    )


@app.get("/jwks")
def jwks():
    return jsonify(keys=[KEY.as_dict(is_private=False, alg="RS256", use="sig")])


@app.get("/authorize")
def authorize_form():
    args = request.args
    if args.get("client_id") != app.config["CLIENT_ID"] or args.get("response_type") != "code":
        abort(400)
    if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
        abort(400)
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in args.items()
    )
    return (
        "<!doctype html><title>Test provider</title><h1>Sign in to the test provider</h1>"
        f'<form method="post" action="/authorize">{hidden}'
        '<label>Account <select name="account">'
        + "".join(f"<option>{name}</option>" for name in ACCOUNTS)
        + '</select></label><button type="submit">Continue</button></form>'
    )


@app.post("/authorize")
def authorize():
    form = request.form
    account = ACCOUNTS.get(form.get("account", ""))
    if account is None or form.get("client_id") != app.config["CLIENT_ID"]:
        abort(400)
    code = secrets.token_urlsafe(32)
    CODES[code] = {
        "account": account,
        "redirect_uri": form["redirect_uri"],
        "challenge": form["code_challenge"],
        "nonce": form.get("nonce"),
        "expires": time.time() + 60,
    }
    query = urlencode({"code": code, "state": form.get("state", "")})
    return redirect(f"{form['redirect_uri']}?{query}")


def client_authenticated(form):
    auth = request.authorization
    if auth is not None:
        # RFC 6749 section 2.3.1: both are form-urlencoded before Basic encoding.
        return (
            unquote_plus(auth.username or "") == app.config["CLIENT_ID"]
            and unquote_plus(auth.password or "") == app.config["SECRET"]
        )
    return form.get("client_id") == app.config["CLIENT_ID"] and form.get(
        "client_secret"
    ) == app.config["SECRET"]


@app.post("/token")
def token():
    form = request.form
    if not client_authenticated(form):
        return jsonify(error="invalid_client"), 401
    grant = CODES.pop(form.get("code", ""), None)
    if grant is None or grant["expires"] < time.time():
        return jsonify(error="invalid_grant"), 400
    if form.get("redirect_uri") != grant["redirect_uri"]:
        return jsonify(error="invalid_grant"), 400
    verifier = form.get("code_verifier", "").encode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
    if challenge.decode() != grant["challenge"]:
        return jsonify(error="invalid_grant"), 400
    return jsonify(
        access_token=secrets.token_urlsafe(32),
        token_type="Bearer",
        expires_in=3600,
        id_token=id_token(grant),
    )


def id_token(grant):
    now = int(time.time())
    claims = {
        "iss": issuer(),
        "sub": grant["account"]["sub"],
        "aud": app.config["CLIENT_ID"],
        "iat": now,
        "exp": now + 600,
        "email": grant["account"]["email"],
        "email_verified": grant["account"]["email_verified"],
    }
    if grant["nonce"] is not None:
        claims["nonce"] = grant["nonce"]
    fault = NEXT_TOKEN.pop("fault", None)
    if fault == "audience":
        claims["aud"] = "another-client"
    elif fault == "nonce":
        claims["nonce"] = secrets.token_urlsafe(32)
    elif fault == "no-nonce":
        claims.pop("nonce", None)
    elif fault == "expired":
        claims["iat"], claims["exp"] = now - 7200, now - 3600
    header = {"alg": "RS256", "kid": KEY.as_dict()["kid"]}
    token = jwt.encode(header, claims, KEY).decode()
    if fault == "signature":
        head, payload, signature = token.split(".")
        raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
        raw[0] ^= 0x01
        token = ".".join([head, payload, base64.urlsafe_b64encode(raw).rstrip(b"=").decode()])
    return token


@app.post("/_test/next-token")
def next_token():
    fault = request.get_json(force=True).get("fault")
    if fault not in ("audience", "nonce", "no-nonce", "expired", "signature"):
        abort(400)
    NEXT_TOKEN["fault"] = fault
    return jsonify(ok=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    options = parser.parse_args()
    app.config.update(PORT=options.port, CLIENT_ID=options.client_id, SECRET=options.client_secret)
    app.run(host="127.0.0.1", port=options.port, threaded=True)
