// Types for goim-client (goim.js).

/** goim's operations (the packet header's op field). */
export declare const OP: Readonly<{
    HEARTBEAT: 2;
    HEARTBEAT_REPLY: 3;
    AUTH: 7;
    AUTH_REPLY: 8;
    RAW: 9;
    CHANGE_ROOM: 12;
    CHANGE_ROOM_REPLY: 13;
    SUB: 14;
    SUB_REPLY: 15;
    UNSUB: 16;
    UNSUB_REPLY: 17;
    JOIN: 30;
    JOIN_REPLY: 31;
    LEAVE: 32;
    LEAVE_REPLY: 33;
    RECOVER: 35;
    RECOVER_REPLY: 36;
}>;

export declare const HEADER_LEN: 16;

export type Body = string | Uint8Array | ArrayBuffer | ArrayBufferView | null
                   | undefined;

export interface Packet {
    op: number;
    ver: number;
    seq: number;
    body: Uint8Array;
}

/** One goim packet: the 16-byte big-endian header, then the body. */
export declare function encodePacket(op: number, seq: number, body?: Body,
                                     ver?: number): Uint8Array;

/** Every packet in a WebSocket message or an OP_RAW body. Throws a
 *  GoimError of type 'protocol' on a malformed packet. */
export declare function decodePackets(bytes: Body): Packet[];

/** Full jitter: a random delay in [0, min(max, min * 2^attempt)]. */
export declare function backoffDelay(attempt: number, min: number,
                                     max: number,
                                     random?: () => number): number;

export type ErrorType =
    | 'auth'          // the server refused the token: no reconnect
    | 'replaced'      // another connection with this key took over: no reconnect
    | 'token'         // the token function failed or took too long
    | 'transport'     // the connection could not be made or was closed
    | 'timeout'       // no auth reply, or no reply to a heartbeat/request
    | 'protocol'      // a malformed packet from the server
    | 'disconnected'  // a request made or pending while not connected
    | 'closed'        // close() was called
    | 'superseded'    // a later changeRoom() replaced this one
    | 'refused';      // the server refused a whole join or leave list

/** The server's answer for one room of a join or leave. */
export interface RoomResult {
    room_id: string;
    joined?: boolean;
    left?: boolean;
    /** 'limit', 'bad id', 'not allowed', 'not a member' */
    error?: string;
    reason?: string;
}

export declare class GoimError extends Error {
    constructor(type: ErrorType, message: string, extra?: object);
    readonly name: 'GoimError';
    readonly type: ErrorType;
    /** WebSocket close code, where the server closed the connection. */
    readonly code?: number;
    /** WebSocket close reason, e.g. "auth failed: bad token: ...". */
    readonly reason?: string;
}

/** A message pushed by the server. */
export declare class Message {
    constructor(op: number, body: Uint8Array, ver?: number, seq?: number);
    readonly op: number;
    readonly body: Uint8Array;
    readonly ver: number;
    readonly seq: number;
    /** A room message from a server with goim_history: its room and
     *  offset (the full one; seq holds its low 32 bits). */
    readonly room?: string;
    readonly offset?: number;
    /** The body decoded as UTF-8. */
    readonly text: string;
    /** The body parsed as JSON. */
    json<T = unknown>(): T;
}

/** goim's auth token fields (a plain JSON token, for servers without
 *  goim_auth_secret). */
export interface TokenFields {
    mid?: number;
    key?: string;
    room_id?: string;
    platform?: string;
    accepts?: number[];
}

export type Token = string | Uint8Array | TokenFields;

export interface WebSocketLike {
    binaryType: string;
    readonly readyState: number;
    send(data: Uint8Array): void;
    close(code?: number, reason?: string): void;
    onopen: ((ev: any) => void) | null;
    onmessage: ((ev: { data: any }) => void) | null;
    onerror: ((ev: any) => void) | null;
    onclose: ((ev: { code: number; reason: string }) => void) | null;
}

export interface GoimClientOptions {
    /** The auth token, or a function (may be async) called before every
     *  connection, e.g. to fetch a fresh signed token. An object is sent
     *  as JSON. Required. */
    token: Token | (() => Token | Promise<Token>);
    /** WebSocket constructor; default globalThis.WebSocket (in Node 20,
     *  pass the `ws` package's WebSocket). */
    WebSocket?: new (url: string) => WebSocketLike;
    /** Milliseconds between heartbeats (default 30000). Keep it well
     *  under the server's goim_heartbeat × goim_heartbeat_max. */
    heartbeat?: number;
    /** Milliseconds to wait for the auth reply, any reply, or the token
     *  function; then the connection counts as dead (default 10000). */
    timeout?: number;
    /** Reconnect after a lost connection (default true). */
    reconnect?: boolean;
    /** Backoff: the first delay is random in [0, min]; the cap doubles
     *  up to max (defaults 500 and 20000 ms). */
    minReconnectDelay?: number;
    maxReconnectDelay?: number;
    /** A connection that lived this long resets the backoff (10000 ms). */
    stableAfter?: number;
    /** With a server's goim_history: on reconnect, get the room messages
     *  missed since the last one read (op 35; default true). */
    recover?: boolean;
}

export interface RecoverInfo {
    room: string;
    /** false: messages were missed; reload the room's state. */
    recovered: boolean;
    /** Why not: "epoch changed", "offset older than the history", ... */
    reason: string | null;
    /** How many missed messages came before this event. */
    messages: number;
}

export interface Position {
    epoch: string;
    offset: number;
}

export type State = 'disconnected' | 'connecting' | 'connected';

export interface ConnectInfo {
    /** From the server's auth reply (null from goim's own comet). */
    mid: number | null;
    key: string | null;
    room: string | null;
    /** True from the second connection on: whatever was pushed in
     *  between was missed (no recovery yet). */
    reconnected: boolean;
}

export interface DisconnectInfo {
    /** WebSocket close code, when the server closed it. */
    code?: number | null;
    reason?: string | null;
    /** Whether the client will try again, and in how many ms. */
    reconnect: boolean;
    delay: number | null;
    error?: GoimError;
    /** Whether this connection had been authenticated. */
    wasConnected?: boolean;
}

export interface EventMap {
    state: (state: State, previous: State) => void;
    connect: (info: ConnectInfo) => void;
    disconnect: (info: DisconnectInfo) => void;
    error: (error: GoimError) => void;
    online: (count: number) => void;
    room: (room: string | null) => void;
    message: (message: Message) => void;
    recover: (info: RecoverInfo) => void;
}

export declare class GoimClient {
    /** url: "ws(s)://host/sub", a relative "/sub" in a page, or several
     *  URLs tried in turn when connecting fails. */
    constructor(url: string | string[], options: GoimClientOptions);
    readonly options: Required<Omit<GoimClientOptions, 'WebSocket'>>
                      & Pick<GoimClientOptions, 'WebSocket'>;
    readonly state: State;
    readonly info: { mid: number | null; key: string | null;
                     room: string | null;
                     /** the token's rooms, when it had room_ids */
                     rooms?: RoomResult[] } | null;
    readonly room: string | null;
    /** The room's online count from the last heartbeat reply. */
    readonly online: number | null;
    readonly url: string;
    /** Each room's position: its epoch and the last offset read. */
    readonly positions: Record<string, Position>;
    /** The rooms joined with joinRooms() and not left since. */
    readonly rooms: string[];

    on<E extends keyof EventMap>(event: E, fn: EventMap[E]): () => void;
    /** The messages of one operation. */
    on(op: number, fn: (message: Message) => void): () => void;
    off<E extends keyof EventMap>(event: E, fn: EventMap[E]): void;
    off(op: number, fn: (message: Message) => void): void;

    connect(): void;
    close(): void;
    changeRoom(room: string): Promise<string>;
    watch(ops: number | number[]): Promise<void>;
    unwatch(ops: number | number[]): Promise<void>;
    /** Joins rooms beside the first (op 30), again after reconnects;
     *  null while not connected. */
    joinRooms(rooms: string | string[]): Promise<RoomResult[] | null>;
    /** Leaves rooms (op 32); null while not connected. */
    leaveRooms(rooms: string | string[]): Promise<RoomResult[] | null>;
    /** A heartbeat now; resolves with the room's online count. */
    ping(): Promise<number>;
}

export default GoimClient;
