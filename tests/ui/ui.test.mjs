// Browser tests of `mlcycle ui` in real Chromium (Debian's), driven by
// playwright-core. Run by tests/ui.rs (`cargo test --release --test ui`),
// which passes the binary in MLCYCLE_BIN; `node --test tests/ui/` works too.
// With UPDATE_SCREENSHOTS=1 the pages are saved to docs/img/ at 1280×800.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, cpSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const BIN = process.env.MLCYCLE_BIN || join(repo, "target/release/mlcycle");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.UPDATE_SCREENSHOTS === "1";

const servers = [];
let browser;
let sweep, loop, slow; // workspaces
let roUrl, loopUrl, actUrl; // servers: read-only, models, actions allowed
let scoreUrl; // mlcycle serve of the loop workspace

function mlcycle(args, cwd) {
  return execFileSync(BIN, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function serve(ws, extra = []) {
  return new Promise((ok, fail) => {
    const p = spawn(BIN, ["ui", ws, "--port", "0", ...extra], { stdio: ["ignore", "ignore", "pipe"] });
    servers.push(p);
    let err = "";
    p.stderr.on("data", d => {
      err += d;
      // The whole line: a port read from half a line is another port.
      const m = err.match(/listening on (http:\/\/[0-9.:]+)[/\s]/);
      if (m) ok(m[1]);
    });
    p.on("exit", code => fail(new Error(`mlcycle ui exited (${code}): ${err}`)));
  });
}

before(async () => {
  const root = mkdtempSync(join(tmpdir(), "mlcycle-ui-"));
  sweep = join(root, "sweep");
  cpSync(join(repo, "examples/sweep"), sweep, { recursive: true });
  mlcycle(["run", "--quiet"], sweep);
  mlcycle(["exp", "run", "--quiet", "-S", "sgd.learning_rate=0.001,0.01", "-S", "sgd.epochs=100"], sweep);
  loop = join(root, "loop");
  cpSync(join(repo, "examples/feedback-loop"), loop, { recursive: true });
  mlcycle(["run", "--quiet"], loop);
  slow = join(root, "slow");
  mkdirSync(slow);
  writeFileSync(join(slow, "mlcycle.yaml"), `name: slow
stages:
  prepare:
    run: sleep 2 && echo ready > prepared.txt
    outs: [prepared.txt]
  features:
    run: sleep 2 && echo ready > features.txt
    outs: [features.txt]
  finish:
    deps: [prepare.prepared, features.features]
    run: cat prepared.txt features.txt > done.txt
    outs: [done.txt]
`);
  [roUrl, loopUrl, actUrl] = await Promise.all([serve(sweep), serve(loop), serve(slow, ["--allow-actions"])]);
  // `mlcycle serve` of the loop workspace, with a few predictions, for the
  // models page's live numbers.
  scoreUrl = await new Promise((ok, fail) => {
    const p = spawn(BIN, ["serve", loop, "--port", "0"], { stdio: ["ignore", "ignore", "pipe"] });
    servers.push(p);
    let err = "";
    p.stderr.on("data", d => { err += d; const m = err.match(/listening on (http:\/\/[0-9.:]+)\s/); if (m) ok(m[1]); });
    p.on("exit", code => fail(new Error(`mlcycle serve exited (${code}): ${err}`)));
  });
  const health = await fetch(`${scoreUrl}/health`);
  assert.equal(health.status, 200, `${scoreUrl}/health: ${await health.text()}`);
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`${scoreUrl}/predict`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ instances: [{ area: 100 + i }] }) });
    assert.equal(r.status, 200, `${scoreUrl}/predict: ${await r.text()}`);
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  for (const p of servers) p.kill("SIGINT");
});

async function page(url) {
  const p = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  p.on("pageerror", e => errors.push(e.message));
  p.on("console", m => { if (m.type() === "error") errors.push(m.text()); });
  p.errors = errors;
  await p.goto(url);
  return p;
}

async function shot(p, name) {
  if (SHOTS) await p.screenshot({ path: join(repo, "docs/img", `ui-${name}.png`) });
}

test("the pipeline page draws every stage with its state, groups matrix instances, and opens a stage", async () => {
  const api = await (await fetch(`${roUrl}/api/pipeline`)).json();
  const p = await page(`${roUrl}/pipeline`);
  await p.waitForSelector("svg .node");
  assert.equal(await p.locator("svg .node").count(), api.stages.length);
  assert.equal(await p.locator("svg .node.st-fresh").count(), api.stages.length, "everything ran: all fresh");
  assert.ok(await p.locator("text.grp-label", { hasText: "fold ×5" }).count() >= 1, "the 5 folds are one group");
  // keyboard: focus a stage and press Enter
  await p.locator('svg .node[data-id="split"]').focus();
  await p.keyboard.press("Enter");
  const panel = p.locator("aside.panel");
  await panel.getByText("preprocess.split").waitFor();
  assert.ok(await panel.locator("table[aria-label='train first rows'] tbody tr").count() > 0, "a table output shows its first rows");
  assert.match(p.url(), /stage=split/, "the open stage is in the URL");
  // a stage with metrics and plots
  await p.locator('svg .node[data-id="eval"]').click();
  await panel.locator("table[aria-label='metrics values']").waitFor();
  assert.ok(await panel.locator("img[alt^='plot']").count() > 0, "plots are shown inline");
  await shot(p, "pipeline");
  assert.deepEqual(p.errors, []);
  await p.close();
});

test("a stale stage says why, and the URL of a stage is shareable", async () => {
  const yaml = join(sweep, "mlcycle.yaml");
  const { readFileSync } = await import("node:fs");
  const before = readFileSync(yaml, "utf8");
  writeFileSync(yaml, before.replace("epochs: 1000", "epochs: 900"));
  try {
    const p = await page(`${roUrl}/pipeline?stage=sgd`);
    const node = p.locator('svg .node[data-id="sgd"]');
    await node.waitFor();
    assert.equal(await node.getAttribute("data-state"), "stale");
    assert.match(await node.locator("title").textContent(), /param `sgd.epochs` changed: 1000 -> 900/);
    await p.locator("aside.panel").getByText("param `sgd.epochs` changed").waitFor();
    await p.close();
  } finally {
    writeFileSync(yaml, before);
  }
});

test("a broken pipeline file is shown with its problems, and the page recovers when it is fixed", async () => {
  const { readFileSync } = await import("node:fs");
  const yaml = join(sweep, "mlcycle.yaml");
  const good = readFileSync(yaml, "utf8");
  const p = await page(`${roUrl}/pipeline`);
  await p.waitForSelector("svg .node");
  writeFileSync(yaml, good.replace("inputs: {data: clean.data}", "inputs: {data: clean.dat}"));
  try {
    const alert = p.locator("pre.error[role=alert]");
    await alert.waitFor();
    assert.match(await alert.textContent(), /mlcycle\.yaml:\d+:\d+/);
    assert.match(await alert.textContent(), /did you mean `data`\?/);
  } finally {
    writeFileSync(yaml, good);
  }
  await p.locator("pre.error[role=alert]").waitFor({ state: "hidden" });
  assert.ok(await p.locator("svg .node").count() > 0);
  await p.close();
});

test("the runs page lists runs and shows one as a timeline", async () => {
  const p = await page(`${roUrl}/runs`);
  await p.locator("table.data tbody tr").first().waitFor();
  const first = p.locator("table.data tbody tr a").last(); // the oldest: the first `mlcycle run`
  await first.click();
  await p.locator("svg.gantt").waitFor();
  assert.ok(await p.locator("svg.gantt rect").count() >= 10, "every stage that ran is a bar");
  await shot(p, "run");
  assert.deepEqual(p.errors, []);
  await p.close();
});

test("the experiments table sorts, filters and compares two experiments", async () => {
  const p = await page(`${roUrl}/experiments`);
  await p.waitForSelector(".grid[data-ready='1']");
  assert.equal(await p.locator(".grid .row").count(), 2);
  const header = () => p.locator(".grid .head [role=columnheader]", { hasText: "eval.rmse" });
  await header().locator("button").click();
  assert.equal(await header().getAttribute("aria-sort"), "descending");
  // from the keyboard: the focus stays on the header, Enter sorts again
  await p.keyboard.press("Enter");
  assert.equal(await header().getAttribute("aria-sort"), "ascending");
  assert.equal(await p.evaluate(() => document.activeElement.dataset.col), "eval.rmse");
  assert.match(p.url(), /sort=eval.rmse/);
  await p.fill("#exp-filter", "sgd.learning_rate=0.01");
  await p.waitForFunction(() => document.querySelectorAll(".grid .row").length === 1);
  await p.fill("#exp-filter", "eval.rmsee<1");
  await p.locator("#exp-status", { hasText: "did you mean `eval.rmse`?" }).waitFor();
  assert.equal(await p.getAttribute("#exp-filter", "aria-invalid"), "true");
  await p.fill("#exp-filter", "");
  await p.waitForFunction(() => document.querySelectorAll(".grid .row").length === 2);
  await shot(p, "experiments");
  for (const box of await p.locator(".grid .row input[type=checkbox]").all()) await box.check();
  await p.getByRole("button", { name: /Compare selected/ }).click();
  await p.locator("table[aria-label='Params']").waitFor();
  const changed = p.locator("table[aria-label='Params'] tr.changed th", { hasText: "sgd.learning_rate" });
  assert.equal(await changed.count(), 1, "the param that differs is highlighted");
  assert.ok(await p.locator("table[aria-label='Metrics'] td", { hasText: "(" }).count() > 0, "metrics show their delta");
  // charts are drawn when they scroll into view
  assert.equal(await p.locator("#parallel svg").count(), 0);
  await p.locator("#scatter").scrollIntoViewIfNeeded();
  await p.locator("#scatter svg circle").first().waitFor();
  assert.equal(await p.locator("#scatter svg circle").count(), 2);
  await p.locator("#parallel").scrollIntoViewIfNeeded();
  await p.locator("#parallel svg polyline").first().waitFor();
  await shot(p, "compare");
  assert.deepEqual(p.errors, []);
  await p.close();
});

test("the models page shows the registry, the decisions and whether serving is up", async () => {
  const p = await page(`${loopUrl}/models`);
  await p.locator("table[aria-label='Registered versions'] tbody tr").first().waitFor();
  assert.ok(await p.getByText("Champion: version 1").count() === 1);
  await p.locator("#decisions svg circle").first().waitFor();
  // the live numbers of the running `mlcycle serve`
  const serving = p.locator("table[aria-label='Live serving']");
  await serving.waitFor();
  assert.match(await serving.textContent(), new RegExp(scoreUrl.replace("http://", "")));
  assert.match(await serving.locator("tr", { hasText: "requests" }).first().textContent(), /[3-9]/);
  await p.waitForFunction(() => /\d+\.\d\/s/.test(document.querySelector("table[aria-label='Live serving']")?.textContent || ""), null, { timeout: 10000 });
  assert.equal(await p.getByRole("button", { name: "Promote" }).count(), 0, "read-only: no action buttons");
  await shot(p, "models");
  assert.deepEqual(p.errors, []);
  await p.close();
});

test("an action is refused without --allow-actions, and without the page's CSRF token", async () => {
  const p = await page(`${roUrl}/pipeline`);
  const ro = await p.evaluate(async () => {
    const csrf = document.querySelector('meta[name="mlcycle-csrf"]').content;
    const r = await fetch("/api/actions/run", { method: "POST", headers: { "content-type": "application/json", "x-mlcycle-csrf": csrf }, body: "{}" });
    return [r.status, (await r.json()).error];
  });
  assert.equal(ro[0], 403);
  assert.match(ro[1], /--allow-actions/);
  assert.equal(await p.getByRole("button", { name: "Run pipeline" }).count(), 0);
  await p.close();
  const a = await page(`${actUrl}/pipeline`);
  const noCsrf = await a.evaluate(async () => (await fetch("/api/actions/run", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status);
  assert.equal(noCsrf, 403);
  await a.close();
});

test("a run started from the page shows its stages running, then fresh", async () => {
  const p = await page(`${actUrl}/pipeline`);
  const prepare = p.locator('svg .node[data-id="prepare"]');
  await prepare.waitFor();
  assert.equal(await prepare.getAttribute("data-state"), "stale");
  await p.getByRole("button", { name: "Run pipeline" }).click();
  await p.waitForFunction(() => document.querySelector('svg .node[data-id="prepare"]')?.dataset.state === "running", null, { timeout: 10000 });
  await p.locator("#live", { hasText: "in progress" }).waitFor();
  await p.waitForFunction(() => document.querySelector('svg .node[data-id="finish"]')?.dataset.state === "fresh", null, { timeout: 20000 });
  assert.equal(await prepare.getAttribute("data-state"), "fresh");
  assert.ok(existsSync(join(slow, "done.txt")));
  // its timeline: the two 2-second stages ran side by side
  await p.goto(`${actUrl}/runs`);
  await p.locator("table.data tbody tr a").first().click();
  await p.locator("svg.gantt").waitFor();
  assert.ok(await p.locator("svg.gantt text", { hasText: "worker 2" }).count() === 1, "parallel stages take two lanes");
  assert.deepEqual(p.errors, []);
  await p.close();
});

test("the pages can be used from the keyboard and every control has a name", async () => {
  const p = await page(`${roUrl}/experiments`);
  await p.waitForSelector(".grid[data-ready='1']");
  await p.keyboard.press("Tab"); // skip link
  await p.keyboard.press("Tab");
  assert.equal(await p.evaluate(() => document.activeElement.textContent), "Pipeline");
  for (const url of ["/pipeline", "/runs", "/experiments", "/models"]) {
    await p.goto(`${roUrl}${url}`);
    await p.waitForLoadState("networkidle");
    const unnamed = await p.evaluate(() => [...document.querySelectorAll("button, input, select, a")].filter(e => !(e.getAttribute("aria-label") || e.textContent.trim() || (e.id && document.querySelector(`label[for='${e.id}']`)) || e.closest("label"))).map(e => e.outerHTML.slice(0, 80)));
    assert.deepEqual(unnamed, [], `${url} has controls without a name`);
  }
  await p.close();
});
