// The comet app's page (GET /app) in headless Chromium, driven by playwright-core.
//
//   node comet_app.mjs http://127.0.0.1:PORT [screenshot.png]
//
// (or COMET_URL / SCREENSHOT in the environment). comet must be running and
// have no waiters. playwright-core is loaded from TENDRIL_NPM_PREFIX/node_modules
// when that is set (test/apps/browser_test.py installs it under the build
// directory), else from the usual places. Exit 0: every step passed.
//
// The steps: open /app; the count includes the page's own waiter (1); three
// more waiters from outside (Node's http); the page shows 4; click Notify; the
// page shows the notification n = 4, the outside waiters got "4" too, and the
// count falls back to 1 (the page waits again); a screenshot.
import { createRequire } from "node:module";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";

const base = (process.argv[2] || process.env.COMET_URL || "").replace(/\/+$/, "");
const screenshot = process.argv[3] || process.env.SCREENSHOT || "";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const STEP_MS = 10_000;   // the most any one step may take
const TOTAL_MS = 45_000;  // the whole run

if (!/^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d+$/.test(base)) {
  console.error(`usage: node comet_app.mjs http://127.0.0.1:PORT [screenshot.png] (got ${JSON.stringify(base)})`);
  process.exit(2);
}

const prefix = process.env.TENDRIL_NPM_PREFIX;
const require = createRequire(prefix ? path.join(path.resolve(prefix), "package.json") : import.meta.url);
const { chromium } = require("playwright-core");

const log = (...a) => console.log(`[comet_app ${(performance.now() / 1000).toFixed(2)}s]`, ...a);

// GET a path with a fresh connection; resolves with {status, body}.
function get(pathname, timeoutMs = STEP_MS) {
  return new Promise((resolve, reject) => {
    const req = http.get(base + pathname, { agent: false, timeout: timeoutMs }, res => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", d => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${pathname}: no answer in ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

async function serverCount() {
  return Number((await get("/")).body);
}

// Poll the server until it reports n waiters.
async function untilServerCount(n) {
  const deadline = Date.now() + STEP_MS;
  let last;
  while (Date.now() < deadline) {
    if ((last = await serverCount()) === n) return;
    await new Promise(r => setTimeout(r, 20));
  }
  throw new Error(`the server reports ${last} waiters, not ${n}`);
}

async function main() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tendril-chromium-"));
  let context;
  const outside = [];
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: STEP_MS * 2,
      args: [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ],
      viewport: { width: 900, height: 700 },
    });
    context.setDefaultTimeout(STEP_MS);
    log("chromium", context.browser()?.version() ?? "(persistent context)");
    const page = context.pages()[0] || (await context.newPage());
    const problems = [];
    page.on("pageerror", e => problems.push(`page error: ${e.message}`));
    page.on("console", m => { if (m.type() === "error") problems.push(`console error: ${m.text()}`); });

    const count = page.locator("#count");
    const notifications = page.locator("#events li.notification");

    // 1. The page, and its own waiter in the count.
    const res = await page.goto(base + "/app", { waitUntil: "load" });
    if (!res || res.status() !== 200) throw new Error(`GET /app: ${res && res.status()}`);
    if (!/text\/html/.test(res.headers()["content-type"] || "")) throw new Error("GET /app is not text/html");
    if ((await page.title()) !== "comet") throw new Error(`title ${JSON.stringify(await page.title())}`);
    await untilServerCount(1);
    await page.waitForFunction(() => document.getElementById("count").textContent.trim() === "1");
    log("the page shows its own waiter: count", await count.textContent());
    if ((await notifications.count()) !== 0) throw new Error("notifications before any notify");

    // 2. Three more waiters from outside; the page's count follows.
    for (let i = 0; i < 3; i++) outside.push(get("/wait", STEP_MS * 3));
    await untilServerCount(4);
    await page.waitForFunction(() => document.getElementById("count").textContent.trim() === "4");
    log("with 3 outside waiters the page shows", await count.textContent());

    // 3. Notify from the page: everyone, the page included, gets n = 4.
    const [notified] = await Promise.all([
      page.waitForResponse(r => new URL(r.url()).pathname === "/notify"),
      page.click("#notify"),
    ]);
    if ((await notified.text()) !== "4") throw new Error(`the button's /notify answered ${await notified.text()}`);
    await notifications.first().waitFor({ state: "visible" });
    const n = await notifications.first().getAttribute("data-n");
    const text = (await notifications.first().textContent()).trim();
    log("the page shows the notification:", JSON.stringify(text));
    if (n !== "4" || !/n = 4$/.test(text)) throw new Error(`notification says ${JSON.stringify(text)} (data-n ${n}), want n = 4`);
    if ((await notifications.count()) !== 1) throw new Error(`${await notifications.count()} notifications, want 1`);
    const bodies = await Promise.all(outside);
    for (const b of bodies) {
      if (b.status !== 200 || b.body !== "4") throw new Error(`an outside waiter got ${b.status} ${JSON.stringify(b.body)}`);
    }
    log("the outside waiters got", bodies.map(b => b.body).join(" "));

    // 4. The page waits again: the count falls back to its own waiter.
    await untilServerCount(1);
    await page.waitForFunction(() => document.getElementById("count").textContent.trim() === "1");
    log("after the notify the page waits again: count", await count.textContent());

    if (screenshot) {
      fs.mkdirSync(path.dirname(path.resolve(screenshot)), { recursive: true });
      await page.screenshot({ path: screenshot, fullPage: true });
      log("screenshot:", screenshot);
    }
    if (problems.length) throw new Error(problems.join("\n"));
  } finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

const watchdog = setTimeout(() => {
  console.error(`comet_app: gave up after ${TOTAL_MS / 1000} s`);
  process.exit(1);
}, TOTAL_MS);
watchdog.unref();

main().then(
  () => { log("ok"); process.exit(0); },
  e => { console.error("comet_app: FAILED:", e && e.stack ? e.stack : e); process.exit(1); },
);
