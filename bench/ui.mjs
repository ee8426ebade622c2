// Times `mlcycle ui` pages in headless Chromium; see bench/ui.sh.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync, rmSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "../tests/ui/package.json"));
const { chromium } = require("playwright-core");
const BIN = process.env.MLCYCLE;
const reps = Number(process.argv[process.argv.indexOf("--reps") + 1]) || 5;
const median = xs => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

function serve(ws) {
  return new Promise((ok, fail) => {
    const p = spawn(BIN, ["ui", ws, "--port", "0"], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", d => { err += d; const m = err.match(/listening on (http:\/\/[0-9.:]+)/); if (m) ok([p, m[1]]); });
    p.on("exit", c => fail(new Error(`mlcycle ui exited ${c}: ${err}`)));
  });
}

// A 1 000-stage DAG: 20 layers of 50 stages, each reading two of the layer before.
const dagWs = join(here, "work", "ui-dag");
rmSync(dagWs, { recursive: true, force: true });
mkdirSync(dagWs, { recursive: true });
let yaml = "name: dag1000\nstages:\n";
for (let l = 0; l < 20; l++) for (let i = 0; i < 50; i++) {
  yaml += `  s${l}_${i}:\n    run: echo ${l} ${i} > o/${l}_${i}.txt\n    outs: [{out: o/${l}_${i}.txt}]\n`;
  if (l > 0) yaml += `    deps: [s${l - 1}_${i}.out, s${l - 1}_${(i * 7 + 3) % 50}.out]\n`;
}
writeFileSync(join(dagWs, "mlcycle.yaml"), yaml);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const [expServer, expUrl] = await serve(process.env.SHOW_WS);
const [dagServer, dagUrl] = await serve(dagWs);
const out = { interactive_ms: [], sort_ms: [], sort_frame_ms: [], dag_ms: [], rows: 0, stages: 0 };
for (let r = 0; r < reps; r++) {
  const p = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await p.goto(`${expUrl}/experiments`);
  await p.waitForSelector(".grid[data-ready='1']", { timeout: 60000 });
  out.interactive_ms.push(Number(await p.getAttribute(".grid", "data-ready-at")));
  out.rows = Number((await p.textContent("h1")).match(/\d+/)[0]);
  // Sorting a metric column: from the click to the next frame drawn.
  const [sortMs, frameMs] = await p.evaluate(() => new Promise(done => {
    const b = [...document.querySelectorAll(".grid .head button")].find(x => x.textContent.startsWith("eval.m17"));
    const t0 = performance.now();
    b.click();
    requestAnimationFrame(() => setTimeout(() => done([Number(document.querySelector(".grid").dataset.sortMs), performance.now() - t0]), 0));
  }));
  out.sort_ms.push(sortMs);
  out.sort_frame_ms.push(frameMs);
  await p.close();
  const d = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await d.goto(`${dagUrl}/pipeline`);
  await d.waitForSelector(".dag[data-drawn-at]", { timeout: 60000 });
  out.dag_ms.push(Number(await d.getAttribute(".dag", "data-drawn-at")));
  out.stages = await d.locator("svg .node").count();
  await d.close();
}
await browser.close();
expServer.kill("SIGINT");
dagServer.kill("SIGINT");
const summary = `# mlcycle ui in headless Chromium (medians of ${reps})

| what | median |
|---|---:|
| experiments page interactive, ${out.rows} experiments x 50 metrics (navigation to a sortable table) | ${median(out.interactive_ms)} ms |
| sorting a metric column (the sort alone) | ${median(out.sort_ms).toFixed(1)} ms |
| sorting a metric column (click to the next frame) | ${median(out.sort_frame_ms).toFixed(1)} ms |
| pipeline page, ${out.stages}-stage DAG (navigation to drawn) | ${median(out.dag_ms)} ms |
`;
mkdirSync(join(here, "results"), { recursive: true });
writeFileSync(join(here, "results", "ui.json"), JSON.stringify(out, null, 2));
writeFileSync(join(here, "results", "ui-summary.md"), summary);
console.log(summary);
