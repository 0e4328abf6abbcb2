// The browser user's journey, in Debian's Chromium driven by playwright-core, against the
// real `strongbox` binary on a fresh data dir:
// first-run setup -> verify via the outbox -> sign in -> enrol TOTP -> sign out ->
// sign in with TOTP -> create a workspace -> invite a second person who accepts ->
// the viewer cannot change roles -> masking rules with the live preview -> a pairing code.
// Screenshots of the main pages go to ARTIFACT_DIR.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { cspViolations, launchChromium, screenshot, startStrongbox } from "./support.mjs";

const OWNER = { email: "owner@example.com", password: "a long and unusual owner passphrase" };
const VIEWER = { email: "viewer@example.com", password: "the viewer's own long passphrase" };

let strongbox;
let base;
let browser;

const linkInOutbox = (to, path) => strongbox.linkInOutbox(to, path);

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) for a base32 secret, at a given step offset. */
function totp(base32, stepOffset = 0) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of base32.replace(/=+$/, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const step = Math.floor(Date.now() / 1000 / 30) + stepOffset;
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 15;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return value.toString().padStart(6, "0");
}

async function signIn(page, who) {
  await page.goto(`${base}/sign-in`);
  await page.fill("input[name=email]", who.email);
  await page.fill("input[name=password]", who.password);
  await page.click("main button[type=submit]");
}

async function signOut(page) {
  await page.click("header form[action='/sign-out'] button");
  await page.waitForURL(`${base}/sign-in`);
}

before(async () => {
  strongbox = await startStrongbox();
  base = strongbox.base;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  strongbox?.stop();
});

test("a person's whole journey through the dashboard", async () => {
  const owner = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  const violations = cspViolations(owner);

  // First-run setup creates the owner and signs them in.
  await owner.goto(strongbox.setupLink);
  await screenshot(owner, "01-setup");
  await owner.fill("input[name=email]", OWNER.email);
  await owner.fill("input[name=password]", OWNER.password);
  await owner.click("main button[type=submit]");
  await owner.waitForURL(`${base}/`);

  // Verify the address from the outbox.
  await owner.goto(linkInOutbox(OWNER.email, "verify"));
  await owner.click("main button[type=submit]");
  await owner.getByText("Your email address is verified.").waitFor();

  // Sign out and back in with the password.
  await signOut(owner);
  await screenshot(owner, "02-sign-in");
  await signIn(owner, OWNER);
  await owner.waitForURL(`${base}/`);

  // Enrol TOTP, with the code computed here from the key shown on the page.
  await owner.goto(`${base}/account/mfa`);
  await owner.click("text=Set up two-factor authentication");
  await owner.locator(".qr svg").waitFor();
  await screenshot(owner, "03-mfa-enrol");
  const secret = (await owner.locator("code.secret").innerText()).trim();
  await owner.fill("input[name=code]", totp(secret));
  await owner.click("main button[type=submit]");
  await owner.getByText("Your backup codes").waitFor();
  assert.equal(await owner.locator("ol.codes li").count(), 10);
  await screenshot(owner, "04-backup-codes");

  // Sign out; signing in now asks for the second factor. The next step's code is used:
  // the one from enrolment cannot be replayed.
  await signOut(owner);
  await signIn(owner, OWNER);
  await owner.waitForURL(`${base}/sign-in/second-factor`);
  await screenshot(owner, "05-second-factor");
  await owner.fill("input[name=code]", totp(secret, 1));
  await owner.click("main button[type=submit]");
  await owner.waitForURL(`${base}/`);

  // Create a workspace.
  await owner.fill("input[name=name]", "Acme Books");
  await owner.click("form[action='/workspaces'] button");
  await owner.getByRole("heading", { name: "Acme Books" }).waitFor();
  const workspaceUrl = owner.url();
  await screenshot(owner, "06-workspace");

  // Invite a second person as a viewer; they accept in their own browser.
  await owner.goto(`${workspaceUrl}/members`);
  await owner.fill("form[action$='/invites'] input[name=email]", VIEWER.email);
  await owner.selectOption("form[action$='/invites'] select[name=role]", "viewer");
  await owner.click("form[action$='/invites'] button");
  await owner.waitForURL(`${workspaceUrl}/members`);
  await screenshot(owner, "07-members");

  const viewer = await (await browser.newContext()).newPage();
  await viewer.goto(linkInOutbox(VIEWER.email, "invite"));
  await screenshot(viewer, "08-invitation");
  await viewer.fill("input[name=password]", VIEWER.password);
  await viewer.click("main button[type=submit]");
  await viewer.getByText("Your role: viewer").waitFor();

  // The viewer sees no role controls, and a hand-made change of the owner's role is refused.
  const ownerForm = owner.locator("form[action$='/role']").first();
  const ownerRoleUrl = `${base}${await ownerForm.getAttribute("action")}`;
  await viewer.goto(`${workspaceUrl}/members`);
  assert.equal(await viewer.locator("select[name=role]").count(), 0);
  const status = await viewer.evaluate(async (url) => {
    const csrf = document.querySelector("input[name=csrf]").value;
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf, role: "viewer" }),
    });
    return response.status;
  }, ownerRoleUrl);
  assert.equal(status, 403);
  // The refusal is the role's, not a token problem: the same form posted by the owner works.
  await owner.goto(`${workspaceUrl}/members`);
  assert.equal(await owner.locator("select[aria-label='Role of owner@example.com']").inputValue(), "owner");
  await owner.selectOption("select[aria-label='Role of viewer@example.com']", "member");
  await owner.locator("form", { has: owner.locator("select[aria-label='Role of viewer@example.com']") }).locator("button").click();
  await owner.waitForURL(`${workspaceUrl}/members`);
  assert.equal(await owner.locator("select[aria-label='Role of viewer@example.com']").inputValue(), "member");

  // Masking rules, previewed live as the sample is typed (the page's script, under the CSP).
  await owner.goto(`${workspaceUrl}/masking`);
  await owner.fill("form[action$='/masking/rules'] input[name=term]", "Acme Books");
  await owner.fill("form[action$='/masking/rules'] input[name=alias]", "Client A");
  await owner.click("form[action$='/masking/rules'] button");
  await owner.waitForURL(`${workspaceUrl}/masking`);
  await owner.fill("#masking-preview textarea", "Acme Books wrote from ada@example.com");
  await owner.locator("#masking-preview output pre", { hasText: "Client A wrote from [EMAIL_1]" }).waitFor();
  assert.match(await owner.locator("#masking-preview .counts").innerText(), /EMAIL: 1/);
  await screenshot(owner, "09-masking");

  // A pairing code for a desktop agent, shown once.
  await owner.goto(`${workspaceUrl}/agents`);
  await owner.fill("form[action$='/pairing-codes'] input[name=name]", "Front desk PC");
  await owner.click("form[action$='/pairing-codes'] button");
  await owner.getByText(/sbx_pair_/).waitFor();
  await screenshot(owner, "10-pairing-code");

  assert.deepEqual(violations, [], "no Content-Security-Policy violations");
});
