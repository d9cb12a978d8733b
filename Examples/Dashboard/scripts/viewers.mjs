// Opens N dashboard viewers (the project's JavaScript client on Node's WebSocket) against a
// running DashboardExample, watches them for a while, checks that every viewer got every update
// in order, and reports the server's CPU and memory from /proc (Linux). Bounded in count and time.
//
//   node --experimental-websocket Examples/Dashboard/scripts/viewers.mjs \
//        --url http://127.0.0.1:8081 --viewers 500 --seconds 30 --pid <server pid>
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { Switchboard } from "../../../Clients/JavaScript/switchboard.js";

// --secret: the server's DASHBOARD_JWT_SECRET (default: Switchboard's public development secret).
const options = { url: "http://127.0.0.1:8081", viewers: 500, seconds: 30, pid: null, secret: "switchboard-dev-secret-not-for-production" };
for (let index = 2; index < process.argv.length; index += 2) {
    const key = process.argv[index].replace(/^--/, "");
    if (!(key in options)) throw new Error(`unknown option --${key}`);
    options[key] = key === "url" || key === "secret" ? process.argv[index + 1] : Number(process.argv[index + 1]);
}
if (!(options.viewers >= 1 && options.viewers <= 5000)) throw new Error("--viewers: 1 to 5000");
if (!(options.seconds >= 1 && options.seconds <= 600)) throw new Error("--seconds: 1 to 600");
const ticks = 100; // USER_HZ on Linux
const pageSize = 4096;

function serverStats() {
    if (!options.pid) return null;
    const stat = readFileSync(`/proc/${options.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / ticks;
    const rssMiB = (Number(readFileSync(`/proc/${options.pid}/statm`, "utf8").split(" ")[1]) * pageSize) / 1048576;
    return { cpuSeconds, rssMiB, at: performance.now() };
}

/** An HS256 token for `sub`, minted here: Node's WebSocket may send its handshake on a connection kept alive after a fetch, which the server refuses (400 `upgrade_not_first`). */
function token(sub) {
    const part = (object) => Buffer.from(JSON.stringify(object)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    const body = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub, iat: now, exp: now + 3600 })}`;
    return `${body}.${createHmac("sha256", options.secret).update(body).digest("base64url")}`;
}

const wsURL = options.url.replace(/^http/, "ws") + "/ws";
const idle = serverStats();
const viewers = [];
let joinedCount = 0;
const joinedAll = Promise.all(
    Array.from({ length: options.viewers }, async (_, index) => {
        const viewer = { seq: null, updates: 0, gaps: 0, refreshes: 0 };
        viewers.push(viewer);
        const sb = new Switchboard(wsURL, { token: () => token(`viewer-${index}`) });
        viewer.sb = sb;
        viewer.states = [];
        sb.on("state", (state, reason) => viewer.states.push(`${state} ${JSON.stringify(reason)}`));
        sb.on("refresh", (room, snapshot) => {
            viewer.refreshes += 1;
            if (snapshot) viewer.seq = snapshot.seq;
        });
        sb.on("metrics.update", (sample) => {
            if (viewer.seq !== null && sample.seq <= viewer.seq) return;
            if (viewer.seq !== null && sample.seq !== viewer.seq + 1) viewer.gaps += 1;
            viewer.seq = sample.seq;
            viewer.updates += 1;
        });
        await sb.join("dashboard:metrics");
        joinedCount += 1;
    }),
);
const timeout = setTimeout(() => {
    console.error(`${joinedCount} of ${options.viewers} viewers joined within 60 s`);
    for (const viewer of viewers.filter((viewer) => viewer.seq === null).slice(0, 3)) console.error(viewer.states, viewer.sb.state);
    process.exit(1);
}, 60_000);
await joinedAll;
clearTimeout(timeout);
const joined = serverStats();
await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000));
const end = serverStats();
for (const viewer of viewers) viewer.sb.close();

const updates = viewers.map((viewer) => viewer.updates);
const lastSeqs = new Set(viewers.map((viewer) => viewer.seq));
const report = {
    viewers: viewers.length,
    updatesPerViewer: { min: Math.min(...updates), max: Math.max(...updates) },
    gaps: viewers.reduce((sum, viewer) => sum + viewer.gaps, 0),
    lastSeqs: [...lastSeqs],
};
if (idle && joined && end) {
    const seconds = (end.at - joined.at) / 1000;
    report.server = {
        rssMiBBefore: Number(idle.rssMiB.toFixed(1)),
        rssMiBWithViewers: Number(end.rssMiB.toFixed(1)),
        cpuPercentWithViewers: Number(((100 * (end.cpuSeconds - joined.cpuSeconds)) / seconds).toFixed(1)),
        measuredSeconds: Number(seconds.toFixed(1)),
    };
}
console.log(JSON.stringify(report, null, 2));
process.exit(report.gaps === 0 ? 0 : 1);
