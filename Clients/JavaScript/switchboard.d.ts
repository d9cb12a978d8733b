// Types of switchboard.js, the Switchboard JavaScript client (wire protocol version 2).

export declare const PROTOCOL_VERSION: 2;

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** Why the state changed: a close (code), a refused handshake (status, code), a token failure, … */
export interface StateReason {
    type: "connect" | "open" | "close" | "handshake" | "token_error" | "closed_by_client" | "online" | "error" | string;
    /** The WebSocket close code, or the handshake's error code. */
    code?: number | string;
    /** The close reason. */
    reason?: string;
    /** HTTP status of the handshake check (401, 403, 429, 503; 426 when it would accept; 0 when unreachable). */
    status?: number;
    message?: string;
    wasClean?: boolean;
    /** True when the client stopped because retrying will not help. */
    fatal?: boolean;
    error?: unknown;
}

export interface EventMeta {
    event: string;
    room: string | null;
    /** `null` for ephemeral events (typing, presence). */
    eid: string | null;
    /** Missed while disconnected and replayed on resume. */
    replayed: boolean;
}

export interface BackoffLimits {
    /** First delay, ms (1000). */
    initial?: number;
    /** Cap of the doubling, ms (30000). */
    max?: number;
    /** Fraction taken off at random after the cap (0.5). */
    jitter?: number;
    /** Least time between two attempts, ms (250). */
    floor?: number;
    /** Open this long resets the doubling, ms (5000). */
    resetAfter?: number;
}

export interface SwitchboardOptions {
    token?: string | (() => string | Promise<string>);
    WebSocket?: { new (url: string): WebSocket };
    fetch?: typeof fetch;
    backoff?: BackoffLimits;
    /** ms a send waits for its reply once sent (10000). */
    ackTimeout?: number;
    /** Most sends kept while offline (100). */
    queueSize?: number;
    heartbeat?: { interval?: number; timeout?: number };
    autoConnect?: boolean;
    random?: () => number;
    timers?: { setTimeout(fn: () => void, ms: number): unknown; clearTimeout(handle: unknown): void; now(): number };
}

export interface JoinAck {
    room: string;
    members: string[];
    eid: string;
    recovered: boolean;
}

export declare class SwitchboardError extends Error {
    constructor(code: string, message: string, details?: Record<string, unknown>);
    /** The server's error code, or `timeout`, `queue_full`, `closed`, `token_error`, a handshake code. */
    readonly code: string;
    readonly status?: number;
}

export declare const DEFAULT_BACKOFF: Readonly<Required<BackoffLimits>>;
export declare function backoffDelay(attempt: number, limits?: BackoffLimits, random?: () => number): number;
export declare function parseEventID(eid: unknown): { epoch: string; offset: number } | null;
export declare function randomID(): string;
export declare function probeURL(url: string): string;

export declare class Switchboard {
    constructor(url: string, options?: SwitchboardOptions);
    readonly url: string;
    readonly state: ConnectionState;
    /** The rooms this client is in. */
    readonly rooms: string[];
    /** The last `session.hello` ack. */
    readonly session: { socket: string; user: string; pingInterval: number; pongTimeout: number; maxMessageSize: number; [key: string]: unknown } | null;
    position(room: string): string | null;

    on(event: "state", handler: (state: ConnectionState, reason: StateReason | null) => void): () => void;
    on(event: "refresh", handler: (room: string, snapshot: unknown) => void): () => void;
    on(event: "error", handler: (error: unknown) => void): () => void;
    /** `"*"`: every event from the server (`meta.event` names it), after its own handlers. */
    on<T = any>(event: string, handler: (data: T, meta: EventMeta) => void): () => void;
    off(event: string, handler: (...args: any[]) => void): void;

    /** Sends and waits for the ack's `data`; queued while offline, sent again with its id after a
     * reconnect, and after `retryAfter` when refused with `rate_limited` (rejects with it only when
     * the retry would come after `timeout`). */
    send<T = any>(event: string, data?: unknown, options?: { timeout?: number }): Promise<T>;
    join(room: string): Promise<JoinAck>;
    leave(room: string): Promise<{ room: string; left: boolean }>;
    members(room: string): Promise<string[]>;
    connect(): void;
    close(code?: number, reason?: string): void;
}

export default Switchboard;
