// Switchboard JavaScript client: one ES module, no dependencies, no build step.
//
//   import { Switchboard } from "/switchboard.js";
//   const sb = new Switchboard("wss://chat.example.com/ws", { token: () => fetchToken() });
//   sb.on("message.new", (data, meta) => console.log(meta.room, meta.eid, data));
//   await sb.join("lobby");
//   await sb.send("message.send", { room: "lobby", content: "hi" });
//
// It speaks the Switchboard wire protocol, version 2 (docs/protocol.md): it reconnects with
// backoff, resumes every room from its last event id (no loss, no duplicate), queues sends while
// offline and resends unacknowledged ones with their original ids (the server's idempotency makes
// that safe), and sends heartbeats so that a half-open connection is noticed.

/** The version of docs/protocol.md this client speaks. */
export const PROTOCOL_VERSION = 2;

/** Close codes after which reconnecting will not help: the client stops (protocol.md §4). */
const FATAL_CLOSE_CODES = new Set([1002, 1007, 1008, 1009]);
/** Close codes of a server restart or drain: reconnect promptly, with a small random delay. */
const PROMPT_CLOSE_CODES = new Set([1001, 1012]);
/** The server closes with this when the token expired: fetch a new one, reconnect at once. */
const TOKEN_EXPIRED = 4001;
/** Own publishes remembered per room while the events before them are still on their way. */
const MAX_SEEN_AHEAD = 1000;

/**
 * An error reply, a timeout, or a client-side failure.
 * `code` is the server's error code (`forbidden`, `invalid_payload`, …) or one of the client's:
 * `timeout` (no ack within the ack timeout), `queue_full` (pushed out of the offline queue),
 * `closed` (the client was closed or stopped before the reply), `token_error` (the token
 * function failed), and the handshake codes of protocol.md §1.2 (`invalid_token`, …).
 */
export class SwitchboardError extends Error {
    /**
     * @param {string} code stable machine-readable code
     * @param {string} message human-readable text
     * @param {object} [details] extra fields (`status` for a refused handshake, `cause`)
     */
    constructor(code, message, details = {}) {
        super(message);
        this.name = "SwitchboardError";
        /** @type {string} */
        this.code = code;
        Object.assign(this, details);
    }
}

/**
 * Default reconnection settings (milliseconds).
 * - `initial`: the first delay; each failed attempt doubles it,
 * - `max`: the cap of the doubling (the seed's 30 s),
 * - `jitter`: the fraction taken off at random, applied after the cap so that clients that all
 *   reached the cap still spread out (delay in `[capped × (1 − jitter), capped]`),
 * - `floor`: no reconnect ever happens sooner than this after the previous attempt started,
 * - `resetAfter`: a connection that stayed open this long resets the doubling.
 */
export const DEFAULT_BACKOFF = Object.freeze({ initial: 1000, max: 30000, jitter: 0.5, floor: 250, resetAfter: 5000 });

/**
 * The delay before reconnect attempt number `attempt` (0 for the first retry).
 * Exported for tests and for apps that want to show "reconnecting in …".
 * @param {number} attempt failed attempts so far, from 0
 * @param {Partial<typeof DEFAULT_BACKOFF>} [limits]
 * @param {() => number} [random] a source of numbers in [0, 1)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, limits = {}, random = Math.random) {
    const { initial, max, jitter, floor } = { ...DEFAULT_BACKOFF, ...limits };
    const exponent = Math.min(Math.max(0, attempt), 30);
    const capped = Math.min(max, initial * 2 ** exponent);
    const jittered = capped * (1 - jitter * random());
    return Math.max(floor, Math.round(jittered));
}

/**
 * Parses an event id `"<epoch>:<offset>"`.
 * @param {unknown} eid
 * @returns {{epoch: string, offset: number} | null} null when absent or malformed
 */
export function parseEventID(eid) {
    if (typeof eid !== "string") return null;
    const colon = eid.lastIndexOf(":");
    if (colon <= 0) return null;
    const digits = eid.slice(colon + 1);
    if (!/^\d+$/.test(digits)) return null;
    const offset = Number(digits);
    if (!Number.isSafeInteger(offset)) return null;
    return { epoch: eid.slice(0, colon), offset };
}

/** A random message id: `crypto.randomUUID()` where present. */
export function randomID() {
    const c = globalThis.crypto;
    if (c && typeof c.randomUUID === "function") return c.randomUUID();
    if (c && typeof c.getRandomValues === "function") {
        const bytes = c.getRandomValues(new Uint8Array(16));
        return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    }
    return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

/**
 * The URL of the plain HTTP check of a WebSocket URL: same host, path and query, `http(s)`.
 * @param {string} url a `ws://` or `wss://` URL
 * @returns {string}
 */
export function probeURL(url) {
    return url.replace(/^ws(s?):/i, "http$1:");
}

/**
 * @typedef {object} SwitchboardOptions
 * @property {string | (() => string | Promise<string>)} [token] the JWT, or a function called
 *   before every connection attempt (so an expired token is refreshed); one call at a time.
 * @property {any} [WebSocket] a WebSocket implementation (default: the global one).
 * @property {typeof fetch} [fetch] used for the handshake check after a failed attempt (default: the global one).
 * @property {Partial<typeof DEFAULT_BACKOFF>} [backoff] reconnection limits.
 * @property {number} [ackTimeout] default time a `send` waits for its reply once sent, ms (10000).
 * @property {number} [queueSize] most sends kept while offline; beyond it the oldest is
 *   rejected with `queue_full` (100).
 * @property {{interval?: number, timeout?: number}} [heartbeat] client heartbeat; by default the
 *   interval is half the server's `pingInterval` (at least 1 s) and the timeout the smaller of
 *   the interval and 10 s.
 * @property {boolean} [autoConnect] connect in the constructor (true); otherwise call `connect()`.
 * @property {() => number} [random] source of randomness for jitter (Math.random).
 * @property {{setTimeout: Function, clearTimeout: Function, now: () => number}} [timers] for tests.
 */

/**
 * @typedef {object} EventMeta
 * @property {string} event the event name
 * @property {string | null} room the room of a room event
 * @property {string | null} eid the event id; `null` for ephemeral events (typing, presence)
 * @property {boolean} replayed whether it was missed while disconnected and replayed on resume
 */

/**
 * A connection to a Switchboard server that survives disconnects.
 *
 * Events it emits besides the server's: `state` `(state, reason)` on every change of
 * {@link Switchboard#state}; `refresh` `(room, snapshot)` when a room's state must be reloaded
 * (the snapshot of `state.refresh`, or `null`); `error` `(error)` when an app handler threw.
 */
export class Switchboard {
    /**
     * @param {string} url `ws://` or `wss://` URL of the server's WebSocket path, e.g. `wss://host/ws`
     * @param {SwitchboardOptions} [options]
     */
    constructor(url, options = {}) {
        if (typeof url !== "string" || !/^wss?:\/\//i.test(url)) {
            throw new TypeError(`Switchboard: url must be a ws:// or wss:// URL, got ${JSON.stringify(url)}`);
        }
        this.url = url;
        this._tokenSource = options.token;
        this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
        if (typeof this._WebSocket !== "function") {
            throw new TypeError("Switchboard: no WebSocket implementation; pass options.WebSocket");
        }
        this._fetch = options.fetch ?? (typeof globalThis.fetch === "function" ? globalThis.fetch.bind(globalThis) : null);
        this._backoff = { ...DEFAULT_BACKOFF, ...(options.backoff ?? {}) };
        this._ackTimeout = options.ackTimeout ?? 10000;
        this._queueSize = Math.max(0, options.queueSize ?? 100);
        this._heartbeatOptions = options.heartbeat ?? {};
        this._random = options.random ?? Math.random;
        const timers = options.timers ?? {};
        this._setTimeout = timers.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
        this._clearTimeout = timers.clearTimeout ?? ((handle) => clearTimeout(handle));
        this._now = timers.now ?? (() => Date.now());

        /** @type {"connecting"|"open"|"reconnecting"|"closed"} */
        this._state = "connecting";
        this._handlers = new Map();
        /** rooms joined (or being rejoined), in join order */
        this._rooms = new Set();
        /** @type {Map<string, {epoch: string, offset: number}>} last seen position per room */
        this._positions = new Map();
        /** @type {Map<string, Set<number>>} offsets above position + 1 already seen: the acks of own
         *  publishes, which can arrive before the events just before them */
        this._seenAhead = new Map();
        /** @type {Map<string, {epoch: string, offset: number}>} events up to here are replays */
        this._replayUntil = new Map();
        /** sends not yet written, oldest first */
        this._queue = [];
        /** sends written but not answered, by id, in send order */
        this._inflight = new Map();
        /** replies the client itself waits for (hello, heartbeat), by id */
        this._internal = new Map();
        this._ws = null;
        this._attempt = 0;
        this._lastAttemptAt = -Infinity;
        this._openedAt = null;
        this._reconnectTimer = null;
        this._heartbeatTimer = null;
        this._lastReceivedAt = 0;
        this._authRetries = 0;
        this._tokenInFlight = null;
        this._forceTokenRefresh = false;
        this._connectGeneration = 0;
        this._session = null;

        this._onOnline = () => {
            if (this._state === "reconnecting" && this._reconnectTimer !== null) this._scheduleReconnect(0, { type: "online" });
        };
        if (typeof globalThis.addEventListener === "function") globalThis.addEventListener("online", this._onOnline);
        if (options.autoConnect !== false) this._startAttempt({ type: "connect" });
    }

    /** @returns {"connecting"|"open"|"reconnecting"|"closed"} the connection state */
    get state() {
        return this._state;
    }

    /** @returns {string[]} the rooms this client is in (and rejoins after a reconnect) */
    get rooms() {
        return [...this._rooms];
    }

    /** @returns {object | null} the last `session.hello` ack: socket, user, limits */
    get session() {
        return this._session;
    }

    /**
     * The last event id seen in `room`, or `null`.
     * @param {string} room
     * @returns {string | null}
     */
    position(room) {
        const p = this._positions.get(room);
        return p ? `${p.epoch}:${p.offset}` : null;
    }

    /**
     * Adds a handler. Room events call it with `(data, meta)`; `state` with `(state, reason)`;
     * `refresh` with `(room, snapshot)`; `"*"` gets every event from the server with
     * `(data, meta)` after its own handlers (`meta.event` names it), not `state`, `refresh` or `error`.
     * @param {string} event
     * @param {Function} handler
     * @returns {() => void} removes the handler
     */
    on(event, handler) {
        if (typeof handler !== "function") throw new TypeError("Switchboard.on: handler must be a function");
        let set = this._handlers.get(event);
        if (!set) this._handlers.set(event, (set = new Set()));
        set.add(handler);
        return () => this.off(event, handler);
    }

    /**
     * Removes a handler added with {@link Switchboard#on}.
     * @param {string} event
     * @param {Function} handler
     */
    off(event, handler) {
        this._handlers.get(event)?.delete(handler);
    }

    /**
     * Sends an event and waits for its reply. While not connected the send is queued and goes
     * out, in order, after the next resume; a send whose reply was lost with a connection goes
     * out again with the same id. A send the server refuses with `rate_limited` goes out again
     * (same id) after the reply's `retryAfter`, and rejects with `rate_limited` only when that
     * would come after its timeout.
     * @param {string} event
     * @param {unknown} [data]
     * @param {{timeout?: number}} [options] `timeout`: ms to wait for the reply once sent (default `ackTimeout`)
     * @returns {Promise<any>} the ack's `data`
     */
    send(event, data, options = {}) {
        if (typeof event !== "string" || event.length === 0) {
            return Promise.reject(new TypeError("Switchboard.send: event must be a non-empty string"));
        }
        if (this._state === "closed") {
            return Promise.reject(new SwitchboardError("closed", "the client is closed"));
        }
        return new Promise((resolve, reject) => {
            const entry = { id: randomID(), event, data, resolve, reject, timeout: options.timeout ?? this._ackTimeout, timer: null };
            if (this._isOpen()) {
                this._transmit(entry);
            } else {
                this._enqueue(entry);
            }
        });
    }

    /**
     * Joins a room; its events reach the handlers from then on, and it is rejoined (resumed)
     * after every reconnect.
     * @param {string} room
     * @returns {Promise<{room: string, members: string[], eid: string, recovered: boolean}>}
     */
    async join(room) {
        const data = { room };
        const since = this.position(room);
        if (since !== null) data.since = since;
        return this.send("room.join", data);
    }

    /**
     * Leaves a room.
     * @param {string} room
     * @returns {Promise<{room: string, left: boolean}>}
     */
    async leave(room) {
        return this.send("room.leave", { room });
    }

    /**
     * The users in a room (only for its members).
     * @param {string} room
     * @returns {Promise<string[]>}
     */
    async members(room) {
        const ack = await this.send("room.members", { room });
        return ack?.members ?? [];
    }

    /**
     * Starts connecting again after `close()` or after the client stopped.
     */
    connect() {
        if (this._state !== "closed" && this._ws) return;
        this._authRetries = 0;
        this._attempt = 0;
        if (typeof globalThis.addEventListener === "function") globalThis.addEventListener("online", this._onOnline);
        this._startAttempt({ type: "connect" });
    }

    /**
     * Closes the connection and stops reconnecting. Pending and queued sends are rejected with
     * `closed`.
     * @param {number} [code] close code (1000)
     * @param {string} [reason]
     */
    close(code = 1000, reason = "") {
        this._stop({ type: "closed_by_client", code, reason });
    }

    // MARK: connection

    _isOpen() {
        return this._state === "open" && this._ws !== null;
    }

    _setState(state, reason) {
        if (this._state === state && state !== "reconnecting") return;
        this._state = state;
        this._emit("state", [state, reason ?? null]);
    }

    async _startAttempt(reason) {
        const generation = ++this._connectGeneration;
        this._reconnectTimer = null;
        this._lastAttemptAt = this._now();
        // A retry stays `reconnecting` (reported once per failure, with its reason, by the close handler).
        if (this._state === "closed") this._setState("connecting", reason);
        let token;
        try {
            token = await this._token();
        } catch (error) {
            if (generation !== this._connectGeneration) return;
            this._stop({ type: "token_error", error: new SwitchboardError("token_error", `the token function failed: ${error?.message ?? error}`, { cause: error }) });
            return;
        }
        if (generation !== this._connectGeneration || this._state === "closed") return;
        const url = this._urlWithToken(token);
        this._attemptURL = url;
        let ws;
        try {
            ws = new this._WebSocket(url);
        } catch (error) {
            this._stop({ type: "error", error });
            return;
        }
        this._ws = ws;
        this._opened = false;
        this._helloAcked = false;
        ws.onopen = () => this._handleOpen(ws);
        ws.onmessage = (message) => this._handleMessage(ws, message);
        ws.onclose = (event) => this._handleClose(ws, event);
        ws.onerror = () => {};
    }

    /** Gets the token: one call of the token function at a time. */
    async _token() {
        const source = this._tokenSource;
        if (source === undefined || source === null) return null;
        if (typeof source === "string") return source;
        if (typeof source !== "function") throw new TypeError("options.token must be a string or a function");
        if (!this._tokenInFlight) {
            this._tokenInFlight = (async () => {
                try {
                    const token = await source();
                    if (typeof token !== "string" || token.length === 0) {
                        throw new TypeError("the token function returned no token");
                    }
                    return token;
                } finally {
                    this._tokenInFlight = null;
                }
            })();
        }
        return this._tokenInFlight;
    }

    _urlWithToken(token) {
        if (token === null) return this.url;
        const [base, hash] = this.url.split("#", 2);
        const separator = base.includes("?") ? "&" : "?";
        return `${base}${separator}token=${encodeURIComponent(token)}${hash === undefined ? "" : `#${hash}`}`;
    }

    _handleOpen(ws) {
        if (ws !== this._ws) return;
        this._opened = true;
        this._lastReceivedAt = this._now();
        const resume = {};
        for (const room of this._rooms) {
            const eid = this.position(room);
            if (eid !== null) resume[room] = eid;
        }
        const id = randomID();
        const data = Object.keys(resume).length > 0 ? { resume } : undefined;
        this._internal.set(id, (reply) => this._handleHello(ws, reply, resume));
        this._write(ws, { event: "session.hello", data, id });
    }

    _handleHello(ws, reply, resume) {
        if (ws !== this._ws) return;
        if (reply.event !== "ack") {
            // A server that cannot start the session: drop the connection and retry with backoff.
            ws.close(4000, "session.hello refused");
            return;
        }
        const session = reply.data ?? {};
        this._session = session;
        this._helloAcked = true;
        this._openedAt = this._now();
        this._authRetries = 0;
        for (const outcome of Array.isArray(session.rooms) ? session.rooms : []) {
            if (!outcome || typeof outcome.room !== "string") continue;
            const room = outcome.room;
            if (outcome.error) {
                this._rooms.delete(room);
                this._emit("error", [new SwitchboardError(outcome.error.code ?? "forbidden", `rejoining ${room}: ${outcome.error.message ?? "refused"}`, { room })]);
                continue;
            }
            this._rooms.add(room);
            const current = parseEventID(outcome.eid);
            if (!current) continue;
            const known = this._positions.get(room);
            if (outcome.recovered === false) {
                // state.refresh follows with the snapshot and the position.
                continue;
            }
            if (resume[room] !== undefined && known && known.epoch === current.epoch) {
                if (current.offset > known.offset) this._replayUntil.set(room, current);
            } else if (!known || known.epoch !== current.epoch) {
                const hadState = known !== undefined;
                this._resetPosition(room, current);
                if (hadState) this._emit("refresh", [room, null]);
            }
        }
        this._startHeartbeat(ws);
        // Unanswered sends first (they were sent first), then the offline queue, in order; then
        // the app hears `open` (so that what it sends then goes after them).
        const pending = [...this._inflight.values()];
        this._inflight.clear();
        for (const entry of pending) {
            if (entry.retryTimer) this._clearTimeout(entry.retryTimer);
            entry.retryTimer = null;
            this._transmit(entry, { resend: true });
        }
        const queued = this._queue;
        this._queue = [];
        for (const entry of queued) this._transmit(entry);
        this._setState("open", { type: "open" });
    }

    _handleClose(ws, event) {
        if (ws !== this._ws) return;
        this._ws = null;
        this._stopHeartbeat();
        for (const [, callback] of this._internal) callback({ event: "error", data: { code: "closed" } });
        this._internal.clear();
        this._replayUntil.clear();
        // Timers of unanswered sends keep running; the sends themselves go out again after the resume.
        const code = event?.code ?? 1006;
        const reason = { type: "close", code, reason: event?.reason ?? "", wasClean: event?.wasClean ?? false };
        if (this._state === "closed") return;
        const stayedOpen = this._openedAt !== null && this._now() - this._openedAt >= this._backoff.resetAfter;
        this._openedAt = null;
        if (stayedOpen) this._attempt = 0;
        if (FATAL_CLOSE_CODES.has(code)) {
            this._stop({ ...reason, fatal: true });
            return;
        }
        if (code === TOKEN_EXPIRED) {
            this._setState("reconnecting", reason);
            this._scheduleReconnect(0, reason);
            return;
        }
        if (PROMPT_CLOSE_CODES.has(code)) {
            this._setState("reconnecting", reason);
            this._scheduleReconnect(this._backoff.floor + Math.round(this._random() * 1000), reason);
            return;
        }
        if (!this._opened && this._fetch) {
            // A browser sees 1006 for every refused handshake: ask the server why.
            this._setState("reconnecting", reason);
            this._probe(reason);
            return;
        }
        this._setState("reconnecting", reason);
        this._scheduleBackoff(reason);
    }

    async _probe(closeReason) {
        const generation = this._connectGeneration;
        let status = 0;
        let body = null;
        try {
            const response = await this._fetch(probeURL(this._attemptURL), { method: "GET", cache: "no-store", credentials: "omit" });
            status = response.status;
            body = await response.json().catch(() => null);
        } catch {
            status = 0;
        }
        if (generation !== this._connectGeneration || this._state === "closed") return;
        const error = body && typeof body === "object" && body.error ? body.error : null;
        const reason = { ...closeReason, type: "handshake", status, code: error?.code ?? closeReason.code, message: error?.message ?? "" };
        if (status === 401 || status === 403) {
            if (this._authRetries < 1 && typeof this._tokenSource === "function") {
                this._authRetries += 1;
                this._setState("reconnecting", reason);
                this._scheduleReconnect(0, reason);
            } else {
                this._stop({ ...reason, fatal: true, error: new SwitchboardError(error?.code ?? "unauthorized", error?.message ?? `handshake refused with ${status}`, { status }) });
            }
            return;
        }
        this._setState("reconnecting", reason);
        this._scheduleBackoff(reason);
    }

    _scheduleBackoff(reason) {
        const delay = backoffDelay(this._attempt, this._backoff, this._random);
        this._attempt += 1;
        this._scheduleReconnect(delay, reason);
    }

    /** Schedules the next attempt, never sooner than the floor after the previous one began. */
    _scheduleReconnect(delay, reason) {
        if (this._reconnectTimer !== null) this._clearTimeout(this._reconnectTimer);
        const earliest = this._lastAttemptAt + this._backoff.floor - this._now();
        const wait = Math.max(delay, earliest, 0);
        this._nextDelay = wait;
        this._reconnectTimer = this._setTimeout(() => {
            this._reconnectTimer = null;
            if (this._state !== "closed") this._startAttempt(reason);
        }, wait);
    }

    _stop(reason) {
        if (this._state === "closed" && this._ws === null && this._reconnectTimer === null) return;
        this._connectGeneration += 1;
        if (this._reconnectTimer !== null) this._clearTimeout(this._reconnectTimer);
        this._reconnectTimer = null;
        this._stopHeartbeat();
        const ws = this._ws;
        this._ws = null;
        if (ws) {
            try {
                ws.close(reason.type === "closed_by_client" ? reason.code : 1000, reason.type === "closed_by_client" ? reason.reason : "");
            } catch {
                ws.close();
            }
        }
        if (typeof globalThis.removeEventListener === "function") globalThis.removeEventListener("online", this._onOnline);
        const error = reason.error instanceof SwitchboardError ? reason.error : new SwitchboardError("closed", "the client is closed", { reason });
        for (const entry of [...this._inflight.values(), ...this._queue]) this._settle(entry, null, error);
        this._inflight.clear();
        this._queue = [];
        this._internal.clear();
        this._setState("closed", reason);
    }

    // MARK: heartbeat

    _startHeartbeat(ws) {
        this._stopHeartbeat();
        const ping = Number(this._session?.pingInterval) || 30000;
        const interval = this._heartbeatOptions.interval ?? Math.max(1000, Math.floor(ping / 2));
        const timeout = this._heartbeatOptions.timeout ?? Math.min(interval, 10000);
        const tick = () => {
            this._heartbeatTimer = null;
            if (ws !== this._ws) return;
            if (this._now() - this._lastReceivedAt < interval) {
                this._heartbeatTimer = this._setTimeout(tick, interval - (this._now() - this._lastReceivedAt));
                return;
            }
            const id = randomID();
            const sentAt = this._now();
            this._internal.set(id, () => {});
            this._write(ws, { event: "presence.heartbeat", id });
            this._heartbeatTimer = this._setTimeout(() => {
                this._heartbeatTimer = null;
                if (ws !== this._ws) return;
                if (this._lastReceivedAt < sentAt) {
                    // Half-open: nothing came back. Give up on this socket and reconnect.
                    this._internal.delete(id);
                    this._abandonSocket(ws, 4000, "heartbeat timeout");
                } else {
                    tick();
                }
            }, timeout);
        };
        this._heartbeatTimer = this._setTimeout(tick, interval);
    }

    _stopHeartbeat() {
        if (this._heartbeatTimer !== null) this._clearTimeout(this._heartbeatTimer);
        this._heartbeatTimer = null;
    }

    /** Treats `ws` as closed now, without waiting for a close handshake that may never come. */
    _abandonSocket(ws, code, reason) {
        try {
            ws.close(code === 4000 ? 1000 : code, reason);
        } catch {
            // already closing
        }
        this._handleClose(ws, { code, reason, wasClean: false });
    }

    // MARK: messages

    _enqueue(entry) {
        this._queue.push(entry);
        while (this._queue.length > this._queueSize) {
            const oldest = this._queue.shift();
            this._settle(oldest, null, new SwitchboardError("queue_full", `the offline queue holds at most ${this._queueSize} sends`));
        }
    }

    _transmit(entry, { resend = false } = {}) {
        const ws = this._ws;
        this._inflight.set(entry.id, entry);
        if (!resend && entry.timeout !== Infinity && entry.timeout > 0 && entry.timer === null) {
            entry.deadline = this._now() + entry.timeout;
            entry.timer = this._setTimeout(() => {
                entry.timer = null;
                this._inflight.delete(entry.id);
                const index = this._queue.indexOf(entry);
                if (index >= 0) this._queue.splice(index, 1);
                this._settle(entry, null, new SwitchboardError("timeout", `no reply to ${entry.event} within ${entry.timeout} ms`));
            }, entry.timeout);
        }
        const envelope = { event: entry.event, id: entry.id };
        if (entry.data !== undefined) envelope.data = entry.data;
        this._write(ws, envelope);
    }

    _write(ws, envelope) {
        try {
            ws.send(JSON.stringify(envelope));
        } catch {
            // The socket is closing; its close handler resends what is in flight.
        }
    }

    _settle(entry, value, error) {
        if (entry.settled) return;
        entry.settled = true;
        if (entry.timer !== null) this._clearTimeout(entry.timer);
        entry.timer = null;
        if (entry.retryTimer) this._clearTimeout(entry.retryTimer);
        entry.retryTimer = null;
        if (error) entry.reject(error);
        else entry.resolve(value);
    }

    _handleMessage(ws, message) {
        if (ws !== this._ws) return;
        this._lastReceivedAt = this._now();
        if (typeof message.data !== "string") return; // binary messages: not handled by this client yet
        let envelope;
        try {
            envelope = JSON.parse(message.data);
        } catch {
            return;
        }
        if (!envelope || typeof envelope !== "object" || typeof envelope.event !== "string") return;
        const { event } = envelope;
        if ((event === "ack" || event === "error") && typeof envelope.id === "string") {
            this._handleReply(envelope);
            return;
        }
        if (event === "state.refresh" && typeof envelope.room === "string") {
            const position = parseEventID(envelope.eid);
            if (position) this._resetPosition(envelope.room, position);
            this._replayUntil.delete(envelope.room);
            this._emit("refresh", [envelope.room, envelope.data ?? null]);
            return;
        }
        if (event === "error") {
            this._emit("error", [new SwitchboardError(envelope.data?.code ?? "error", envelope.data?.message ?? "error")]);
            return;
        }
        const room = typeof envelope.room === "string" ? envelope.room : null;
        let eid = null;
        let replayed = false;
        if (room !== null && envelope.eid !== undefined && envelope.eid !== null) {
            const position = parseEventID(envelope.eid);
            if (position) {
                const known = this._positions.get(room);
                if (known && known.epoch === position.epoch && position.offset <= known.offset) return; // seen
                if (known && known.epoch !== position.epoch) {
                    // The room's history was lost on the server: what the app holds is stale.
                    this._resetPosition(room, position);
                    this._emit("refresh", [room, null]);
                }
                const own = this._seenAhead.get(room)?.has(position.offset) === true;
                // Advanced before the handler runs, so a throwing handler cannot cause a replay.
                this._advancePosition(room, position);
                const until = this._replayUntil.get(room);
                if (until && until.epoch === position.epoch && position.offset <= until.offset) {
                    replayed = true;
                    if (position.offset === until.offset) this._replayUntil.delete(room);
                }
                if (own) return; // one of the client's own events, replayed: its ack was the delivery
                eid = envelope.eid;
            }
        }
        const meta = { event, room, eid, replayed };
        this._emit(event, [envelope.data, meta]);
        if (event !== "*" && this._handlers.get("*")?.size) this._emit("*", [envelope.data, meta]);
    }

    _handleReply(envelope) {
        const internal = this._internal.get(envelope.id);
        if (internal) {
            this._internal.delete(envelope.id);
            internal(envelope);
            return;
        }
        const entry = this._inflight.get(envelope.id);
        if (!entry) return;
        this._inflight.delete(envelope.id);
        if (envelope.event === "error") {
            const code = envelope.data?.code ?? "error";
            const retryAfter = envelope.data?.retryAfter;
            if (code === "rate_limited" && Number.isFinite(retryAfter) && (entry.deadline === undefined || this._now() + retryAfter < entry.deadline)) {
                // Not handled by the server: sent again, with its id, once its bucket has a token.
                this._inflight.set(entry.id, entry);
                entry.retryTimer = this._setTimeout(() => {
                    entry.retryTimer = null;
                    // After a reconnect the resume has sent it again already.
                    if (!entry.settled && this._inflight.get(entry.id) === entry && this._isOpen()) this._transmit(entry, { resend: true });
                }, Math.max(1, retryAfter));
                return;
            }
            this._settle(entry, null, new SwitchboardError(code, envelope.data?.message ?? code));
            return;
        }
        const data = envelope.data;
        this._noteAck(entry, data);
        this._settle(entry, data, null);
    }

    /** What an ack tells about rooms and positions. */
    _noteAck(entry, data) {
        const room = entry.data && typeof entry.data === "object" ? entry.data.room : undefined;
        if (typeof room !== "string") return;
        if (entry.event === "room.join") {
            this._rooms.add(room);
            const current = parseEventID(data?.eid);
            const known = this._positions.get(room);
            if (!current || data?.recovered === false) return; // state.refresh follows
            if (entry.data.since !== undefined && known && known.epoch === current.epoch) {
                if (current.offset > known.offset) this._replayUntil.set(room, current);
            } else if (!known || known.epoch !== current.epoch || current.offset > known.offset) {
                this._resetPosition(room, current);
            }
            return;
        }
        if (entry.event === "room.leave") {
            this._rooms.delete(room);
            this._replayUntil.delete(room);
            this._seenAhead.delete(room);
            return;
        }
        // An own publish: its eid counts as seen (the sender does not receive its own event). The
        // ack can come before events published just before it (they reach this connection's
        // event loop through another one), so the position only moves over what is contiguous.
        const own = parseEventID(data?.eid);
        const known = this._positions.get(room);
        if (!own || !known || known.epoch !== own.epoch || own.offset <= known.offset) return;
        if (own.offset === known.offset + 1) {
            this._advancePosition(room, own);
            return;
        }
        let ahead = this._seenAhead.get(room);
        if (!ahead) this._seenAhead.set(room, (ahead = new Set()));
        if (ahead.size >= MAX_SEEN_AHEAD) ahead.delete(Math.min(...ahead));
        ahead.add(own.offset);
    }

    /** The client is in `room` from `position` on: what it knew ahead of the old position is void. */
    _resetPosition(room, position) {
        this._positions.set(room, position);
        this._seenAhead.delete(room);
    }

    /** Moves the position of `room` to `position`, then over the own events just after it. */
    _advancePosition(room, position) {
        const ahead = this._seenAhead.get(room);
        let offset = position.offset;
        if (ahead) {
            for (const seen of ahead) if (seen <= offset) ahead.delete(seen);
            while (ahead.delete(offset + 1)) offset += 1;
            if (ahead.size === 0) this._seenAhead.delete(room);
        }
        this._positions.set(room, { epoch: position.epoch, offset });
    }

    _emit(event, args) {
        const handlers = this._handlers.get(event);
        if (!handlers || handlers.size === 0) {
            if (event === "error") console.error("Switchboard:", args[0]);
            return;
        }
        for (const handler of [...handlers]) {
            try {
                handler(...args);
            } catch (error) {
                if (event === "error") console.error("Switchboard: error handler threw", error);
                else this._emit("error", [error]);
            }
        }
    }
}

export default Switchboard;
