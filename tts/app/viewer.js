// The run viewer's page logic (inlined into view.html by tts/app/viewer.py): a sortable, filterable problem table
// and, for the problem clicked, its timeline (SVG drawn here), samples, votes and decisions.
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const $ = (s) => document.querySelector(s);
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
let filter = "all", sortKey = "id", sortDir = 1, selected = null;
for (const p of D.problems) p.nsamples = p.samples.length;

function header() {
  const s = D.summary, c = D.config;
  $("#run").textContent = D.run;
  const acc = s.accuracy === null || s.accuracy === undefined ? `<b>not graded</b>` :
    `<b>accuracy ${s.accuracy.toFixed(3)}</b> (${s.correct}/${s.graded ?? s.problems}, 95% CI ` +
    `${s.accuracy_ci95[0].toFixed(3)}–${s.accuracy_ci95[1].toFixed(3)})`;
  $("#summary").innerHTML = (D.simulated ? `<span class="tag" id="simulated" style="background:#b35900">SIMULATOR: ` +
    `invented answers, not a model's</span>` : "") +
    `<span>${acc}</span><span>${esc(c.task)} · ${esc(c.strategy)} · ${esc(c.engine)}` +
    `${c.model ? " · " + esc(c.model) : ""}</span><span>${s.completion_tokens.toLocaleString()} tokens generated</span>` +
    `<span>${s.calls.toLocaleString()} calls</span><span>stopped early: ${s.stopped_early}</span>` +
    (s.verify_calls ? `<span id="verification">verification: ${s.verify_calls} calls, ` +
      `${s.verify_completion_tokens.toLocaleString()} generated + ${s.verify_prompt_tokens.toLocaleString()} prompt ` +
      `tokens (of the totals)</span>` : "") +
    `<span>wall ${s.wall_seconds.toFixed(1)} s</span>`;
}

function visible(p) {
  const q = $("#search").value.trim();
  if (q && !p.id.includes(q)) return false;
  if (filter === "correct") return p.correct === true;
  if (filter === "wrong") return p.correct === false;
  if (filter === "stopped") return p.stopped;
  return true;
}

// ids and answers compare as people read them: gsm8k-2 before gsm8k-10
const natural = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
function compare(x, y) {
  if (x === y) return 0;
  if (typeof x === "number" && typeof y === "number") return x < y ? -1 : 1;
  return natural.compare(String(x ?? ""), String(y ?? ""));
}

function table() {
  const rows = D.problems.filter(visible).sort((a, b) => compare(a[sortKey], b[sortKey]) * sortDir);
  $("#count").textContent = `${rows.length} of ${D.problems.length} problems`;
  $("#problems tbody").innerHTML = rows.map((p) =>
    `<tr class="row${p.id === selected ? " sel" : ""}" data-id="${esc(p.id)}"><td>${esc(p.id)}</td>` +
    `<td class="${p.correct ? "ok" : "bad"}">${p.correct === null ? "" : p.correct ? "✓" : "✗"}</td>` +
    `<td>${esc(p.answer)}</td><td>${esc(p.gold)}</td><td>${p.nsamples}</td><td>${p.tokens}</td>` +
    `<td>${Number(p.seconds).toFixed(2)}</td><td>${p.stopped ? "yes" : ""}</td></tr>`).join("");
}

function timeline(p) {
  const rowH = 18, left = 150, width = 620, bars = p.bars;
  const span = Math.max(1e-6, ...bars.map((b) => b[4]));
  const x = (t) => left + (t / span) * width;
  const w = left + width + 150, h = bars.length * rowH + 40;
  let svg = `<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 ${w} ${h}" ` +
    `style="max-width:${w}px" font-size="10">`;
  bars.forEach(([name, depth, label, start, end, outcome, answer, tokens, right, verify], i) => {
    const y = 20 + i * rowH, colour = (D.outcomes[outcome] || ["#999"])[0];
    // the outline says whether the branch's answer is right (green) or wrong (red); none where it cannot be graded
    const edge = right === true ? ` stroke="#1a7f37" stroke-width="2"` : right === false ? ` stroke="#cf222e" stroke-width="2"` : "";
    const mark = right === true ? "✓ " : right === false ? "✗ " : "";
    svg += `<text x="${4 + 8 * (depth - 1)}" y="${y + 12}" font-family="monospace">${esc(name)} ${esc(label)}</text>` +
      `<rect class="bar" data-outcome="${outcome}" x="${x(start)}" y="${y + 2}" width="${Math.max(1, x(end) - x(start))}" ` +
      `height="${rowH - 5}" fill="${colour}"${edge} data-right="${right}"><title>${esc(name)}: ` +
      `${esc((D.outcomes[outcome] || ["", outcome])[1])}, ${tokens} tokens, ${start.toFixed(2)}–${end.toFixed(2)} s` +
      `</title></rect><text x="${x(end) + 4}" y="${y + 12}">${mark}${answer === null ? "" : esc(answer) + " · "}` +
      `${tokens} tok${verify ? ` · judge ${verify} tok` : ""}</text>`;
  });
  for (const [t, what] of p.decisions) {
    if (what.startsWith("branch ")) continue;
    svg += `<line x1="${x(t)}" x2="${x(t)}" y1="12" y2="${20 + bars.length * rowH}" stroke="#555" stroke-dasharray="4 3"/>` +
      `<text x="${x(t) + 3}" y="10">${esc(what.slice(0, 70))}</text>`;
  }
  svg += `<text x="${left}" y="${bars.length * rowH + 36}">0 s</text>` +
    `<text x="${left + width}" y="${bars.length * rowH + 36}" text-anchor="end">${span.toFixed(2)} s</text></svg>`;
  const legend = Object.entries(D.outcomes).filter(([k]) => bars.some((b) => b[5] === k))
    .map(([, [c, l]]) => `<span class="tag" style="background:${c}">${esc(l)}</span>`).join(" ");
  return legend + "<br>" + svg;
}

function detail(id) {
  const p = D.problems.find((q) => q.id === id);
  selected = id;
  const votes = Object.entries(p.votes).sort((a, b) => b[1] - a[1]).map(([a, v]) => `${esc(a)}: ${v}`).join(", ");
  const samples = p.samples.map(([i, ans, tok, st, text, score]) =>
    `<details><summary>#${i} <b>${esc(ans)}</b> · ${tok} tok · ${esc(st)}` +
    `${score === null || score === undefined ? "" : ` · <span class="score">score ${Number(score).toFixed(3)}</span>`}` +
    `</summary><pre>${esc(text)}</pre></details>`).join("");
  const [vcalls, vprompt, vgen] = p.verify || [0, 0, 0];
  const verify = vcalls ? `; <span id="problem-verification">verification ${vcalls} calls, ${vprompt} prompt + ${vgen} ` +
    "generated tokens</span>" : "";
  const decisions = p.decisions.map(([t, what]) => `<li>${t.toFixed(2)} s: ${esc(what)}</li>`).join("");
  const prompts = (p.prompts || []).map(([pid, text, sampling]) =>
    `<details><summary>prompt ${esc(pid)} · ${sampling.map((x) => esc(JSON.stringify(x))).join("; ")}</summary>` +
    `<pre>${esc(typeof text === "string" ? text : text.map((m) => `[${m.role}]\n${m.content}`).join("\n\n"))}` +
    `</pre></details>`).join("");
  const seen = p.question === undefined ? "" : `<h3>question</h3><pre id="question">${esc(p.question)}</pre>` +
    `<h3>what the model saw (${(p.prompts || []).length} distinct prompts)</h3><div id="prompts">${prompts}</div>`;
  const meta = Object.keys(p.meta).length ? `<h3>strategy record</h3><pre>${esc(JSON.stringify(p.meta, null, 1))}</pre>` : "";
  $("#right").innerHTML = `<h2 id="detail-title">${esc(p.id)} <span class="${p.correct ? "ok" : "bad"}">` +
    `${p.correct ? "right" : "wrong"}</span></h2><p>answer <b>${esc(p.answer)}</b>, gold <b>${esc(p.gold)}</b>; ` +
    `votes ${votes || "none"}; ${p.tokens} tokens in ${p.calls} calls, ${Number(p.seconds).toFixed(2)} s${verify}` +
    `${p.tie ? '<br><span id="tie">' + esc(p.tie) + "</span>" : ""}` +
    `${p.note ? "<br>note: " + esc(p.note) : ""}${p.error ? '<br><span class="bad">error: ' + esc(p.error) + "</span>" : ""}` +
    `</p>${seen}<h3>timeline</h3>${p.bars.length ? timeline(p) : '<p class="muted">no trace for this problem</p>'}` +
    `<h3>decisions</h3><ul id="decisions">${decisions || "<li>none</li>"}</ul>${meta}` +
    `<h3>samples (${p.samples.length})</h3><div id="samples">${samples}</div>`;
  // mark the selected row without redrawing the table (a 1,000-row table redraw was most of a click's time)
  document.querySelectorAll("#problems tr.sel").forEach((tr) => tr.classList.remove("sel"));
  const row = document.querySelector(`#problems tr[data-id="${CSS.escape(id)}"]`);
  if (row) row.classList.add("sel");
}

document.querySelectorAll("#filters button").forEach((b) => b.addEventListener("click", () => {
  filter = b.dataset.f;
  document.querySelectorAll("#filters button").forEach((x) => x.classList.toggle("on", x === b));
  table();
}));
document.querySelectorAll("th").forEach((th) => th.addEventListener("click", () => {
  sortDir = sortKey === th.dataset.k ? -sortDir : 1;
  sortKey = th.dataset.k;
  table();
}));
$("#search").addEventListener("input", table);
$("#problems tbody").addEventListener("click", (e) => {
  const tr = e.target.closest("tr.row");
  if (tr) detail(tr.dataset.id);
});
header();
table();
