// Loads a node's status page (meshnet.metrics) in headless Chromium, waits until it shows
// services and charts with at least two points, and prints what it shows as JSON.
//
// usage: NODE_PATH=demo_game/web/node_modules node status_page.cjs URL
// CHROMIUM (default /usr/bin/chromium) and SCREENSHOT (a PNG path, optional) in the env.
"use strict";
const path = require("node:path");
const { withPage } = require(path.join(__dirname, "..", "chromium.cjs"));

const TIMEOUT = 30000;

async function main() {
  const [url] = process.argv.slice(2);
  await withPage(async (page) => {
    await page.goto(url);
    await page.waitForFunction(() => {
      const line = document.querySelector('.chart[data-series="handled"] polyline');
      return document.querySelectorAll("#services tbody tr[data-key]").length > 0
        && line && line.getAttribute("points").split(" ").length >= 2;
    }, null, { timeout: TIMEOUT });
    const shown = await page.evaluate(() => {
      const rows = (id) => [...document.querySelectorAll(`#${id} tbody tr`)]
        .map((row) => [...row.cells].map((cell) => cell.textContent));
      const charts = {};
      for (const chart of document.querySelectorAll(".chart")) {
        charts[chart.dataset.series] = {
          title: chart.querySelector(".title").textContent,
          points: chart.querySelector("polyline").getAttribute("points").split(" ").length,
        };
      }
      return {
        node: document.getElementById("node").textContent,
        updated: document.getElementById("updated").textContent,
        services: rows("services"),
        gates: rows("gates"),
        connections: rows("connections"),
        logins: rows("logins"),
        charts,
      };
    });
    console.log(JSON.stringify(shown));
    if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
