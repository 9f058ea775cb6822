// Drives the runner's web UI in headless Chromium (playwright-core), as a user would:
// start a test from the form, watch the table and charts update, change the users, stop
// it, and download the statistics CSV. Used by tests/tests/web.rs, which checks what the
// server received against what this prints.
//
//   node tests/browser/web_ui.mjs URL TARGET_HOST SCREENSHOT.png
// prints one JSON line: {"rows": [...], "csv": "...", "users_after_edit": N}
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.env.WASMLOAD_NODE_MODULES, "playwright-core", "package.json"));
const { chromium } = require("playwright-core");

const [url, targetHost, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.WASMLOAD_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const fail = async (why) => {
  console.error(why);
  await browser.close();
  process.exit(1);
};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  page.setDefaultTimeout(20000);
  await page.goto(url);
  await page.waitForSelector("#start-form:not([hidden])");
  await page.fill("#start-form input[name=users]", "4");
  await page.fill("#start-form input[name=spawn_rate]", "20");
  await page.fill("#start-form input[name=host]", targetHost);
  await page.fill("#start-form input[name=run_time]", "");
  await page.click("#start");
  await page.waitForFunction(() => document.getElementById("state").textContent === "running");
  // The table fills in and keeps updating.
  const count = () => page.$eval("#stats tbody tr.total td:nth-child(3)", (td) => Number(td.textContent));
  await page.waitForFunction(() => {
    const td = document.querySelector("#stats tbody tr.total td:nth-child(3)");
    return td && Number(td.textContent) > 0;
  });
  const first = await count();
  await page.waitForFunction((n) => Number(document.querySelector("#stats tbody tr.total td:nth-child(3)").textContent) > n, first);
  await page.waitForFunction(() => document.getElementById("users").textContent === "4");
  // Edit users: down to 2.
  await page.click("#edit");
  await page.fill("#users-form input[name=users]", "2");
  await page.fill("#users-form input[name=spawn_rate]", "50");
  await page.click("#users-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("users").textContent === "2");
  const usersAfterEdit = Number(await page.textContent("#users"));
  // Charts draw (uPlot canvases) once the history has points.
  await page.click("button[data-tab=charts]");
  await page.waitForSelector("#chart-rps canvas");
  await page.waitForTimeout(1200);
  await page.screenshot({ path: screenshot, fullPage: true });
  await page.click("button[data-tab=stats]");
  await page.click("#stop");
  await page.waitForFunction(() => document.getElementById("state").textContent === "stopped");
  const rows = await page.$$eval("#stats tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  await page.click("button[data-tab=downloads]");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#dl-stats")]);
  const stream = await download.createReadStream();
  let csv = "";
  for await (const chunk of stream) csv += chunk;
  console.log(JSON.stringify({ rows, csv, users_after_edit: usersAfterEdit }));
  await browser.close();
} catch (e) {
  await fail(`the web UI test failed: ${e.stack || e}`);
}
