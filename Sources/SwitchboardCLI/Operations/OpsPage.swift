/// The operations page: live figures of this node, fed by `ops.stats` events in the operations
/// room (``OpsFeed``), through `/switchboard.js` like any client. `__OPS_ROOM__` is replaced by
/// the room's name when served.
enum OpsPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchboard operations</title>
<style>
  :root { --ink: #1d2330; --muted: #667085; --line: #e4e7ec; --accent: #3355ff; --ok: #12b76a; --bad: #f04438; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #f6f7fb; }
  header { padding: 16px 28px; background: #111827; color: #fff; display: flex; align-items: center; gap: 14px; }
  header h1 { margin: 0; font-size: 19px; }
  header .node { color: #c7cbd6; font-family: ui-monospace, monospace; font-size: 12px; }
  .badge { padding: 2px 10px; border-radius: 99px; font-weight: 600; font-size: 12px; background: #344054; }
  .badge.ok { background: #d1fadf; color: #05603a; } .badge.bad { background: #fee4e2; color: #912018; }
  #live { margin-left: auto; }
  main { padding: 18px 28px; display: grid; grid-template-columns: repeat(4, 1fr); gap: 14px; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
  .card h2 { margin: 0 0 4px; font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); }
  .card .number { font-size: 28px; font-weight: 650; font-variant-numeric: tabular-nums; }
  .card .sub { color: var(--muted); font-size: 12px; }
  .wide { grid-column: span 2; }
  svg { width: 100%; height: 60px; display: block; margin-top: 6px; }
  polyline { fill: none; stroke: var(--accent); stroke-width: 2; }
  table { width: 100%; border-collapse: collapse; font-size: 13px; }
  td { padding: 3px 0; border-bottom: 1px solid #f0f1f5; } td:last-child { text-align: right; font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<header>
  <h1>Switchboard operations</h1>
  <span class="node" id="node"></span>
  <span class="badge" id="ready">…</span>
  <span class="badge" id="live">connecting</span>
</header>
<main>
  <div class="card"><h2>Connections</h2><div class="number" data-figure="connections">–</div><svg data-chart="connections"><polyline/></svg></div>
  <div class="card"><h2>Rooms</h2><div class="number" data-figure="rooms">–</div><div class="sub">with a member on this node</div></div>
  <div class="card"><h2>Messages in / s</h2><div class="number" data-figure="messagesInPerSecond">–</div><svg data-chart="messagesInPerSecond"><polyline/></svg></div>
  <div class="card"><h2>Deliveries / s</h2><div class="number" data-figure="deliveriesPerSecond">–</div><svg data-chart="deliveriesPerSecond"><polyline/></svg></div>
  <div class="card"><h2>Bytes out / s</h2><div class="number" data-figure="bytesOutPerSecond">–</div><svg data-chart="bytesOutPerSecond"><polyline/></svg></div>
  <div class="card"><h2>Slow consumers closed</h2><div class="number" data-figure="slowConsumerCloses">–</div><div class="sub">4008, since start</div></div>
  <div class="card"><h2>Rate limited</h2><div class="number" data-figure="rateLimitedEvents">–</div><div class="sub"><span data-figure="rateLimitCloses">–</span> closed (1008), <span data-figure="rateLimitedHandshakes">–</span> handshakes refused</div></div>
  <div class="card"><h2>Resumes</h2><div class="number" data-figure="replayedEvents">–</div><div class="sub">events replayed, <span data-figure="refreshes">–</span> refreshes</div></div>
  <div class="card wide"><h2>Close codes</h2><table id="closes"></table></div>
  <div class="card wide"><h2>Handshakes</h2><table id="handshakes"></table></div>
</main>
<script type="module">
import { Switchboard } from "/switchboard.js";

const room = "__OPS_ROOM__";
const key = new URLSearchParams(location.search).get("key") ?? "";
const history = {};
window.__ops = { stats: null, updates: 0, state: "connecting", seen: [] };
const format = (value) => value >= 1e6 ? `${(value / 1e6).toFixed(1)} M` : value >= 1e4 ? `${(value / 1e3).toFixed(1)} k` : `${Math.round(value * 10) / 10}`;

function table(id, entries) {
  const rows = Object.entries(entries).sort((a, b) => b[1] - a[1]);
  document.getElementById(id).replaceChildren(...(rows.length ? rows : [["none yet", ""]]).map(([name, count]) => {
    const tr = document.createElement("tr");
    for (const text of [name, count === "" ? "" : format(count)]) tr.append(Object.assign(document.createElement("td"), { textContent: text }));
    return tr;
  }));
}

function chart(name, value) {
  const points = (history[name] ??= []);
  points.push(value);
  if (points.length > 60) points.shift();
  const max = Math.max(1, ...points);
  const svg = document.querySelector(`[data-chart="${name}"]`);
  if (!svg) return;
  const width = svg.clientWidth || 300;
  svg.querySelector("polyline").setAttribute("points", points.map((v, i) => `${(i / 59) * width},${58 - (v / max) * 54}`).join(" "));
}

function show(stats) {
  window.__ops.stats = stats;
  window.__ops.updates += 1;
  if (!window.__ops.seen.includes(stats.connections)) window.__ops.seen.push(stats.connections);
  document.getElementById("node").textContent = `node ${stats.node} · up ${Math.round(stats.uptimeSeconds)} s`;
  const ready = document.getElementById("ready");
  ready.textContent = stats.ready ? "ready" : `not ready: ${stats.notReadyReason}`;
  ready.className = `badge ${stats.ready ? "ok" : "bad"}`;
  for (const element of document.querySelectorAll("[data-figure]")) element.textContent = format(stats[element.dataset.figure] ?? 0);
  for (const name of ["connections", "messagesInPerSecond", "deliveriesPerSecond", "bytesOutPerSecond"]) chart(name, stats[name]);
  table("closes", stats.closeCodes);
  table("handshakes", stats.handshakes);
}

const client = new Switchboard(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`, {
  token: async () => (await fetch(`/ops/token?key=${encodeURIComponent(key)}`)).text(),
});
client.on("state", (state) => {
  window.__ops.state = state;
  const live = document.getElementById("live");
  live.textContent = state === "open" ? "live" : state;
  live.className = `badge ${state === "open" ? "ok" : "bad"}`;
});
client.on("ops.stats", (stats) => show(stats));
client.join(room).catch((error) => { document.getElementById("live").textContent = `cannot join: ${error.code}`; });
</script>
</body>
</html>
"""#
}
