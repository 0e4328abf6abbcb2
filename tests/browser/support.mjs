// What the browser tests share: a `strongbox serve` on a fresh data dir, its outbox, the test
// OpenID Connect provider, Debian's Chromium, and screenshots.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, statSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BINARY = process.env.TEST_STRONGBOX_BIN;
const ARTIFACTS = process.env.ARTIFACT_DIR ?? join(tmpdir(), "strongbox-screenshots");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts `strongbox serve` on a fresh data dir with `env` added to its environment, and
 * resolves once it prints its first-run setup link.
 */
export async function startStrongbox(env = {}) {
  assert.ok(BINARY, "TEST_STRONGBOX_BIN names the strongbox binary");
  const dataDir = join(mkdtempSync(join(tmpdir(), "strongbox-browser-")), "data");
  const port = await freePort();
  const base = `http://localhost:${port}`;
  // The server is configured by what this test gives it, not by what the runner had set.
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("STRONGBOX_")),
  );
  const child = spawn(BINARY, ["serve"], {
    env: {
      ...inherited,
      STRONGBOX_DATA_DIR: dataDir,
      STRONGBOX_LISTEN: `127.0.0.1:${port}`,
      STRONGBOX_PUBLIC_URL: base,
      STRONGBOX_LOG__FORMAT: "json",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const setupLink = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no setup link printed:\n${out}`)), 30_000);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const link = out.match(/http:\/\/localhost:\d+\/setup\?token=\S+/);
      if (link) {
        clearTimeout(timer);
        resolve(link[0]);
      }
    });
    child.stderr.on("data", (chunk) => (out += chunk));
    child.on("exit", (code) => reject(new Error(`server exited with ${code}:\n${out}`)));
  });
  return {
    base,
    setupLink,
    /** The newest link to `to` whose path is `path`, from the file outbox. */
    linkInOutbox(to, path) {
      const dir = join(dataDir, "outbox");
      const mails = readdirSync(dir)
        .map((name) => join(dir, name))
        .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs)
        .map((file) => readFileSync(file, "utf8").replaceAll("=\r\n", "").replaceAll("=3D", "="))
        .filter((mail) => mail.includes(`To: ${to}`));
      const pattern = new RegExp(`http://localhost:\\d+/${path}\\?token=[A-Za-z0-9_-]+`);
      for (const mail of mails.reverse()) {
        const found = mail.match(pattern);
        if (found) return found[0];
      }
      throw new Error(`no ${path} link for ${to}`);
    },
    stop() {
      child.kill("SIGTERM");
      rmSync(join(dataDir, ".."), { recursive: true, force: true });
    },
  };
}

/**
 * Starts the test OpenID Connect provider (tests/oidc_provider, Flask and Authlib) and
 * resolves once its discovery document answers.
 */
export async function startProvider(clientId, clientSecret) {
  const python = process.env.STRONGBOX_OIDC_PYTHON;
  assert.ok(python, "STRONGBOX_OIDC_PYTHON names a Python with tests/requirements.txt installed");
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const child = spawn(
    python,
    ["../oidc_provider/provider.py", "--port", `${port}`, "--client-id", clientId, "--client-secret", clientSecret],
    { stdio: "ignore" },
  );
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const response = await fetch(`${issuer}/.well-known/openid-configuration`);
      if (response.ok) break;
    } catch {
      // Not listening yet.
    }
    assert.ok(Date.now() < deadline, "the test provider did not start");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { issuer, stop: () => child.kill("SIGTERM") };
}

export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  assert.ok(statSync(file).size > 1000, `screenshot ${name} is not empty`);
}

/** Collects the page's Content-Security-Policy violations, as Chromium reports them. */
export function cspViolations(page) {
  const violations = [];
  page.on("console", (msg) => {
    if (/Content Security Policy/i.test(msg.text())) violations.push(msg.text());
  });
  return violations;
}
