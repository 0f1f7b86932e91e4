// Plays the demo game's browser page in headless Chromium, as a person would: ping before
// signing in, signin (no account yet), signup, signin, ping (not logged in yet), login,
// ping; then the gold: with GOLD=1 in the env (the demo on several nodes) the wallet, into
// the subgame, the wallet, out of it, the wallet; else the wallet, which one node refuses.
// Each click must add the expected line to the page's log; the log is printed.
//
// usage: NODE_PATH=demo_game/web/node_modules node browser_demo.cjs URL USER PASSWORD
// CHROMIUM (default /usr/bin/chromium) and SCREENSHOT (a PNG path, optional) in the env.
"use strict";
const path = require("node:path");
const { withPage } = require(path.join(__dirname, "..", "chromium.cjs"));

const STEP_TIMEOUT = 15000;

async function main() {
  const [url, user, password] = process.argv.slice(2);
  await withPage(async (page) => {
    await page.goto(url);
    await page.waitForSelector("#controls:not([disabled])", { timeout: STEP_TIMEOUT });
    await page.fill("#user", user);
    await page.fill("#password", password);
    const log = page.locator("#log > div");
    async function step(button, request, expected) {
      const before = await log.count();
      await page.click(button);
      await page.waitForFunction(
        ([before, request]) => {
          const lines = document.querySelectorAll("#log > div");
          return lines.length > before && lines[lines.length - 1].textContent.startsWith(request + ":");
        },
        [before, request],
        { timeout: STEP_TIMEOUT },
      );
      const last = await log.last().textContent();
      if (last !== expected) throw new Error(`after ${button}: expected ${expected}, got ${last}`);
    }
    await step("#ping", "ping", "ping: error not authenticated");
    await step("#signin", "signin", 'signin: ok {"ok":false}');
    await step("#signup", "signup", 'signup: ok {"ok":true}');
    await step("#signin", "signin", 'signin: ok {"ok":true}');
    await step("#ping", "ping", "ping: error not logged in");
    await step("#login", "login", 'login: ok {"ok":true}');
    await step("#ping", "ping", "ping: ok {}");
    if (process.env.GOLD === "1") {
      const home = 'wallet: ok {"main":100,"subgame":0,"in_transit":0}';
      await step("#wallet", "wallet", home);
      await step("#enter_subgame", "enter_subgame", 'enter_subgame: ok {"state":"delivered","gold":100}');
      await step("#wallet", "wallet", 'wallet: ok {"main":0,"subgame":100,"in_transit":0}');
      await step("#leave_subgame", "leave_subgame", 'leave_subgame: ok {"state":"delivered","gold":100}');
      await step("#wallet", "wallet", home);
    } else {
      await step(
        "#wallet",
        "wallet",
        "wallet: error gold and the subgame come with the demo on several nodes: make demo-cluster",
      );
    }
    for (const line of await log.allTextContents()) console.log(line);
    if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT });
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
