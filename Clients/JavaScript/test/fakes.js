// Test doubles for the client's unit tests: a scripted WebSocket, a manual clock and a fetch.

/** A clock whose timers run only when the test advances it. */
export class ManualClock {
    constructor() {
        this.time = 0;
        this.timers = new Map();
        this.nextHandle = 1;
        this.setTimeout = (fn, ms) => {
            const handle = this.nextHandle++;
            this.timers.set(handle, { at: this.time + Math.max(0, ms), fn, handle });
            return handle;
        };
        this.clearTimeout = (handle) => this.timers.delete(handle);
        this.now = () => this.time;
    }

    /** Delays of the timers now pending, from the current time. */
    pending() {
        return [...this.timers.values()].map((t) => t.at - this.time).sort((a, b) => a - b);
    }

    /** Advances time by `ms`, running due timers in order (and the microtasks they start). */
    async advance(ms) {
        const end = this.time + ms;
        for (;;) {
            const due = [...this.timers.values()].filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.handle - b.handle)[0];
            if (!due) break;
            this.timers.delete(due.handle);
            this.time = due.at;
            due.fn();
            await settle();
        }
        this.time = end;
        await settle();
    }
}

/** Lets pending promise callbacks run. */
export async function settle() {
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A WebSocket the test drives: `open()`, `receive(envelope)`, `drop(code)`. */
export class FakeWebSocket {
    static instances = [];

    constructor(url) {
        this.url = url;
        this.sent = [];
        this.closed = null;
        this.onopen = null;
        this.onmessage = null;
        this.onclose = null;
        this.onerror = null;
        FakeWebSocket.instances.push(this);
    }

    static reset() {
        FakeWebSocket.instances = [];
    }

    static get last() {
        return FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
    }

    send(text) {
        if (this.closed) throw new Error("send on a closed socket");
        this.sent.push(JSON.parse(text));
    }

    close(code, reason) {
        this.closed ??= { code, reason };
        queueMicrotask(() => this.onclose?.({ code: 1005, reason: "", wasClean: true }));
    }

    open() {
        this.onopen?.({});
    }

    receive(envelope) {
        this.onmessage?.({ data: JSON.stringify(envelope) });
    }

    /** The server (or the network) ends the connection. */
    drop(code = 1006, reason = "") {
        this.closed ??= { code, reason };
        this.onclose?.({ code, reason, wasClean: code !== 1006 });
    }

    /** The sent envelopes with this event name. */
    sentEvents(event) {
        return this.sent.filter((e) => e.event === event);
    }

    /** Answers the client's `session.hello` with `data`. */
    ackHello(data = {}) {
        const hello = this.sentEvents("session.hello").at(-1);
        if (!hello) throw new Error("no session.hello sent");
        this.receive({ event: "ack", id: hello.id, data: { socket: "s1", user: "alice", rooms: [], pingInterval: 30000, pongTimeout: 90000, maxMessageSize: 65536, ...data } });
        return hello;
    }
}

/** A fetch answering every request with `status` and `body`, recording the URLs. */
export function fakeFetch(status, body) {
    const calls = [];
    const fetch = async (url) => {
        calls.push(url);
        return { status, json: async () => body };
    };
    fetch.calls = calls;
    return fetch;
}
