/// The page `serve` shows at `/` with the development secret: what the server is, and a
/// playground that connects through `/switchboard.js` with a development token, joins rooms,
/// sends events and shows everything that arrives (event ids, replays, refreshes, states).
///
/// Query parameters connect it at once, for links and tests: `?user=alice&join=lobby,news`.
enum PlaygroundPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchboard playground</title>
<style>
  :root { --ink: #1d2330; --muted: #667085; --line: #e4e7ec; --accent: #3355ff; --ok: #12b76a; --warn: #f79009; --bad: #f04438; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #f6f7fb; }
  header { padding: 18px 28px; background: #111827; color: #fff; display: flex; align-items: baseline; gap: 16px; flex-wrap: wrap; }
  header h1 { margin: 0; font-size: 20px; }
  header p { margin: 0; color: #c7cbd6; }
  header nav { margin-left: auto; display: flex; gap: 14px; }
  header a { color: #9db2ff; text-decoration: none; }
  main { display: grid; grid-template-columns: 340px 1fr; gap: 18px; padding: 18px 28px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; margin-bottom: 14px; }
  h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 10px; }
  label { display: block; font-size: 12px; color: var(--muted); margin: 8px 0 3px; }
  input, textarea { width: 100%; padding: 7px 9px; border: 1px solid var(--line); border-radius: 7px; font: inherit; }
  textarea { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; height: 74px; }
  button { margin-top: 8px; padding: 7px 12px; border: 0; border-radius: 7px; background: var(--accent); color: #fff; font: inherit; cursor: pointer; }
  button.secondary { background: #eef1f7; color: var(--ink); }
  .row { display: flex; gap: 8px; } .row > * { flex: 1; }
  #state { display: inline-block; padding: 2px 10px; border-radius: 99px; font-weight: 600; background: #eef1f7; }
  #state[data-state=open] { background: #d1fadf; color: #05603a; }
  #state[data-state=reconnecting], #state[data-state=connecting] { background: #fef0c7; color: #93370d; }
  #state[data-state=closed] { background: #fee4e2; color: #912018; }
  #rooms li { font-family: ui-monospace, monospace; font-size: 12px; }
  #log { width: 100%; border-collapse: collapse; font-size: 12px; }
  #log th { text-align: left; color: var(--muted); font-weight: 600; border-bottom: 1px solid var(--line); padding: 6px; position: sticky; top: 0; background: #fff; }
  #log td { border-bottom: 1px solid #f0f1f5; padding: 5px 6px; vertical-align: top; }
  #log td.data { font-family: ui-monospace, monospace; word-break: break-all; }
  .kind { font-weight: 600; }
  .kind.event { color: var(--accent); } .kind.ack { color: var(--ok); } .kind.error { color: var(--bad); }
  .kind.state { color: var(--muted); } .kind.refresh { color: var(--warn); }
  .tag { font-size: 11px; padding: 0 6px; border-radius: 99px; background: #fef0c7; color: #93370d; margin-left: 4px; }
  .logbox { max-height: calc(100vh - 150px); overflow: auto; }
  code { background: #eef1f7; padding: 1px 5px; border-radius: 4px; }
</style>
</head>
<body>
<header>
  <h1>Switchboard</h1>
  <p>Real-time WebSockets for Swift servers. This is the development server: anyone may connect as any user.</p>
  <nav><a href="/ops">/ops</a><a href="/metrics">/metrics</a><a href="/healthz">/healthz</a><a href="/readyz">/readyz</a><a href="/switchboard.js">/switchboard.js</a></nav>
</header>
<main>
  <div>
    <section>
      <h2>Connection</h2>
      <label for="user">User</label>
      <input id="user" value="dev" autocomplete="off">
      <div class="row"><button id="connect">Connect</button><button id="disconnect" class="secondary">Disconnect</button></div>
      <p>State: <span id="state" data-state="idle">not connected</span></p>
      <p id="session" style="color: var(--muted); font-size: 12px"></p>
    </section>
    <section>
      <h2>Rooms</h2>
      <div class="row"><input id="room" value="lobby" autocomplete="off"><button id="join" style="flex: 0 0 auto; margin-top: 0">Join</button></div>
      <ul id="rooms"></ul>
    </section>
    <section>
      <h2>Send an event</h2>
      <label for="event">Event</label>
      <input id="event" value="message.send" autocomplete="off">
      <label for="data">Data (JSON)</label>
      <textarea id="data">{"room": "lobby", "content": "hello"}</textarea>
      <button id="send">Send</button>
    </section>
    <section>
      <h2>Read more</h2>
      <p>The wire protocol is <code>docs/protocol.md</code> in the repository; the client is
      <code>/switchboard.js</code>. Open this page in two tabs as two users to chat between them.</p>
    </section>
  </div>
  <section class="logbox">
    <h2>What arrives</h2>
    <table id="log"><thead><tr><th>time</th><th>kind</th><th>event</th><th>room</th><th>eid</th><th>data</th></tr></thead><tbody></tbody></table>
  </section>
</main>
<script type="module">
import { Switchboard } from "/switchboard.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let client = null;
window.__playground = { rows: [], state: "idle" };

function log(kind, event, room, eid, data, tag) {
  const row = { kind, event, room: room ?? "", eid: eid ?? "", data: data === undefined ? "" : JSON.stringify(data), tag: tag ?? "" };
  window.__playground.rows.push(row);
  const tr = document.createElement("tr");
  const cells = [new Date().toLocaleTimeString(), kind, event, row.room, row.eid, row.data];
  cells.forEach((text, index) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (index === 1) td.className = `kind ${kind}`;
    if (index === 5) td.className = "data";
    if (index === 2 && row.tag) { const span = document.createElement("span"); span.className = "tag"; span.textContent = row.tag; td.append(span); }
    tr.append(td);
  });
  $("log").tBodies[0].prepend(tr);
}

function showRooms() {
  const list = $("rooms");
  list.replaceChildren(...(client?.rooms ?? []).map((room) => {
    const li = document.createElement("li");
    li.textContent = `${room}  ${client.position(room) ?? ""}`;
    return li;
  }));
}

async function connect() {
  client?.close();
  const user = $("user").value.trim() || "dev";
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  client = new Switchboard(url, { token: async () => (await fetch(`/dev/token?sub=${encodeURIComponent(user)}`)).text() });
  client.on("state", (state, reason) => {
    window.__playground.state = state;
    $("state").dataset.state = state;
    $("state").textContent = state;
    if (state === "open" && client.session) $("session").textContent = `socket ${client.session.socket} as ${client.session.user}`;
    log("state", state, null, null, reason ?? undefined);
    showRooms();
  });
  client.on("refresh", (room, snapshot) => { log("refresh", "state.refresh", room, client.position(room), snapshot ?? undefined); showRooms(); });
  client.on("error", (error) => log("error", error?.code ?? "error", null, null, error?.message ?? String(error)));
  client.on("*", (data, meta) => { log("event", meta.event, meta.room, meta.eid, data, meta.replayed ? "replayed" : ""); showRooms(); });
  for (const room of (params.get("join") ?? "").split(",").filter(Boolean)) join(room);
}

async function join(room) {
  if (!client) return;
  try {
    const ack = await client.join(room);
    log("ack", "room.join", room, ack.eid, { members: ack.members });
  } catch (error) {
    log("error", "room.join", room, null, { code: error.code, message: error.message });
  }
  showRooms();
}

async function send() {
  if (!client) return;
  let data;
  try { data = JSON.parse($("data").value || "null"); } catch (error) { log("error", "invalid JSON", null, null, error.message); return; }
  const event = $("event").value.trim();
  try {
    const reply = await client.send(event, data);
    log("ack", event, data?.room, reply?.eid, reply);
  } catch (error) {
    log("error", event, data?.room, null, { code: error.code, message: error.message });
  }
  showRooms();
}

$("connect").onclick = connect;
$("disconnect").onclick = () => { client?.close(); client = null; };
$("join").onclick = () => join($("room").value.trim());
$("send").onclick = send;
if (params.get("user")) { $("user").value = params.get("user"); connect(); }
</script>
</body>
</html>
"""#
}
