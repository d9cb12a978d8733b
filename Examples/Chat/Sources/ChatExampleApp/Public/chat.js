// The chat example's page: plain JavaScript on the project's client, /switchboard.js.
import { Switchboard } from "/switchboard.js";

const params = new URLSearchParams(location.search);
// `?ws=` points the page at another WebSocket URL (a proxy, in the tests); the app's own by default.
const wsURL = params.get("ws") ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
const $ = (selector) => document.querySelector(selector);
const element = (tag, properties = {}, children = []) => {
    const node = Object.assign(document.createElement(tag), properties);
    node.append(...children);
    return node;
};

const STATE_LABELS = { connecting: "Connecting…", open: "Connected", reconnecting: "Reconnecting…", closed: "Offline" };
const TYPING_SHOWN_MS = 4000;
const TYPING_SENT_EVERY_MS = 2000;

/** Everything the page shows. */
const chat = {
    me: null,
    names: new Map(), // user id → display name
    channels: new Map(), // name → {name, topic, messages: Map(id → message), pending: [], online: Set, typing: Map(user → timer), unread}
    current: null,
    sb: null,
    lastTypingSent: 0,
    editing: null, // id of the message being edited
    draft: null, // its text so far (kept when the list is redrawn meanwhile)
};
window.chat = chat; // for the console (and the browser tests)

async function login(user) {
    const response = await fetch("/api/login", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ user }),
    });
    if (!response.ok) throw new Error(`login refused (${response.status})`);
    return response.json();
}

async function showLogin() {
    $("#login").hidden = false;
    const { users } = await (await fetch("/api/users")).json();
    $("#users").replaceChildren(
        ...users.map((user) => {
            const button = element("button", { textContent: user.displayName, type: "button" });
            button.dataset.user = user.id;
            button.onclick = () => start(user.id).catch((error) => notify(error.message));
            return button;
        }),
    );
}

async function start(userID) {
    const [first, users] = await Promise.all([login(userID), fetch("/api/users").then((response) => response.json())]);
    sessionStorage.setItem("chat.user", userID);
    for (const user of users.users) chat.names.set(user.id, user.displayName);
    chat.me = first.user;
    for (const channel of first.channels) {
        chat.channels.set(channel.name, { ...channel, messages: new Map(), pending: [], online: new Set(), typing: new Map(), unread: 0 });
    }
    chat.current = first.channels[0]?.name ?? null;
    $("#login").hidden = true;
    $("#chat").hidden = false;
    $("#logout").hidden = false;
    $("#me").textContent = chat.me.displayName;

    // The first token comes with the login; every later connection asks for a fresh one.
    let token = first.token;
    const sb = new Switchboard(wsURL, {
        token: async () => {
            if (token) {
                const first = token;
                token = null;
                return first;
            }
            return (await login(userID)).token;
        },
    });
    chat.sb = sb;
    // The server joins this user to their channels on connect (from the database) and sends each
    // channel's latest 50 messages as `state.refresh`; after a drop, the client resumes and the
    // messages missed meanwhile are replayed, or the snapshot comes again.
    sb.on("state", (state, reason) => {
        showConnection(state, reason);
        if (state === "open") refreshOnline();
    });
    sb.on("refresh", (room, snapshot) => {
        const channel = chat.channels.get(room);
        if (!channel) return;
        if (snapshot && Array.isArray(snapshot.messages)) {
            channel.messages = new Map(snapshot.messages.map((message) => [message.id, message]));
            render();
        } else {
            // No snapshot: join afresh, which sends one.
            sb.leave(room).then(() => sb.join(room)).catch((error) => notify(`reloading #${room}: ${error.message}`));
        }
    });
    sb.on("message.new", (message) => {
        const channel = chat.channels.get(message.room);
        if (!channel) return;
        const isNew = !channel.messages.has(message.id);
        channel.messages.set(message.id, message);
        clearTyping(channel, message.from);
        if (isNew && message.room !== chat.current) channel.unread += 1;
        render();
    });
    sb.on("message.edited", (message) => {
        const channel = chat.channels.get(message.room);
        if (!channel) return;
        channel.messages.set(message.id, message);
        render();
    });
    sb.on("typing.start", ({ room, from }) => {
        const channel = chat.channels.get(room);
        if (!channel || from === chat.me.id) return;
        clearTimeout(channel.typing.get(from));
        channel.typing.set(from, setTimeout(() => clearTyping(channel, from), TYPING_SHOWN_MS));
        renderTyping();
    });
    sb.on("presence.join", ({ user }, { room }) => {
        chat.channels.get(room)?.online.add(user);
        renderOnline();
    });
    sb.on("presence.leave", ({ user }, { room }) => {
        chat.channels.get(room)?.online.delete(user);
        renderOnline();
    });
    sb.on("error", (error) => notify(error.message));
    render();
}

/** Who is online in each channel: asked again after every (re)connection, then kept by presence events. */
async function refreshOnline() {
    for (const channel of chat.channels.values()) {
        try {
            channel.online = new Set(await chat.sb.members(channel.name));
        } catch (error) {
            notify(`members of #${channel.name}: ${error.message}`);
        }
    }
    renderOnline();
}

function clearTyping(channel, user) {
    clearTimeout(channel.typing.get(user));
    if (channel.typing.delete(user)) renderTyping();
}

async function sendMessage(content) {
    const room = chat.current;
    const channel = chat.channels.get(room);
    const pending = { key: `p${Date.now()}${Math.random()}`, room, from: chat.me.id, content, ts: Date.now(), pending: true };
    channel.pending.push(pending);
    render();
    try {
        const ack = await chat.sb.send("message.send", { room, content });
        channel.messages.set(ack.message.id, ack.message);
        channel.pending = channel.pending.filter((entry) => entry !== pending);
    } catch (error) {
        pending.failed = `not sent: ${error.message}`;
    }
    render();
}

async function saveEdit(message, content) {
    chat.editing = null;
    render();
    try {
        const ack = await chat.sb.send("message.edit", { id: message.id, content });
        chat.channels.get(ack.message.room)?.messages.set(ack.message.id, ack.message);
        render();
    } catch (error) {
        notify(`edit refused: ${error.message}`);
    }
}

// MARK: rendering

function showConnection(state, reason) {
    const pill = $("#connection");
    pill.dataset.state = state;
    pill.textContent = STATE_LABELS[state] ?? state;
    const banner = $("#banner");
    if (state === "reconnecting") {
        banner.hidden = false;
        banner.textContent = "Connection lost. Reconnecting; messages you send now go out once it is back.";
    } else if (state === "closed" && reason?.fatal) {
        banner.hidden = false;
        banner.textContent = `Disconnected: ${reason.message ?? reason.code ?? "refused"}. Reload to try again.`;
    } else {
        banner.hidden = true;
    }
}

function render() {
    renderChannels();
    renderMessages();
    renderOnline();
    renderTyping();
}

function renderChannels() {
    $("#channels").replaceChildren(
        ...[...chat.channels.values()].map((channel) => {
            const item = element("li", {}, [element("span", { textContent: `# ${channel.name}` })]);
            item.dataset.channel = channel.name;
            if (channel.name === chat.current) item.classList.add("current");
            if (channel.unread > 0) item.append(element("span", { className: "badge", textContent: String(channel.unread) }));
            item.onclick = () => {
                chat.current = channel.name;
                channel.unread = 0;
                chat.editing = null;
                render();
            };
            return item;
        }),
    );
}

function time(ts) {
    return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function renderMessages() {
    const channel = chat.channels.get(chat.current);
    if (!channel) return;
    $("#room-name").textContent = `# ${channel.name}`;
    $("#room-topic").textContent = channel.topic;
    const list = $("#messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const messages = [...channel.messages.values()].sort((a, b) => a.id - b.id);
    const items = messages.map((message) => messageItem(message));
    for (const pending of channel.pending) items.push(messageItem(pending));
    if (items.length === 0) items.push(element("li", { className: "empty", textContent: "No messages yet. Say hello!" }));
    list.replaceChildren(...items);
    if (atBottom) list.scrollTop = list.scrollHeight;
}

function messageItem(message) {
    const mine = message.from === chat.me.id;
    const meta = element("div", { className: "meta" }, [
        element("span", { className: "author", textContent: chat.names.get(message.from) ?? message.from }),
        element("time", { textContent: time(message.ts) }),
    ]);
    if (message.editedAt) meta.append(element("span", { className: "edited", textContent: "(edited)" }));
    if (message.pending) meta.append(element("span", { textContent: message.failed ?? "sending…" }));
    const item = element("li", { className: "message" }, [meta]);
    if (mine) item.classList.add("mine");
    if (message.pending) item.classList.add(message.failed ? "failed" : "pending");
    item.dataset.from = message.from;
    if (message.id !== undefined) item.dataset.id = String(message.id);
    if (chat.editing === message.id) {
        const input = element("input", { value: chat.draft ?? message.content, maxLength: 2000 });
        input.oninput = () => (chat.draft = input.value);
        const save = element("button", { type: "submit", textContent: "Save" });
        const cancel = element("button", { type: "button", className: "cancel", textContent: "Cancel" });
        const form = element("form", { className: "editor" }, [input, save, cancel]);
        form.onsubmit = (event) => {
            event.preventDefault();
            if (input.value.trim()) saveEdit(message, input.value);
        };
        cancel.onclick = () => {
            chat.editing = null;
            render();
        };
        item.append(form);
        queueMicrotask(() => input.focus());
    } else {
        item.append(element("div", { className: "content", textContent: message.content }));
        if (mine && !message.pending) {
            const edit = element("button", { className: "edit", type: "button", textContent: "Edit" });
            edit.onclick = () => {
                chat.editing = message.id;
                chat.draft = null;
                render();
            };
            meta.append(edit);
        }
    }
    return item;
}

function renderOnline() {
    const channel = chat.channels.get(chat.current);
    if (!channel) return;
    $("#online-channel").textContent = `#${channel.name}`;
    $("#online").replaceChildren(
        ...[...channel.online].sort().map((user) => {
            const item = element("li", { textContent: (chat.names.get(user) ?? user) + (user === chat.me.id ? " (you)" : "") });
            item.dataset.user = user;
            return item;
        }),
    );
}

function renderTyping() {
    const channel = chat.channels.get(chat.current);
    const typing = channel ? [...channel.typing.keys()].map((user) => chat.names.get(user) ?? user) : [];
    $("#typing").textContent =
        typing.length === 0 ? "" : typing.length === 1 ? `${typing[0]} is typing…` : `${typing.join(" and ")} are typing…`;
}

let noticeTimer = null;
function notify(text) {
    const notice = $("#notice");
    notice.textContent = text;
    notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => (notice.hidden = true), 5000);
}

// MARK: wiring

$("#composer").onsubmit = (event) => {
    event.preventDefault();
    const input = $("#text");
    const content = input.value.trim();
    if (!content || !chat.current) return;
    input.value = "";
    sendMessage(content);
};
$("#text").oninput = () => {
    const now = Date.now();
    // Typing notices are worth nothing late: only sent while connected, at most every 2 s.
    if (chat.sb?.state !== "open" || now - chat.lastTypingSent < TYPING_SENT_EVERY_MS) return;
    chat.lastTypingSent = now;
    chat.sb.send("typing.start", { room: chat.current }).catch(() => {});
};
$("#logout").onclick = () => {
    sessionStorage.removeItem("chat.user");
    chat.sb?.close();
    location.reload();
};

const remembered = params.get("user") ?? sessionStorage.getItem("chat.user");
if (remembered) {
    start(remembered).catch((error) => {
        notify(error.message);
        showLogin();
    });
} else {
    showLogin();
}
