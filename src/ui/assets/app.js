// mlcycle ui: one page, four views (pipeline, runs, experiments, models),
// routed by the URL path and query so every view is a shareable link.
// Plain DOM and SVG: no framework, no build step.
"use strict";

const CSRF = document.querySelector('meta[name="mlcycle-csrf"]').content;
const ACTIONS = document.querySelector('meta[name="mlcycle-actions"]').content === "on";
const main = document.getElementById("main");
const live = document.getElementById("live");
let timer = null; // the current view's poll
let observer = null; // draws charts when they scroll into view

// ---------- helpers ----------
function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function h(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (k === "html") e.innerHTML = v;
    else if (v !== false && v != null) e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) if (k != null) e.append(k instanceof Node ? k : document.createTextNode(k));
  return e;
}
async function api(path, opts) {
  const r = await fetch(path, opts);
  const body = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
}
async function act(name, body) {
  return api(`/api/actions/${name}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-mlcycle-csrf": CSRF },
    body: JSON.stringify(body || {}),
  });
}
function fmt(v) {
  if (v == null || v === "") return "";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a >= 1e6 || a < 1e-3) ? v.toExponential(3) : String(+v.toPrecision(6));
  }
  return String(v);
}
function ms(v) {
  if (v == null) return "";
  return v < 1000 ? `${v} ms` : v < 60000 ? `${(v / 1000).toFixed(1)} s` : `${Math.floor(v / 60000)} min ${Math.round((v % 60000) / 1000)} s`;
}
function badge(state) {
  return h("span", { class: `badge b-${state}` }, state);
}
function fail(e) {
  main.replaceChildren(h("p", { class: "error", role: "alert" }, e.message || String(e)));
}
function go(url) {
  history.pushState(null, "", url);
  route();
}
document.addEventListener("click", e => {
  const a = e.target.closest("a[href^='/']");
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || a.target) return;
  e.preventDefault();
  go(a.getAttribute("href"));
});
window.addEventListener("popstate", route);

function whenVisible(el, draw) {
  if (!observer) {
    observer = new IntersectionObserver(entries => {
      for (const en of entries) {
        if (en.isIntersecting && en.target._draw) {
          const d = en.target._draw;
          en.target._draw = null;
          observer.unobserve(en.target);
          d();
        }
      }
    });
  }
  el._draw = draw;
  observer.observe(el);
}

// ---------- charts (SVG strings) ----------
const PALETTE = ["#1f6feb", "#d1242f", "#2e8b57", "#bf8700", "#8250df", "#0a7ea4", "#e16f24", "#6e7781"];
function scale(lo, hi, a, b) {
  if (!(hi > lo)) { hi = lo + 1; lo = lo - 1; }
  return v => a + ((v - lo) / (hi - lo)) * (b - a);
}
function extent(vs) {
  let lo = Infinity, hi = -Infinity;
  for (const v of vs) if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return lo === Infinity ? [0, 1] : [lo, hi];
}
function axes(W, H, m, xl, yl, xs, ys, xr, yr) {
  let s = `<g class="axis"><line x1="${m}" y1="${H - m}" x2="${W - 8}" y2="${H - m}"/><line x1="${m}" y1="8" x2="${m}" y2="${H - m}"/>`;
  for (const t of [0, 0.5, 1]) {
    const xv = xr[0] + t * (xr[1] - xr[0]), yv = yr[0] + t * (yr[1] - yr[0]);
    s += `<text x="${xs(xv)}" y="${H - m + 14}" text-anchor="middle">${esc(fmt(xv))}</text>`;
    s += `<text x="${m - 4}" y="${ys(yv) + 3}" text-anchor="end">${esc(fmt(yv))}</text>`;
  }
  s += `<text x="${(W + m) / 2}" y="${H - 4}" text-anchor="middle">${esc(xl)}</text>`;
  s += `<text transform="translate(12 ${(H - m) / 2}) rotate(-90)" text-anchor="middle">${esc(yl)}</text></g>`;
  return s;
}
function lineChart(title, series, xl, yl) {
  const W = 460, H = 260, m = 52;
  const xr = extent(series.flatMap(s => s.points.map(p => p[0])));
  const yr = extent(series.flatMap(s => s.points.map(p => p[1])));
  const xs = scale(xr[0], xr[1], m, W - 12), ys = scale(yr[0], yr[1], H - m, 12);
  let s = `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}"><title>${esc(title)}</title>`;
  s += axes(W, H, m, xl, yl, xs, ys, xr, yr);
  series.forEach((se, i) => {
    const d = se.points.filter(p => Number.isFinite(p[1])).map((p, j) => `${j ? "L" : "M"}${xs(p[0]).toFixed(1)},${ys(p[1]).toFixed(1)}`).join("");
    s += `<path d="${d}" fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="2"><title>${esc(se.name)}</title></path>`;
    s += `<text x="${W - 14}" y="${16 + 13 * i}" text-anchor="end" style="fill:${PALETTE[i % PALETTE.length]}">${esc(se.name)}</text>`;
  });
  return s + "</svg>";
}

// ---------- router ----------
function route(message) {
  clearInterval(timer);
  timer = null;
  const path = location.pathname;
  const page = path.startsWith("/runs") ? "runs" : path.startsWith("/experiments") ? "experiments" : path.startsWith("/models") ? "models" : "pipeline";
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.page === page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  live.textContent = typeof message === "string" ? message : "";
  const q = new URLSearchParams(location.search);
  const m = path.match(/^\/runs\/(\d+)/);
  let p;
  if (page === "runs" && m) p = runPage(+m[1]);
  else if (page === "runs") p = runsPage();
  else if (path.startsWith("/experiments/compare")) p = comparePage(q);
  else if (page === "experiments") p = experimentsPage(q);
  else if (page === "models") p = modelsPage();
  else p = pipelinePage(q);
  p.catch(fail);
}

// ---------- pipeline ----------
const NW = 190, NH = 40, CX = 250, RY = 56, PAD = 24;
function nodeXY(s) { return [PAD + s.col * CX, PAD + 14 + s.row * RY]; }

async function pipelinePage(q) {
  let data;
  try {
    data = await api("/api/pipeline");
  } catch (e) {
    // An invalid pipeline file: say what is wrong, and come back when it
    // is fixed.
    main.replaceChildren(h("h1", {}, "Pipeline"), h("pre", { class: "error", role: "alert" }, e.message));
    timer = setInterval(() => api("/api/pipeline").then(() => route()).catch(x => { main.querySelector("pre.error").textContent = x.message; }), 1500);
    return;
  }
  document.title = `${data.name} · pipeline · mlcycle`;
  const legend = h("p", { class: "legend", "aria-label": "States" });
  const runBtn = ACTIONS ? h("button", { on: { click: async () => { try { await act("run"); live.textContent = "Run started"; } catch (e) { live.textContent = e.message; } } } }, "Run pipeline") : null;
  const dag = h("div", { class: "dag", role: "region", "aria-label": "Pipeline graph" });
  const panel = h("aside", { class: "panel", hidden: true, "aria-label": "Stage details", tabindex: "-1" });
  const problem = h("pre", { class: "error", role: "alert", hidden: true });
  main.replaceChildren(h("div", { class: "toolbar" }, h("h1", {}, `Pipeline ${data.name}`), legend, runBtn), problem, h("div", { class: "split" }, dag, panel));
  let shape = "", nodes = [], openId = null, openSig = "";
  const tip = s => `${s.id}: ${s.state}${s.reasons.length ? "\n" + s.reasons.join("\n") : ""}`;
  const draw = d => {
    problem.hidden = true;
    const sig = d.stages.map(s => `${s.id} ${s.kind}`).join("\n") + "|" + d.edges.map(e => e.join(">")).join(",");
    if (openId) {
      const s = d.stages.find(x => x.id === openId);
      const now = s ? tip(s) : "";
      if (now !== openSig) { openSig = now; if (s) stagePanel(panel, openId, open).catch(() => {}); }
    }
    const counts = {};
    for (const s of d.stages) counts[s.state] = (counts[s.state] || 0) + 1;
    legend.innerHTML = Object.entries(counts).map(([k, n]) => `<span><i class="dot" style="background:var(--${k})"></i>${esc(k)} ${n}</span>`).join("");
    live.textContent = d.running != null ? `Run ${d.running} in progress` : "";
    if (sig === shape) {
      d.stages.forEach((s, i) => {
        const g = nodes[i];
        if (!g) return;
        if (g.dataset.state !== s.state) {
          g.dataset.state = s.state;
          g.setAttribute("class", `node st-${s.state}${s.id === openId ? " selected" : ""}`);
          g.setAttribute("aria-label", `stage ${s.id}, ${s.state}`);
          g.querySelector("text.kind").textContent = `${s.kind} · ${s.state}`;
        }
        const t = g.querySelector("title");
        if (t.textContent !== tip(s)) t.textContent = tip(s);
      });
      return;
    }
    shape = sig;
    const W = PAD * 2 + Math.max(1, d.columns) * CX, H = PAD * 2 + 14 + Math.max(1, d.rows) * RY;
    let s = `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" aria-label="Stages and their dependencies">`;
    // matrix groups: a box around the instances of one declaration
    const groups = {};
    // one box per declaration and column: instances that land in other
    // columns get their own box, never one around unrelated stages
    d.stages.forEach(st => { if (st.group !== st.id) (groups[`${st.group}\u0000${st.col}`] ||= []).push(st); });
    for (const [key, members] of Object.entries(groups)) {
      const name = key.split("\u0000")[0];
      const xs = members.map(m => nodeXY(m)[0]), ys = members.map(m => nodeXY(m)[1]);
      const x0 = Math.min(...xs) - 6, y0 = Math.min(...ys) - 16, x1 = Math.max(...xs) + NW + 6, y1 = Math.max(...ys) + NH + 6;
      s += `<rect class="grp" x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" rx="8"/><text class="grp-label" x="${x0 + 6}" y="${y0 + 11}">${esc(name)} ×${members.length}</text>`;
    }
    for (const [u, v] of d.edges) {
      const [x1, y1] = nodeXY(d.stages[u]), [x2, y2] = nodeXY(d.stages[v]);
      const a = x1 + NW, b = y1 + NH / 2, c = x2, e = y2 + NH / 2, mx = (a + c) / 2;
      s += `<path class="edge" d="M${a},${b} C${mx},${b} ${mx},${e} ${c},${e}"/>`;
    }
    d.stages.forEach((st, i) => {
      const [x, y] = nodeXY(st);
      const label = st.id.length > 26 ? st.id.slice(0, 25) + "…" : st.id;
      s += `<g class="node st-${esc(st.state)}" data-i="${i}" data-id="${esc(st.id)}" data-state="${esc(st.state)}" tabindex="0" role="button" aria-label="stage ${esc(st.id)}, ${esc(st.state)}" transform="translate(${x} ${y})">`;
      s += `<title>${esc(tip(st))}</title>`;
      s += `<rect width="${NW}" height="${NH}"/><text x="8" y="16">${esc(label)}</text><text class="kind" x="8" y="31">${esc(st.kind)} · ${esc(st.state)}</text></g>`;
    });
    dag.innerHTML = d.stages.length ? s + "</svg>" : "<p class='muted' style='padding:12px'>The pipeline has no stages yet: add some to mlcycle.yaml.</p>";
    nodes = [...dag.querySelectorAll(".node")];
    if (openId) nodes.find(n => n.dataset.id === openId)?.classList.add("selected");
  };
  draw(data);
  dag.dataset.drawnAt = performance.now().toFixed(0); // since navigation
  const open = (id, focus) => {
    for (const n of dag.querySelectorAll(".node.selected")) n.classList.remove("selected");
    const n = nodes.find(n => n.dataset.id === id);
    if (n) { n.classList.add("selected"); n.scrollIntoView({ block: "nearest", inline: "nearest" }); }
    openId = id;
    const u = new URL(location.href);
    u.searchParams.set("stage", id);
    history.replaceState(null, "", u);
    stagePanel(panel, id, open).then(() => { if (focus) panel.focus(); }).catch(e => { panel.hidden = false; panel.replaceChildren(h("p", { class: "error" }, e.message)); });
  };
  dag.addEventListener("click", e => { const g = e.target.closest(".node"); if (g) open(g.dataset.id); });
  dag.addEventListener("keydown", e => {
    const g = e.target.closest(".node");
    if (g && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); open(g.dataset.id, true); }
  });
  if (q.get("stage")) {
    const s = data.stages.find(x => x.id === q.get("stage"));
    if (s) openSig = tip(s);
    open(q.get("stage"));
  }
  timer = setInterval(() => api("/api/pipeline").then(draw).catch(e => { problem.hidden = false; problem.textContent = e.message; }), 1000);
}

async function stagePanel(panel, id, open) {
  const s = await api(`/api/stage/${encodeURIComponent(id)}`);
  panel.hidden = false;
  const kids = [h("h2", {}, s.id), h("p", {}, s.kind, " ", badge(s.state || "unknown"))];
  if (s.reasons && s.reasons.length) kids.push(h("ul", { "aria-label": "Why it would run" }, s.reasons.map(r => h("li", {}, r))));
  if (s.command) kids.push(h("h2", {}, "Command"), h("pre", {}, typeof s.command === "string" ? s.command : JSON.stringify(s.command)));
  const params = Object.assign({}, s.with || {}, s.params || {});
  if (Object.keys(params).length) {
    kids.push(h("h2", {}, "Params"), h("table", { class: "data" }, Object.entries(params).map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, typeof v === "object" ? JSON.stringify(v) : fmt(v))))));
  }
  if (s.inputs.length) {
    kids.push(h("h2", {}, "Inputs"), h("ul", {}, s.inputs.map(i => h("li", {}, `${i.name}: `, i.from ? h("a", { href: `/pipeline?stage=${encodeURIComponent(i.from.stage)}`, on: { click: e => { e.preventDefault(); e.stopPropagation(); open(i.from.stage); } } }, `${i.from.stage}.${i.from.port}`) : h("code", {}, i.path)))));
  }
  kids.push(h("h2", {}, "Outputs"));
  for (const o of s.outputs) {
    const box = h("div", { class: "output" }, h("p", {}, h("strong", {}, o.name), " ", h("code", {}, o.path), o.exists ? (o.bytes != null ? h("span", { class: "muted" }, ` ${o.bytes} bytes`) : null) : h("span", { class: "muted" }, " (not there yet)")));
    if (o.json && typeof o.json === "object") {
      const rows = [];
      const walk = (p, v) => { if (v && typeof v === "object" && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) walk(p ? `${p}.${k}` : k, x); else if (typeof v !== "object") rows.push([p, v]); };
      walk("", o.json);
      box.append(h("table", { class: "data", "aria-label": `${o.name} values` }, rows.slice(0, 60).map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", { class: "num" }, fmt(v))))));
    }
    if (o.outside) box.append(h("p", { class: "error" }, "a link that leads out of the workspace: not shown"));
    if (o.model) box.append(h("p", { class: "muted" }, `model: ${o.model.kind}, ${o.model.task}, target ${o.model.target ?? "—"}`));
    if (o.table) {
      const t = o.table;
      box.append(h("p", { class: "muted" }, `${t.n_rows} rows × ${t.columns.length} columns`));
      box.append(h("div", { style: "overflow:auto" }, h("table", { class: "data", "aria-label": `${o.name} first rows` },
        h("thead", {}, h("tr", {}, t.columns.map(c => h("th", { scope: "col", title: c.type }, c.name + (c.target ? " (target)" : ""))))),
        h("tbody", {}, t.rows.map(r => h("tr", {}, r.map(v => h("td", { class: "num" }, fmt(v)))))))));
    }
    for (const img of o.images || []) box.append(h("img", { src: `/api/file?path=${encodeURIComponent(img)}`, alt: `plot ${img}`, loading: "lazy" }));
    kids.push(box);
  }
  if (s.history.length) {
    const pts = s.history.slice().reverse().filter(x => x.outcome === "ran").map((x, i) => [i + 1, x.duration_ms]);
    kids.push(h("h2", {}, "Durations"));
    if (pts.length > 1) kids.push(h("div", { class: "chart", html: lineChart(`durations of ${s.id}`, [{ name: "ran", points: pts }], "run (oldest first)", "ms") }));
    kids.push(h("table", { class: "data" }, h("tr", {}, h("th", {}, "run"), h("th", {}, "outcome"), h("th", {}, "time")), s.history.slice(0, 10).map(x => h("tr", {}, h("td", {}, h("a", { href: `/runs/${x.run}` }, `#${x.run}`)), h("td", {}, badge(x.outcome)), h("td", { class: "num" }, ms(x.duration_ms))))));
  }
  if (s.log) kids.push(h("h2", {}, `Last log (run ${s.log.run})`), h("pre", { "aria-label": "log" }, s.log.text == null ? `run ${s.log.run} kept no log for this stage` : s.log.text || "(empty)"));
  panel.replaceChildren(...kids);
}

// ---------- runs ----------
async function runsPage() {
  const { runs } = await api("/api/runs");
  document.title = "runs · mlcycle";
  main.replaceChildren(h("h1", {}, "Runs"), runs.length ? h("table", { class: "data" },
    h("thead", {}, h("tr", {}, ["run", "started", "status", "time", "ran", "fresh", "restored", "failed", "skipped", "command"].map(c => h("th", { scope: "col" }, c)))),
    h("tbody", {}, runs.map(r => h("tr", {}, h("td", {}, h("a", { href: `/runs/${r.id}` }, `#${r.id}`)), h("td", {}, r.started_at), h("td", {}, badge(r.status)), h("td", { class: "num" }, ms(r.duration_ms)),
      ...[r.ran, r.fresh, r.restored, r.failed, r.skipped].map(n => h("td", { class: "num" }, n)), h("td", {}, h("code", {}, r.command)))))) : h("p", { class: "muted" }, "No run recorded yet: `mlcycle run` records one."));
}

async function runPage(id) {
  const { run, stages, logs } = await api(`/api/runs/${id}`);
  document.title = `run ${id} · mlcycle`;
  const timed = stages.filter(s => s.start_ms != null && s.outcome !== "fresh" && s.outcome !== "skipped");
  // lanes: each bar goes in the first lane free at its start
  const lanes = [];
  const placed = timed.slice().sort((a, b) => a.start_ms - b.start_ms).map(s => {
    let l = lanes.findIndex(end => end <= s.start_ms);
    if (l < 0) { l = lanes.length; lanes.push(0); }
    lanes[l] = s.start_ms + Math.max(1, s.duration_ms);
    return { s, l };
  });
  const total = Math.max(1, run.duration_ms || 0, ...placed.map(p => p.s.start_ms + p.s.duration_ms));
  const W = 900, LH = 26, top = 20;
  const x = v => 140 + (v / total) * (W - 160);
  let svg = `<svg class="gantt" viewBox="0 0 ${W} ${top + lanes.length * LH + 24}" width="${W}" role="img" aria-label="Timeline of run ${id}">`;
  for (let i = 0; i < lanes.length; i++) svg += `<text x="8" y="${top + i * LH + 16}" class="muted">worker ${i + 1}</text>`;
  for (const { s, l } of placed) {
    const color = s.outcome === "failed" ? "var(--failed)" : s.outcome === "restored" ? "var(--restorable)" : "var(--fresh)";
    const w = Math.max(2, x(s.start_ms + s.duration_ms) - x(s.start_ms));
    svg += `<g><title>${esc(s.stage)}: ${esc(s.outcome)}, started at ${s.start_ms} ms, took ${s.duration_ms} ms</title><rect x="${x(s.start_ms)}" y="${top + l * LH}" width="${w}" height="${LH - 6}" fill="${color}" opacity=".85"/>`;
    if (w > 60) svg += `<text x="${x(s.start_ms) + 4}" y="${top + l * LH + 14}" style="fill:#fff">${esc(s.stage.slice(0, Math.floor(w / 7)))}</text>`;
    svg += "</g>";
  }
  svg += `<g class="axis"><text x="140" y="12">0</text><text x="${W - 20}" y="12" text-anchor="end">${esc(ms(total))}</text></g></svg>`;
  const logBox = h("pre", { hidden: true, "aria-label": "stage log" });
  if (run.status === "running") timer = setInterval(() => api(`/api/runs/${id}`).then(x => { if (x.run.status !== "running" || x.stages.length !== stages.length) route(); }).catch(() => {}), 1000);
  main.replaceChildren(...[
    h("h1", {}, `Run #${run.id} `, badge(run.status)),
    h("p", { class: "muted" }, `${run.started_at} · ${ms(run.duration_ms)} · ${run.ran} ran, ${run.fresh} fresh, ${run.restored} restored, ${run.failed} failed, ${run.skipped} skipped · `, h("code", {}, run.command)),
    run.error ? h("p", { class: "error" }, run.error) : null,
    h("h2", {}, "Timeline"),
    placed.length ? h("div", { class: "chart", html: svg }) : h("p", { class: "muted" }, "No stage ran in this run (or it was recorded before start times were kept)."),
    h("h2", {}, "Stages"),
    h("table", { class: "data" }, h("thead", {}, h("tr", {}, ["stage", "outcome", "started", "time", "why", "log"].map(c => h("th", { scope: "col" }, c)))),
      h("tbody", {}, stages.map(s => h("tr", {}, h("td", {}, h("a", { href: `/pipeline?stage=${encodeURIComponent(s.stage)}` }, s.stage)), h("td", {}, badge(s.outcome)), h("td", { class: "num" }, s.start_ms == null ? "" : ms(s.start_ms)), h("td", { class: "num" }, s.outcome === "running" ? "…" : ms(s.duration_ms)),
        h("td", {}, [...s.reasons, s.detail].filter(Boolean).join("; ")),
        h("td", {}, logs.includes(s.stage) ? h("button", { "aria-label": `log of ${s.stage}`, on: { click: async () => { const l = await api(`/api/runs/${id}/log/${encodeURIComponent(s.stage)}`); logBox.hidden = false; logBox.textContent = l.text || "(empty)"; logBox.scrollIntoView(); } } }, "log") : null))))),
    logBox].filter(Boolean));
}

// ---------- experiments ----------
let expCache = null;
async function loadExperiments() {
  const d = await api("/api/experiments");
  const n = d.count;
  const cols = [{ name: "experiment", kind: "name", text: d.rows.name || [] }, { name: "status", kind: "status", text: d.rows.status || [] }];
  for (const [kind, list] of [["param", d.params], ["metric", d.metrics]]) {
    for (const c of list) {
      const num = new Float64Array(n);
      let numeric = true;
      for (let i = 0; i < n; i++) {
        const v = c.values[i];
        if (typeof v === "number") num[i] = v;
        else if (v == null) num[i] = NaN;
        else { numeric = false; break; }
      }
      cols.push(numeric ? { name: c.name, kind, num } : { name: c.name, kind, text: c.values.map(v => v == null ? "" : String(v)) });
    }
  }
  for (const c of cols) {
    // constant: the same value in every experiment (a missing value is a
    // value of its own, as in `exp show --only-changed`)
    if (c.num) { let lo = Infinity, hi = -Infinity, gaps = 0; for (const v of c.num) if (v === v) { if (v < lo) lo = v; if (v > hi) hi = v; } else gaps++; c.constant = gaps === n || (gaps === 0 && !(hi > lo)); }
    else c.constant = c.kind !== "name" && new Set(c.text).size <= 1;
  }
  expCache = { n, cols };
  return expCache;
}
// ` (did you mean `x`?)` for the closest name, by edit distance.
function near(name, names) {
  const d = (a, b) => { const m = a.length, n = b.length, r = Array.from({ length: m + 1 }, (_, i) => [i, ...Array(n).fill(0)]); for (let j = 1; j <= n; j++) r[0][j] = j; for (let i = 1; i <= m; i++) for (let j = 1; j <= n; j++) r[i][j] = Math.min(r[i - 1][j] + 1, r[i][j - 1] + 1, r[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)); return r[m][n]; };
  let best = null, bd = Infinity;
  for (const x of names) { const v = d(name, x); if (v < bd) { bd = v; best = x; } }
  return best != null && bd <= Math.max(2, name.length / 3) ? ` (did you mean \`${best}\`?)` : "";
}
function parseFilter(text, cols) {
  // `metric>0.9 lr=0.1 name-part`: comparisons on columns, else a name substring
  const tests = [];
  for (const tok of text.split(/[\s,]+/).filter(Boolean)) {
    const m = tok.match(/^(.+?)(>=|<=|!=|=|>|<)(.+)$/);
    const c = m && cols.find(c => c.name === m[1]);
    if (m && !c) throw new Error(`no column \`${m[1]}\`${near(m[1], cols.map(c => c.name))}`);
    if (!c) { const t = tok.toLowerCase(); tests.push(i => cols[0].text[i].toLowerCase().includes(t)); continue; }
    const op = m[2], raw = m[3], x = Number(raw);
    if (c.num && !Number.isFinite(x) && raw !== "") throw new Error(`\`${c.name}\` holds numbers; \`${raw}\` is not one`);
    if (c.num && Number.isFinite(x)) {
      const f = { ">": (a, b) => a > b, "<": (a, b) => a < b, ">=": (a, b) => a >= b, "<=": (a, b) => a <= b, "=": (a, b) => a === b, "!=": (a, b) => a !== b }[op];
      tests.push(i => f(c.num[i], x));
    } else {
      tests.push(i => { const v = c.text ? c.text[i] : fmt(c.num[i]); return op === "!=" ? v !== raw : v === raw; });
    }
  }
  return tests;
}
async function experimentsPage(q) {
  document.title = "experiments · mlcycle";
  const t0 = performance.now();
  const { n, cols } = await loadExperiments();
  if (!n) { main.replaceChildren(h("h1", {}, "Experiments"), h("p", { class: "muted" }, "No experiment recorded yet: `mlcycle exp run -S KEY=V1,V2` records some.")); return; }
  let sortBy = q.get("sort") || "", order = q.get("order") === "asc" ? 1 : -1, filter = q.get("filter") || "", changed = q.get("changed") === "1";
  const selected = new Set((q.get("select") || "").split(",").filter(Boolean));
  const ROW = 26;
  const grid = h("div", { class: "grid", role: "grid", "aria-label": "Experiments", tabindex: "0" });
  const status = h("span", { class: "muted", "aria-live": "polite", id: "exp-status" });
  const cmp = h("button", { disabled: true, on: { click: () => go(`/experiments/compare?names=${[...selected].map(encodeURIComponent).join(",")}`) } }, "Compare selected");
  const filterIn = h("input", { type: "search", id: "exp-filter", value: filter, placeholder: "name or metric>0.9", "aria-label": "Filter experiments" });
  const changedIn = h("input", { type: "checkbox", id: "exp-changed", checked: changed });
  main.replaceChildren(h("h1", {}, `Experiments (${n})`),
    h("div", { class: "toolbar" }, h("label", { for: "exp-filter" }, "Filter "), filterIn, h("label", {}, changedIn, " only changed columns"), cmp, status), grid);
  let view = new Uint32Array(0), shown = [];
  const widths = c => c.kind === "name" ? 200 : c.kind === "status" ? 90 : Math.min(180, Math.max(90, c.name.length * 7.5));
  const head = h("div", { class: "head", role: "row" });
  const body = h("div", { class: "body", role: "rowgroup" });
  grid.append(head, body);
  const syncUrl = () => {
    const u = new URL(location.href);
    for (const [k, v] of [["sort", sortBy], ["order", order > 0 ? "asc" : ""], ["filter", filter], ["changed", changed ? "1" : ""], ["select", [...selected].join(",")]]) v ? u.searchParams.set(k, v) : u.searchParams.delete(k);
    history.replaceState(null, "", u);
  };
  const header = () => {
    shown = cols.filter(c => !changed || !c.constant || c.kind === "name" || c.kind === "status");
    const refocus = head.contains(document.activeElement);
    head.replaceChildren(h("span", { class: "sel", role: "columnheader", "aria-label": "Select for comparison" }, ""), ...shown.map(c => h("span", {
      role: "columnheader", "aria-sort": c.name === sortBy ? (order > 0 ? "ascending" : "descending") : "none", style: `width:${widths(c)}px;flex:none;display:flex`,
    }, h("button", {
      class: c.kind, style: "width:100%", title: `${c.kind}: ${c.name} (sort)`, "data-col": c.name,
      on: { click: () => { if (sortBy === c.name) order = -order; else { sortBy = c.name; order = c.kind === "name" ? 1 : -1; } recompute(); } },
    }, c.name + (c.name === sortBy ? (order > 0 ? " ▲" : " ▼") : "")))));
    if (refocus) [...head.querySelectorAll("button")].find(b => b.dataset.col === sortBy)?.focus();
  };
  const render = () => {
    const first = Math.max(0, Math.floor(grid.scrollTop / ROW) - 5);
    const last = Math.min(view.length, first + Math.ceil(grid.clientHeight / ROW) + 10);
    const rows = [];
    for (let k = first; k < last; k++) {
      const i = view[k];
      const name = cols[0].text[i];
      const cells = shown.map(c => {
        const w = widths(c);
        if (c.kind === "name") return `<span class="cell" role="gridcell" style="width:${w}px"><a href="/experiments/compare?names=${encodeURIComponent(name)}">${esc(name)}</a></span>`;
        if (c.kind === "status") return `<span class="cell" role="gridcell" style="width:${w}px"><span class="badge b-${esc(c.text[i])}">${esc(c.text[i])}</span></span>`;
        const v = c.num ? c.num[i] : c.text[i];
        return `<span class="cell ${c.num ? "num" : ""} ${c.kind}" role="gridcell" style="width:${w}px">${esc(c.num ? (v === v ? fmt(v) : "") : v)}</span>`;
      }).join("");
      rows.push(`<div class="row" role="row" style="top:${k * ROW}px" data-name="${esc(name)}"><span class="sel"><input type="checkbox" aria-label="select ${esc(name)}" ${selected.has(name) ? "checked" : ""}></span>${cells}</div>`);
    }
    body.innerHTML = rows.join("");
  };
  const recompute = () => {
    const s0 = performance.now();
    let tests;
    try {
      tests = parseFilter(filter, cols);
      filterIn.removeAttribute("aria-invalid");
    } catch (e) {
      filterIn.setAttribute("aria-invalid", "true");
      status.textContent = `Filter: ${e.message}`;
      return;
    }
    const idx = [];
    for (let i = 0; i < n; i++) if (tests.every(t => t(i))) idx.push(i);
    view = Uint32Array.from(idx);
    const c = cols.find(c => c.name === sortBy);
    if (c && c.num) {
      const a = c.num;
      view.sort((x, y) => { const u = a[x], v = a[y]; if (u !== u) return v !== v ? 0 : 1; if (v !== v) return -1; return (u - v) * order; });
    } else if (c) {
      const a = c.text;
      view.sort((x, y) => order * (a[x] < a[y] ? -1 : a[x] > a[y] ? 1 : 0));
    }
    const took = performance.now() - s0;
    grid.dataset.sortMs = took.toFixed(1);
    status.textContent = `${view.length} of ${n} shown${c ? `, sorted by ${c.name} in ${took.toFixed(0)} ms` : ""}`;
    body.style.height = `${view.length * ROW}px`;
    header();
    render();
    syncUrl();
  };
  grid.addEventListener("scroll", () => requestAnimationFrame(render), { passive: true });
  body.addEventListener("change", e => {
    const row = e.target.closest(".row");
    if (!row) return;
    if (e.target.checked) selected.add(row.dataset.name); else selected.delete(row.dataset.name);
    cmp.disabled = selected.size < 2;
    cmp.textContent = `Compare selected (${selected.size})`;
    syncUrl();
  });
  let ft = null;
  filterIn.addEventListener("input", () => { clearTimeout(ft); ft = setTimeout(() => { filter = filterIn.value; recompute(); }, 120); });
  changedIn.addEventListener("change", () => { changed = changedIn.checked; recompute(); });
  cmp.disabled = selected.size < 2;
  recompute();
  grid.dataset.readyMs = (performance.now() - t0).toFixed(0);
  grid.dataset.readyAt = performance.now().toFixed(0); // since navigation
  grid.dataset.ready = "1";
}

async function comparePage(q) {
  const names = (q.get("names") || "").split(",").filter(Boolean);
  document.title = `compare ${names.join(", ")} · mlcycle`;
  const { experiments: ex } = await api(`/api/experiments/compare?names=${names.map(encodeURIComponent).join(",")}`);
  const kids = [h("h1", {}, names.length > 1 ? `Compare ${names.length} experiments` : `Experiment ${names[0]}`), h("p", {}, h("a", { href: "/experiments" }, "← all experiments"))];
  // params and metrics, with the change against the first
  const table = (title, key) => {
    const keys = [...new Set(ex.flatMap(e => Object.keys(e[key] || {})))];
    if (!keys.length) return null;
    return [h("h2", {}, title), h("table", { class: "data", "aria-label": title },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, key === "params" ? "param" : "metric"), ex.map((e, j) => h("th", { scope: "col" }, e.name + (j ? " (Δ)" : ""))))),
      h("tbody", {}, keys.map(k => {
        const vals = ex.map(e => (e[key] || {})[k]);
        const differ = new Set(vals.map(v => JSON.stringify(v))).size > 1;
        return h("tr", { class: differ ? "changed" : "" }, h("th", { scope: "row" }, k), vals.map((v, j) => {
          let txt = typeof v === "object" && v != null ? JSON.stringify(v) : fmt(v);
          if (j && typeof v === "number" && typeof vals[0] === "number" && v !== vals[0]) txt += ` (${v - vals[0] > 0 ? "+" : ""}${fmt(v - vals[0])})`;
          return h("td", { class: "num" }, txt);
        }));
      })))];
  };
  kids.push(h("p", {}, ex.map(e => h("span", {}, badge(e.status), ` ${e.name} `, e.commit ? h("code", {}, e.commit.slice(0, 10)) : null, ACTIONS && e.status === "done" ? h("button", { on: { click: async ev => { if (!confirm(`Write the params of ${e.name} into your files and restore its outputs?`)) return; ev.target.disabled = true; try { const r = await act("apply", { name: e.name }); live.textContent = r.ok ? `Applied ${e.name}` : r.output; } catch (x) { live.textContent = x.message; } } } }, `Apply ${e.name}`) : null, " "))));
  for (const e of ex) if (e.error) kids.push(h("p", { class: "error" }, `${e.name}: ${e.error}`));
  kids.push(table("Params", "params"), table("Metrics", "metrics"));
  // scatter of a metric against a param, and parallel coordinates
  const numKeys = key => [...new Set(ex.flatMap(e => Object.entries(e[key] || {}).filter(([, v]) => typeof v === "number").map(([k]) => k)))];
  const varies = (g, k) => new Set(ex.map(e => e[g][k])).size > 1;
  // Metrics that differ, a whole stage's (`eval.rmse`) before a matrix
  // instance's (`fold_eval@0.rmse`).
  const pk = numKeys("params").filter(k => varies("params", k));
  const mk = numKeys("metrics").filter(k => varies("metrics", k)).sort((a, b) => (a.split(".")[0].includes("@") - b.split(".")[0].includes("@")));
  if (ex.length > 1 && pk.length && mk.length) {
    const xs = h("select", { id: "scatter-x", "aria-label": "param on the x axis" }, pk.map(k => h("option", {}, k)));
    const ys = h("select", { id: "scatter-y", "aria-label": "metric on the y axis" }, mk.map(k => h("option", {}, k)));
    const box = h("div", { class: "chart", id: "scatter" });
    const drawScatter = () => {
      const W = 460, H = 280, m = 52, xk = xs.value, yk = ys.value;
      const pts = ex.map(e => [e.params[xk], e.metrics[yk], e.name]).filter(p => typeof p[0] === "number" && typeof p[1] === "number");
      const xr = extent(pts.map(p => p[0])), yr = extent(pts.map(p => p[1]));
      const sx = scale(xr[0], xr[1], m + 10, W - 20), sy = scale(yr[0], yr[1], H - m - 10, 16);
      let s = `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(yk)} against ${esc(xk)}">` + axes(W, H, m, xk, yk, sx, sy, xr, yr);
      pts.forEach((p, i) => { s += `<circle cx="${sx(p[0])}" cy="${sy(p[1])}" r="5" fill="${PALETTE[i % PALETTE.length]}"><title>${esc(p[2])}: ${esc(fmt(p[0]))}, ${esc(fmt(p[1]))}</title></circle>`; });
      box.innerHTML = s + "</svg>";
    };
    xs.addEventListener("change", drawScatter); ys.addEventListener("change", drawScatter);
    kids.push(h("h2", {}, "Metric against param"), h("div", { class: "toolbar" }, h("label", { for: "scatter-x" }, "x"), xs, h("label", { for: "scatter-y" }, "y"), ys), box);
    whenVisible(box, drawScatter);
    const axesKeys = [...pk.map(k => ["params", k]), ...mk.slice(0, 8).map(k => ["metrics", k])];
    const pc = h("div", { class: "chart", id: "parallel" });
    whenVisible(pc, () => {
      const W = Math.max(460, axesKeys.length * 120), H = 260, top = 30, bot = H - 30;
      const ax = i => 40 + (i * (W - 80)) / Math.max(1, axesKeys.length - 1);
      const sc = axesKeys.map(([g, k]) => { const r = extent(ex.map(e => e[g][k])); return scale(r[0], r[1], bot, top); });
      let s = `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="Parallel coordinates">`;
      axesKeys.forEach(([g, k], i) => { s += `<g class="axis"><line x1="${ax(i)}" y1="${top}" x2="${ax(i)}" y2="${bot}"/><text x="${ax(i)}" y="${H - 10}" text-anchor="middle">${esc(k)}</text></g>`; });
      ex.forEach((e, j) => {
        const d = axesKeys.map(([g, k], i) => { const v = e[g][k]; return typeof v === "number" ? `${ax(i)},${sc[i](v).toFixed(1)}` : null; }).filter(Boolean);
        s += `<polyline points="${d.join(" ")}" fill="none" stroke="${PALETTE[j % PALETTE.length]}" stroke-width="2"><title>${esc(e.name)}</title></polyline>`;
      });
      pc.innerHTML = s + "</svg>";
    });
    kids.push(h("h2", {}, "Parallel coordinates"), pc);
  }
  // step-wise metrics (loss curves), overlaid per metric
  const stepKeys = new Set();
  for (const e of ex) for (const lines of Object.values(e.steps || {})) for (const l of lines) for (const [k, v] of Object.entries(l)) if (k !== "step" && typeof v === "number") stepKeys.add(k);
  if (stepKeys.size) {
    const charts = h("div", { class: "charts" });
    for (const k of stepKeys) {
      const box = h("div", { class: "chart", "data-metric": k });
      whenVisible(box, () => {
        const series = [];
        for (const e of ex) for (const [stage, lines] of Object.entries(e.steps || {})) {
          const pts = lines.map((l, i) => [typeof l.step === "number" ? l.step : i, l[k]]).filter(p => typeof p[1] === "number");
          if (pts.length) series.push({ name: `${e.name} ${stage}`, points: pts });
        }
        box.innerHTML = lineChart(k, series, "step", k);
      });
      charts.append(box);
    }
    kids.push(h("h2", {}, "Step-wise metrics"), charts);
  }
  main.replaceChildren(...kids.flat().filter(Boolean));
}

// ---------- models ----------
async function modelsPage() {
  document.title = "models · mlcycle";
  const d = await api("/api/models");
  const serveBox = h("div", { id: "serve" });
  const kids = [h("h1", {}, "Models")];
  if (!d.versions.length) kids.push(h("p", { class: "muted" }, "No model registered yet: a `deploy.promote` stage registers bundles."));
  else {
    kids.push(h("p", {}, "Champion: ", d.champion != null ? h("strong", {}, `version ${d.champion}`) : "none",
      ACTIONS && d.events.length > 1 ? h("button", { on: { click: async () => { if (!confirm("Make the previous champion the champion again? A running mlcycle serve switches to it.")) return; try { const r = await act("rollback"); route(r.ok ? "Rolled back" : r.output); } catch (e) { live.textContent = e.message; } } } }, " Roll back") : null));
    const mkeys = [...new Set(d.versions.flatMap(v => Object.entries(v.metrics || {}).filter(([, x]) => typeof x === "number").map(([k]) => k)))].slice(0, 6);
    kids.push(h("h2", {}, "Versions"), h("table", { class: "data", "aria-label": "Registered versions" },
      h("thead", {}, h("tr", {}, ["version", "name", "kind", "task", "stage", "created", ...mkeys, ""].map(c => h("th", { scope: "col" }, c)))),
      h("tbody", {}, d.versions.map(v => h("tr", { class: v.version === d.champion ? "changed" : "" }, h("td", {}, `${v.version}${v.version === d.champion ? " ★" : ""}`), h("td", {}, v.name), h("td", {}, v.kind), h("td", {}, v.task), h("td", {}, v.stage), h("td", {}, v.created_at),
        ...mkeys.map(k => h("td", { class: "num" }, fmt((v.metrics || {})[k]))),
        h("td", {}, ACTIONS && v.version !== d.champion ? h("button", { "aria-label": `Promote version ${v.version}`, on: { click: async () => { if (!confirm(`Make version ${v.version} the champion? A running mlcycle serve switches to it.`)) return; try { const r = await act("promote", { version: v.version }); route(r.ok ? `Version ${v.version} is the champion` : r.output); } catch (e) { live.textContent = e.message; } } } }, "Promote") : null))))));
  }
  if (d.decisions.length) {
    const box = h("div", { class: "chart", id: "decisions" });
    whenVisible(box, () => {
      const W = 720, H = 300, m = 56, n = d.decisions.length;
      const vals = d.decisions.flatMap(x => [x.candidate_value, x.champion_value]).filter(v => typeof v === "number");
      const yr = extent(vals), xs = scale(0, Math.max(1, n - 1), m + 10, W - 60), ys = scale(yr[0], yr[1], H - m, 16);
      const rows = d.decisions.map(x => x.train_rows || 0), rmax = Math.max(1, ...rows);
      let s = `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="Promotion decisions over time">` + axes(W, H, m, "decision (oldest first)", d.decisions[0].metric, xs, ys, [0, Math.max(1, n - 1)], yr);
      d.decisions.forEach((x, i) => { const bh = (rows[i] / rmax) * (H - m - 20); s += `<rect x="${xs(i) - 6}" y="${H - m - bh}" width="12" height="${bh}" fill="var(--line)"><title>${x.train_rows ?? "?"} training rows</title></rect>`; });
      const line = (key, color) => { const p = d.decisions.map((x, i) => typeof x[key] === "number" ? `${xs(i)},${ys(x[key])}` : null).filter(Boolean); return `<polyline points="${p.join(" ")}" fill="none" stroke="${color}" stroke-width="2"/>`; };
      s += line("champion_value", "var(--muted)") + line("candidate_value", "var(--accent)");
      d.decisions.forEach((x, i) => { if (typeof x.candidate_value === "number") s += `<circle cx="${xs(i)}" cy="${ys(x.candidate_value)}" r="5" fill="${x.promoted ? "var(--fresh)" : "var(--failed)"}"><title>${esc(x.at)}: candidate ${x.candidate} ${esc(fmt(x.candidate_value))} vs champion ${esc(fmt(x.champion_value))}: ${x.promoted ? "promoted" : "kept"}. ${esc(x.message)}</title></circle>`; });
      s += `<text x="${W - 8}" y="20" text-anchor="end" style="fill:var(--accent)">candidate</text><text x="${W - 8}" y="34" text-anchor="end" style="fill:var(--muted)">champion</text>`;
      box.innerHTML = s + "</svg>";
    });
    kids.push(h("h2", {}, "Promotion decisions"), h("p", { class: "muted" }, "Dots: green promoted, red kept the champion; bars: the candidate's training rows."), box,
      h("table", { class: "data" }, h("thead", {}, h("tr", {}, ["when", "candidate", "champion", "metric", "candidate", "champion", "rows", "decision"].map(c => h("th", { scope: "col" }, c)))),
        h("tbody", {}, d.decisions.slice().reverse().map(x => h("tr", {}, h("td", {}, x.at), h("td", {}, x.candidate), h("td", {}, x.champion ?? ""), h("td", {}, x.metric), h("td", { class: "num" }, fmt(x.candidate_value)), h("td", { class: "num" }, fmt(x.champion_value)), h("td", { class: "num" }, x.train_rows ?? ""), h("td", {}, x.promoted ? "promoted" : "kept"))))));
  }
  if (d.events.length) kids.push(h("h2", {}, "Champion history"), h("ul", {}, d.events.slice().reverse().map(e => h("li", {}, `${e.at}: version ${e.version} (${e.action}${e.previous != null ? `, was ${e.previous}` : ""}) ${e.reason}`))));
  kids.push(h("h2", {}, "Serving"), serveBox);
  main.replaceChildren(...kids);
  let last = null;
  const showServe = s => {
    if (!s || !s.up) { serveBox.replaceChildren(h("p", { class: "muted" }, s ? `mlcycle serve at ${s.addr} does not answer` : "No `mlcycle serve` of this workspace is running.")); last = null; return; }
    const now = performance.now();
    const rate = last ? ((s.requests - last.requests) / ((now - last.t) / 1000)) : null;
    last = { requests: s.requests, t: now };
    serveBox.replaceChildren(h("table", { class: "data", "aria-label": "Live serving" },
      h("tr", {}, h("th", { scope: "row" }, "address"), h("td", {}, s.addr)),
      h("tr", {}, h("th", { scope: "row" }, "requests"), h("td", { class: "num" }, fmt(s.requests))),
      h("tr", {}, h("th", { scope: "row" }, "request rate"), h("td", { class: "num" }, rate == null ? "…" : `${rate.toFixed(1)}/s`)),
      h("tr", {}, h("th", { scope: "row" }, "mean latency"), h("td", { class: "num" }, s.mean_latency_ms == null ? "" : `${s.mean_latency_ms.toFixed(2)} ms`)),
      h("tr", {}, h("th", { scope: "row" }, "feedback"), h("td", { class: "num" }, fmt(s.feedback)))));
  };
  showServe(d.serve);
  timer = setInterval(() => api("/api/models").then(x => showServe(x.serve)).catch(() => {}), 2000);
}

route();
