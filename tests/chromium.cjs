// Headless Chromium for the page tests (tests/demo/browser_demo.cjs,
// tests/operability/status_page.cjs): withPage(callback) launches it with a fresh profile,
// runs callback(page), then closes it and removes the profile.
// CHROMIUM (default /usr/bin/chromium) in the env; playwright-core through NODE_PATH.
"use strict";
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

async function withPage(callback) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "meshnet-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  try {
    return await callback(context.pages()[0] || (await context.newPage()));
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

module.exports = { withPage };
