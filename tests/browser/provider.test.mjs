// Signing in through an OpenID Connect provider's own page, in Debian's Chromium: the
// sign-in page's button goes to the test provider (tests/oidc_provider), the person picks
// their account there, and comes back signed in to a new account whose only way in is that
// provider, which therefore cannot be unlinked. The pages' policy lets the button's form go
// to the provider and nowhere else.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { cspViolations, launchChromium, screenshot, startProvider, startStrongbox } from "./support.mjs";

const OWNER = { email: "owner@example.com", password: "a long and unusual owner passphrase" };
const CLIENT_ID = "strongbox-browser-client";
const CLIENT_SECRET = "the browser test's client secret";

let provider;
let strongbox;
let browser;

before(async () => {
  provider = await startProvider(CLIENT_ID, CLIENT_SECRET);
  strongbox = await startStrongbox({
    STRONGBOX_ACCOUNTS__SIGNUP: "open",
    STRONGBOX_OIDC__TESTID__LABEL: "Test ID",
    STRONGBOX_OIDC__TESTID__ISSUER: provider.issuer,
    STRONGBOX_OIDC__TESTID__CLIENT_ID: CLIENT_ID,
    STRONGBOX_OIDC__TESTID__CLIENT_SECRET: CLIENT_SECRET,
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  strongbox?.stop();
  provider?.stop();
});

test("a person signs in through the provider's page", async () => {
  const { base } = strongbox;
  // Sign-up is open once the first owner exists.
  const owner = await (await browser.newContext()).newPage();
  await owner.goto(strongbox.setupLink);
  await owner.fill("input[name=email]", OWNER.email);
  await owner.fill("input[name=password]", OWNER.password);
  await owner.click("main button[type=submit]");
  await owner.waitForURL(`${base}/`);

  const ada = await (await browser.newContext()).newPage();
  const violations = cspViolations(ada);
  await ada.goto(`${base}/sign-in`);
  await screenshot(ada, "11-sign-in-with-provider");
  await ada.getByRole("button", { name: "Sign in with Test ID" }).click();

  // The provider's own page, on its own origin.
  await ada.waitForURL(`${provider.issuer}/authorize?**`);
  await ada.getByRole("heading", { name: "Sign in to the test provider" }).waitFor();
  await ada.selectOption("select[name=account]", "ada");
  await ada.getByRole("button", { name: "Continue" }).click();

  // Back, signed in to a new account.
  await ada.waitForURL(`${base}/`);
  await ada.goto(`${base}/account`);
  await ada.getByText("ada@example.com").first().waitFor();
  await ada.getByText("Password: none").waitFor();
  await screenshot(ada, "12-account-sign-in-methods");

  // Its only way in stays.
  await ada.getByRole("button", { name: "Unlink Test ID" }).click();
  await ada.getByText("only way to sign in").waitFor();
  await ada.goto(`${base}/account`);
  assert.equal(await ada.getByRole("button", { name: "Unlink Test ID" }).count(), 1);

  assert.deepEqual(violations, [], "no Content-Security-Policy violations");
});
