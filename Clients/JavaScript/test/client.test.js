// Unit tests of the client's logic, against a scripted WebSocket and a manual clock:
//   node --experimental-websocket --test Clients/JavaScript/test/
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { Switchboard, SwitchboardError, backoffDelay, parseEventID, probeURL, DEFAULT_BACKOFF } from "../switchboard.js";
import { FakeWebSocket, ManualClock, fakeFetch, settle } from "./fakes.js";

beforeEach(() => FakeWebSocket.reset());

/** A client on fakes; `random` 0 makes the jitter take nothing off. */
function makeClient(options = {}) {
    const clock = new ManualClock();
    const sb = new Switchboard("ws://example.test/ws", {
        token: "t0",
        WebSocket: FakeWebSocket,
        fetch: fakeFetch(426, { error: { code: "upgrade_required", message: "" } }),
        timers: clock,
        random: () => 0,
        ...options,
    });
    const states = [];
    sb.on("state", (state, reason) => states.push({ state, reason }));
    return { sb, clock, states };
}

/** Connects the client's current socket and acknowledges its hello. */
async function openSession(sb, helloData = {}) {
    await settle();
    const ws = FakeWebSocket.last;
    ws.open();
    ws.ackHello(helloData);
    await settle();
    assert.equal(sb.state, "open");
    return ws;
}

test("backoff doubles from 1 s to the 30 s cap", () => {
    const delays = [0, 1, 2, 3, 4, 5, 6, 10, 50].map((attempt) => backoffDelay(attempt, {}, () => 0));
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
});

test("jitter is applied after the cap, so capped clients still spread out", () => {
    const samples = [0, 0.25, 0.5, 0.75, 0.999].map((r) => backoffDelay(9, {}, () => r));
    assert.equal(new Set(samples).size, samples.length, `all different: ${samples}`);
    for (const delay of samples) {
        assert.ok(delay <= DEFAULT_BACKOFF.max && delay >= DEFAULT_BACKOFF.max * (1 - DEFAULT_BACKOFF.jitter) - 1, `${delay}`);
    }
});

test("a delay is never below the floor", () => {
    assert.equal(backoffDelay(0, { initial: 1, floor: 250 }, () => 0.9), 250);
    assert.equal(backoffDelay(0, { initial: 0, floor: 100 }, () => 0), 100);
});

test("event ids parse; malformed ones are null", () => {
    assert.deepEqual(parseEventID("lq2x8kf3a:41"), { epoch: "lq2x8kf3a", offset: 41 });
    for (const bad of [null, undefined, 7, "", "abc", ":4", "a:", "a:-1", "a:1.5", "a:99999999999999999999"]) {
        assert.equal(parseEventID(bad), null, String(bad));
    }
    assert.equal(probeURL("wss://h/ws?token=a"), "https://h/ws?token=a");
    assert.equal(probeURL("ws://h:1/ws"), "http://h:1/ws");
});

test("a bad url or a missing WebSocket is a clear error", () => {
    assert.throws(() => new Switchboard("http://x/ws", { WebSocket: FakeWebSocket }), /ws:\/\/ or wss:\/\//);
    assert.throws(() => new Switchboard("ws://x/ws", { WebSocket: 42 }), /WebSocket implementation/);
});

test("connects with the token, says hello and resolves sends with the ack's data", async () => {
    const { sb } = makeClient();
    await settle();
    assert.equal(sb.state, "connecting");
    assert.equal(FakeWebSocket.last.url, "ws://example.test/ws?token=t0");
    const ws = await openSession(sb);
    const reply = sb.send("message.send", { room: "lobby", content: "hi" });
    const sent = ws.sentEvents("message.send")[0];
    assert.match(sent.id, /^[0-9a-f-]{32,36}$/);
    ws.receive({ event: "ack", id: sent.id, data: { eid: "e:1", ts: 1 } });
    assert.deepEqual(await reply, { eid: "e:1", ts: 1 });
    const failing = sb.send("message.send", { room: "x" });
    ws.receive({ event: "error", id: ws.sentEvents("message.send")[1].id, data: { code: "forbidden", message: "not in room x" } });
    await assert.rejects(failing, (e) => e instanceof SwitchboardError && e.code === "forbidden" && e.message === "not in room x");
    sb.close();
});

test("a send refused with rate_limited goes out again after retryAfter, with its id; one whose retry would miss its timeout rejects", async () => {
    const { sb, clock } = makeClient({ ackTimeout: 2000 });
    const ws = await openSession(sb);
    const reply = sb.send("message.send", { room: "lobby", content: "x" });
    const first = ws.sentEvents("message.send")[0];
    ws.receive({ event: "error", id: first.id, data: { code: "rate_limited", message: "slow down", retryAfter: 300 } });
    await clock.advance(299);
    assert.equal(ws.sentEvents("message.send").length, 1, "not before retryAfter");
    await clock.advance(1);
    const again = ws.sentEvents("message.send");
    assert.equal(again.length, 2);
    assert.equal(again[1].id, first.id, "the same id: the server's idempotency makes the retry safe");
    ws.receive({ event: "ack", id: first.id, data: { eid: "e:1" } });
    assert.deepEqual(await reply, { eid: "e:1" });

    const late = sb.send("message.send", { room: "lobby", content: "y" });
    const lateSent = ws.sentEvents("message.send")[2];
    ws.receive({ event: "error", id: lateSent.id, data: { code: "rate_limited", message: "slow down", retryAfter: 5000 } });
    await assert.rejects(late, (e) => e.code === "rate_limited");
    assert.equal(ws.sentEvents("message.send").length, 3, "no retry after the timeout");
    sb.close();
});

test("\"*\" handlers get every event from the server, after its own handlers, and no lifecycle event", async () => {
    const { sb } = makeClient();
    const seen = [];
    sb.on("message.new", () => seen.push("own"));
    sb.on("*", (data, meta) => seen.push(`${meta.event}:${meta.eid}:${data.n}`));
    const ws = await openSession(sb, { rooms: [] });
    ws.receive({ event: "message.new", room: "lobby", eid: "e:1", data: { n: 1 } });
    ws.receive({ event: "typing.start", room: "lobby", data: { n: 2 } });
    ws.receive({ event: "state.refresh", room: "lobby", eid: "e:5", data: { n: 3 } });
    assert.deepEqual(seen, ["own", "message.new:e:1:1", "typing.start:null:2"]);
    sb.close();
});

test("a send without a reply rejects with timeout", async () => {
    const { sb, clock } = makeClient({ ackTimeout: 500 });
    await openSession(sb);
    const reply = sb.send("slow", {}, { timeout: 200 });
    const rejected = assert.rejects(reply, (e) => e.code === "timeout");
    await clock.advance(199);
    await clock.advance(1);
    await rejected;
    sb.close();
});

test("the offline queue is bounded: the oldest is rejected with queue_full, the rest go out in order after the hello", async () => {
    const { sb } = makeClient({ queueSize: 2 });
    const first = sb.send("a", { n: 1 });
    const second = sb.send("a", { n: 2 });
    const third = sb.send("a", { n: 3 });
    await assert.rejects(first, (e) => e.code === "queue_full");
    await settle();
    const ws = FakeWebSocket.last;
    ws.open();
    assert.deepEqual(ws.sent.map((e) => e.event), ["session.hello"], "nothing before the hello's ack");
    ws.ackHello();
    assert.deepEqual(ws.sent.map((e) => e.event), ["session.hello", "a", "a"]);
    assert.deepEqual(ws.sent.slice(1).map((e) => e.data.n), [2, 3]);
    for (const e of ws.sent.slice(1)) ws.receive({ event: "ack", id: e.id, data: { ok: e.data.n } });
    assert.deepEqual(await Promise.all([second, third]), [{ ok: 2 }, { ok: 3 }]);
    sb.close();
});

test("what the app sends when it hears open goes after the queued sends", async () => {
    const { sb } = makeClient();
    const replies = [sb.send("queued", { n: 1 })];
    sb.on("state", (state) => { if (state === "open") replies.push(sb.send("on-open", { n: 2 })); });
    const ws = await openSession(sb);
    assert.deepEqual(ws.sent.map((e) => e.event), ["session.hello", "queued", "on-open"]);
    sb.close();
    for (const reply of replies) await assert.rejects(reply, (e) => e.code === "closed");
});

test("an unanswered send goes out again after the resume, with the same id, before newer ones", async () => {
    const { sb, clock } = makeClient();
    const ws1 = await openSession(sb);
    const reply = sb.send("message.send", { room: "lobby", content: "x" });
    const original = ws1.sentEvents("message.send")[0];
    ws1.drop(1006);
    const later = sb.send("message.send", { room: "lobby", content: "y" });
    assert.equal(sb.state, "reconnecting");
    await clock.advance(1000);
    const ws2 = FakeWebSocket.last;
    assert.notEqual(ws2, ws1);
    ws2.open();
    ws2.ackHello();
    const resent = ws2.sentEvents("message.send");
    assert.deepEqual(resent.map((e) => e.data.content), ["x", "y"]);
    assert.equal(resent[0].id, original.id);
    ws2.receive({ event: "ack", id: original.id, data: { eid: "e:5" } });
    ws2.receive({ event: "ack", id: resent[1].id, data: { eid: "e:6" } });
    assert.deepEqual(await reply, { eid: "e:5" });
    assert.deepEqual(await later, { eid: "e:6" });
    sb.close();
});

test("resume: positions go into the hello, seen offsets are dropped, replays are flagged, and the position moves before the handler", async () => {
    const { sb, clock } = makeClient();
    const ws1 = await openSession(sb);
    const join = sb.join("lobby");
    ws1.receive({ event: "ack", id: ws1.sentEvents("room.join")[0].id, data: { room: "lobby", members: ["alice"], eid: "ep:3", recovered: true } });
    await join;
    assert.deepEqual(sb.rooms, ["lobby"]);
    const seen = [];
    let throwOnce = true;
    sb.on("error", () => {});
    sb.on("message.new", (data, meta) => {
        seen.push([data.n, meta.eid, meta.replayed]);
        if (throwOnce) {
            throwOnce = false;
            throw new Error("app bug");
        }
    });
    ws1.receive({ event: "message.new", room: "lobby", eid: "ep:4", data: { n: 4 } });
    ws1.receive({ event: "message.new", room: "lobby", eid: "ep:4", data: { n: 4 } });
    ws1.receive({ event: "message.new", room: "lobby", eid: "ep:2", data: { n: 2 } });
    assert.equal(sb.position("lobby"), "ep:4");
    ws1.drop(1006);
    await clock.advance(1000);
    const ws2 = FakeWebSocket.last;
    ws2.open();
    assert.deepEqual(ws2.sentEvents("session.hello")[0].data, { resume: { lobby: "ep:4" } });
    ws2.ackHello({ rooms: [{ room: "lobby", eid: "ep:6", recovered: true }] });
    ws2.receive({ event: "message.new", room: "lobby", eid: "ep:4", data: { n: 4 } });
    ws2.receive({ event: "message.new", room: "lobby", eid: "ep:5", data: { n: 5 } });
    ws2.receive({ event: "message.new", room: "lobby", eid: "ep:6", data: { n: 6 } });
    ws2.receive({ event: "message.new", room: "lobby", eid: "ep:7", data: { n: 7 } });
    assert.deepEqual(seen, [
        [4, "ep:4", false],
        [5, "ep:5", true],
        [6, "ep:6", true],
        [7, "ep:7", false],
    ]);
    sb.close();
});

test("own publish acks count as seen; ephemeral events (presence, typing) have eid null and move nothing", async () => {
    const { sb } = makeClient();
    const ws = await openSession(sb, { rooms: [{ room: "lobby", eid: "ep:10", recovered: true }] });
    const reply = sb.send("message.send", { room: "lobby", content: "mine" });
    ws.receive({ event: "ack", id: ws.sentEvents("message.send")[0].id, data: { eid: "ep:11", ts: 1 } });
    await reply;
    assert.equal(sb.position("lobby"), "ep:11");
    const metas = [];
    sb.on("presence.join", (data, meta) => metas.push(meta));
    ws.receive({ event: "presence.join", room: "lobby", data: { user: "bob" } });
    assert.deepEqual(metas, [{ event: "presence.join", room: "lobby", eid: null, replayed: false }]);
    assert.equal(sb.position("lobby"), "ep:11");
    sb.close();
});

test("an own ack that arrives before the events published just before it does not skip them", async () => {
    const { sb } = makeClient();
    const ws = await openSession(sb, { rooms: [{ room: "lobby", eid: "ep:10", recovered: true }] });
    const seen = [];
    sb.on("message.new", (data, meta) => seen.push([data.n, meta.eid]));
    // Events 11 and 12 (bob's) are still on their way through another event loop when the ack of
    // alice's own publish, 13, arrives.
    const reply = sb.send("message.send", { room: "lobby", content: "mine" });
    ws.receive({ event: "ack", id: ws.sentEvents("message.send")[0].id, data: { eid: "ep:13", ts: 1 } });
    await reply;
    assert.equal(sb.position("lobby"), "ep:10");
    ws.receive({ event: "message.new", room: "lobby", eid: "ep:11", data: { n: 11 } });
    assert.equal(sb.position("lobby"), "ep:11");
    ws.receive({ event: "message.new", room: "lobby", eid: "ep:12", data: { n: 12 } });
    // 12 reached: the position moves over the own 13 too.
    assert.equal(sb.position("lobby"), "ep:13");
    ws.receive({ event: "message.new", room: "lobby", eid: "ep:14", data: { n: 14 } });
    assert.deepEqual(seen, [[11, "ep:11"], [12, "ep:12"], [14, "ep:14"]]);
    // An own event that comes back (in a replay, after an event this connection never got) is
    // not delivered again: its ack was the delivery.
    const ack = sb.send("message.send", { room: "lobby", content: "mine again" });
    ws.receive({ event: "ack", id: ws.sentEvents("message.send")[1].id, data: { eid: "ep:16", ts: 2 } });
    await ack;
    ws.receive({ event: "message.new", room: "lobby", eid: "ep:16", data: { n: 16 } });
    assert.equal(sb.position("lobby"), "ep:16");
    ws.receive({ event: "message.new", room: "lobby", eid: "ep:17", data: { n: 17 } });
    assert.deepEqual(seen.map(([n]) => n), [11, 12, 14, 17]);
    sb.close();
});

test("state.refresh, recovered:false and a new epoch become refresh events", async () => {
    const { sb, clock } = makeClient();
    const ws1 = await openSession(sb, { rooms: [{ room: "lobby", eid: "ep:10", recovered: true }] });
    const refreshes = [];
    sb.on("refresh", (room, snapshot) => refreshes.push([room, snapshot]));
    ws1.drop(1011);
    await clock.advance(1000);
    const ws2 = FakeWebSocket.last;
    ws2.open();
    ws2.ackHello({ rooms: [{ room: "lobby", eid: "ep:2000", recovered: false }] });
    ws2.receive({ event: "state.refresh", room: "lobby", eid: "ep:2000", data: { events: [] } });
    assert.deepEqual(refreshes, [["lobby", { events: [] }]]);
    assert.equal(sb.position("lobby"), "ep:2000");
    ws2.receive({ event: "message.new", room: "lobby", eid: "newepoch:1", data: {} });
    assert.deepEqual(refreshes.at(-1), ["lobby", null]);
    assert.equal(sb.position("lobby"), "newepoch:1");
    sb.close();
});

test("fatal close codes stop the client; it does not reconnect", async () => {
    for (const code of [1002, 1007, 1008, 1009]) {
        FakeWebSocket.reset();
        const { sb, clock, states } = makeClient();
        const ws = await openSession(sb);
        const pending = sb.send("x");
        ws.drop(code);
        assert.equal(sb.state, "closed");
        assert.equal(states.at(-1).reason.code, code);
        assert.equal(states.at(-1).reason.fatal, true);
        await assert.rejects(pending, (e) => e.code === "closed");
        await clock.advance(120000);
        assert.equal(FakeWebSocket.instances.length, 1, `no reconnect after ${code}`);
    }
});

test("1001 and 1012 reconnect promptly with a small random delay, not the backoff", async () => {
    for (const code of [1001, 1012]) {
        FakeWebSocket.reset();
        const { sb, clock } = makeClient({ random: () => 0.5 });
        const ws = await openSession(sb);
        await clock.advance(10000);
        ws.drop(code);
        assert.deepEqual(clock.pending(), [750], `floor 250 + 0.5 × 1000 after ${code}`);
        await clock.advance(750);
        assert.equal(FakeWebSocket.instances.length, 2);
        sb.close();
    }
});

test("4001 fetches a new token and reconnects at once", async () => {
    let calls = 0;
    const { sb, clock } = makeClient({ token: async () => `tok${++calls}` });
    const ws1 = await openSession(sb);
    assert.equal(ws1.url, "ws://example.test/ws?token=tok1");
    await clock.advance(10000);
    ws1.drop(4001, "token expired");
    assert.deepEqual(clock.pending(), [0]);
    await clock.advance(0);
    assert.equal(FakeWebSocket.last.url, "ws://example.test/ws?token=tok2");
    sb.close();
});

test("the floor holds even when a server closes right after every open", async () => {
    const { sb, clock } = makeClient();
    let ws = await openSession(sb);
    for (let i = 0; i < 5; i++) {
        ws.drop(1012);
        await clock.advance(249);
        assert.equal(FakeWebSocket.last, ws, "not before the floor");
        await clock.advance(1000);
        ws = await openSession(sb);
    }
    assert.equal(FakeWebSocket.instances.length, 6);
    sb.close();
});

test("a connection that stayed open resets the backoff; failures in a row double it", async () => {
    const { sb, clock } = makeClient();
    await settle();
    const delays = [];
    for (let i = 0; i < 4; i++) {
        FakeWebSocket.last.drop(1006);
        await settle();
        delays.push(clock.pending()[0]);
        await clock.advance(delays.at(-1));
    }
    assert.deepEqual(delays, [1000, 2000, 4000, 8000]);
    await openSession(sb);
    await clock.advance(DEFAULT_BACKOFF.resetAfter);
    FakeWebSocket.last.drop(1006);
    assert.deepEqual(clock.pending()[0], 1000);
    sb.close();
});

test("token refresh is single-flight, and a throwing token function stops with a clear state", async () => {
    let calls = 0;
    let release;
    const gate = new Promise((resolve) => (release = resolve));
    const { sb } = makeClient({ autoConnect: false, token: async () => { calls += 1; await gate; return "t"; } });
    const both = Promise.all([sb._token(), sb._token()]);
    release();
    assert.deepEqual(await both, ["t", "t"]);
    assert.equal(calls, 1);

    FakeWebSocket.reset();
    const failing = makeClient({ token: () => { throw new Error("no session"); } });
    await settle();
    assert.equal(failing.sb.state, "closed");
    const last = failing.states.at(-1).reason;
    assert.equal(last.type, "token_error");
    assert.match(last.error.message, /no session/);
    assert.equal(FakeWebSocket.instances.length, 0);
});

test("a refused handshake is explained by the GET check: 401 stops after one token refresh", async () => {
    let calls = 0;
    const fetch = fakeFetch(401, { error: { code: "token_expired", message: "token expired" } });
    const { sb, clock, states } = makeClient({ token: () => `tok${++calls}`, fetch });
    await settle();
    FakeWebSocket.last.drop(1006);
    await settle();
    assert.equal(fetch.calls[0], "http://example.test/ws?token=tok1");
    assert.equal(sb.state, "reconnecting");
    await clock.advance(250);
    assert.equal(FakeWebSocket.instances.length, 2);
    FakeWebSocket.last.drop(1006);
    await settle();
    assert.equal(sb.state, "closed");
    const reason = states.at(-1).reason;
    assert.equal(reason.status, 401);
    assert.equal(reason.code, "token_expired");
    assert.equal(reason.error.code, "token_expired");
    assert.equal(calls, 2);
    await clock.advance(60000);
    assert.equal(FakeWebSocket.instances.length, 2);
});

test("429 and 503 from the GET check back off and keep trying", async () => {
    const fetch = fakeFetch(429, { error: { code: "too_many_connections", message: "at most 5" } });
    const { sb, clock, states } = makeClient({ fetch });
    await settle();
    FakeWebSocket.last.drop(1006);
    await settle();
    assert.equal(states.at(-1).reason.code, "too_many_connections");
    assert.deepEqual(clock.pending(), [1000]);
    await clock.advance(1000);
    assert.equal(FakeWebSocket.instances.length, 2);
    sb.close();
});

test("heartbeat: sent when the connection is quiet, and no reply reconnects", async () => {
    const { sb, clock } = makeClient();
    const ws = await openSession(sb, { pingInterval: 4000 });
    await clock.advance(1999);
    assert.equal(ws.sentEvents("presence.heartbeat").length, 0);
    await clock.advance(1);
    const beat = ws.sentEvents("presence.heartbeat")[0];
    assert.ok(beat && typeof beat.id === "string");
    ws.receive({ event: "ack", id: beat.id });
    await clock.advance(2000);
    await clock.advance(2000);
    assert.equal(ws.sentEvents("presence.heartbeat").length, 2);
    await clock.advance(2000);
    assert.equal(sb.state, "reconnecting", "no reply within the timeout");
    sb.close();
});

test("on() returns an unsubscribe function; close() rejects what is queued", async () => {
    const { sb } = makeClient();
    const seen = [];
    const off = sb.on("tick", (d) => seen.push(d.n));
    const ws = await openSession(sb);
    ws.receive({ event: "tick", data: { n: 1 } });
    off();
    ws.receive({ event: "tick", data: { n: 2 } });
    assert.deepEqual(seen, [1]);
    ws.drop(1006);
    const queued = sb.send("x");
    sb.close();
    await assert.rejects(queued, (e) => e.code === "closed");
    await assert.rejects(sb.send("y"), (e) => e.code === "closed");
    assert.equal(sb.state, "closed");
});

test("switchboard.d.ts declares every export and every public method", async () => {
    const { readFile } = await import("node:fs/promises");
    const declarations = await readFile(new URL("../switchboard.d.ts", import.meta.url), "utf8");
    const module = await import("../switchboard.js");
    for (const name of Object.keys(module).filter((n) => n !== "default")) {
        assert.match(declarations, new RegExp(`export declare (const|function|class) ${name}\\b`), name);
    }
    const methods = Object.getOwnPropertyNames(Switchboard.prototype).filter((n) => n !== "constructor" && !n.startsWith("_"));
    for (const name of methods) assert.match(declarations, new RegExp(`\\b${name}[(<:]`), name);
});
