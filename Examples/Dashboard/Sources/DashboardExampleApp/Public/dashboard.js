// The live dashboard's page: plain JavaScript on the project's client, /switchboard.js, with
// inline SVG charts drawn here (no charting library).
import { Switchboard } from "/switchboard.js";

const ROOM = "dashboard:metrics";
const METRICS = [
    { key: "cpu", title: "CPU", unit: "%", color: "#748ffc", min: 0, max: 100 },
    { key: "memory", title: "Memory", unit: "MiB", color: "#38d9a9", min: 0 },
    { key: "requests", title: "Requests", unit: "/s", color: "#ffa94d", min: 0 },
    { key: "latency", title: "Latency p99", unit: "ms", color: "#ff8787", min: 0 },
];
const KEEP = 120; // samples drawn
const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 400;
const HEIGHT = 150;
const PAD = { left: 34, right: 6, top: 8, bottom: 14 };

const params = new URLSearchParams(location.search);
const wsURL = params.get("ws") ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
const $ = (selector) => document.querySelector(selector);

/** The samples shown, oldest first, and the last seq applied. */
const view = { samples: [], seq: 0, updates: 0 };
window.dashboard = view; // for the console (and the browser tests)

const charts = new Map(
    METRICS.map((metric) => {
        const card = document.createElement("section");
        card.className = "card";
        card.dataset.metric = metric.key;
        card.innerHTML = `<h2>${metric.title}</h2><div class="value"><span class="number">–</span><span class="unit">${metric.unit}</span></div>`;
        const svg = document.createElementNS(SVG, "svg");
        svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
        svg.setAttribute("preserveAspectRatio", "none");
        card.append(svg);
        $("#charts").append(card);
        return [metric.key, { metric, card, svg, number: card.querySelector(".number") }];
    }),
);

function svgElement(name, attributes) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    return node;
}

function format(value) {
    return Math.abs(value) >= 100 ? Math.round(value).toLocaleString() : value.toFixed(1);
}

function draw() {
    for (const { metric, svg, number } of charts.values()) {
        const values = view.samples.map((sample) => sample.values[metric.key]).filter((value) => typeof value === "number");
        number.textContent = values.length ? format(values[values.length - 1]) : "–";
        const low = metric.min ?? Math.min(...values);
        const high = metric.max ?? Math.max(1, ...values) * 1.15;
        const x = (index) => PAD.left + (index / (KEEP - 1)) * (WIDTH - PAD.left - PAD.right);
        const y = (value) => PAD.top + (1 - (value - low) / (high - low || 1)) * (HEIGHT - PAD.top - PAD.bottom);
        const children = [];
        for (const fraction of [0, 0.5, 1]) {
            const level = low + (high - low) * fraction;
            children.push(svgElement("line", { class: "grid-line", x1: PAD.left, x2: WIDTH - PAD.right, y1: y(level), y2: y(level) }));
            const label = svgElement("text", { class: "axis", x: PAD.left - 4, y: y(level) + 3, "text-anchor": "end" });
            label.textContent = format(level);
            children.push(label);
        }
        if (values.length > 1) {
            // The newest sample at the right edge.
            const offset = KEEP - values.length;
            const points = values.map((value, index) => `${x(index + offset).toFixed(1)},${y(value).toFixed(1)}`);
            const baseline = y(low).toFixed(1);
            children.push(svgElement("polygon", { class: "area", fill: metric.color, points: `${x(offset).toFixed(1)},${baseline} ${points.join(" ")} ${x(KEEP - 1).toFixed(1)},${baseline}` }));
            children.push(svgElement("polyline", { class: "line", stroke: metric.color, points: points.join(" ") }));
        }
        svg.replaceChildren(...children);
    }
    document.body.dataset.seq = String(view.seq);
    const last = view.samples[view.samples.length - 1];
    if (last) $("#updated").textContent = `update #${last.seq} at ${new Date(last.ts).toLocaleTimeString()}`;
}

const sb = new Switchboard(wsURL, { token: () => fetch("/api/viewer-token").then((response) => response.text()) });
sb.on("state", (state) => {
    const pill = $("#connection");
    pill.dataset.state = state;
    pill.textContent = { connecting: "Connecting…", open: "Live", reconnecting: "Reconnecting…", closed: "Offline" }[state] ?? state;
});
// The current values: on joining, and again whenever the updates missed cannot be replayed.
sb.on("refresh", (room, snapshot) => {
    if (room !== ROOM || !snapshot) return;
    view.samples = snapshot.samples.slice(-KEEP);
    view.seq = snapshot.seq;
    draw();
});
sb.on("metrics.update", (sample) => {
    // The snapshot may already hold the first live update or two.
    if (sample.seq <= view.seq) return;
    view.samples.push(sample);
    if (view.samples.length > KEEP) view.samples.splice(0, view.samples.length - KEEP);
    view.seq = sample.seq;
    view.updates += 1;
    draw();
});
draw();
sb.join(ROOM).catch((error) => {
    $("#updated").textContent = `cannot join: ${error.message}`;
});
