// goim-client: a WebSocket client for goim (and goim for nginx).
// One ES module, no dependencies; runs in browsers and in Node 20+
// (Node 20 has no WebSocket global: pass one, e.g. the `ws` package's).
// Types: goim.d.ts.  Documentation: README.md.

// goim's operations (the packet header's op field)
export const OP = Object.freeze({
    HEARTBEAT: 2,
    HEARTBEAT_REPLY: 3,
    AUTH: 7,
    AUTH_REPLY: 8,
    RAW: 9,
    CHANGE_ROOM: 12,
    CHANGE_ROOM_REPLY: 13,
    SUB: 14,
    SUB_REPLY: 15,
    UNSUB: 16,
    UNSUB_REPLY: 17,
    // goim for nginx only: several rooms per connection
    JOIN: 30,
    JOIN_REPLY: 31,
    LEAVE: 32,
    LEAVE_REPLY: 33,
    RECOVER: 35,            // with goim_history (docs/PROTOCOL.md 1.15)
    RECOVER_REPLY: 36,
});

export const HEADER_LEN = 16;

// What the server accepts in a room id (a longer one or one with control
// characters is refused by the server, which still echoes it).
const MAX_ROOM_BYTES = 256;

// WebSocket close codes the client acts on
const WS_GOING_AWAY = 1001;
const WS_POLICY = 1008;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

function toBytes(data) {
    if (data == null) {
        return new Uint8Array(0);
    }
    if (data instanceof Uint8Array) {
        return data;
    }
    if (typeof data === 'string') {
        return utf8.encode(data);
    }
    if (data instanceof ArrayBuffer) {
        return new Uint8Array(data);
    }
    if (ArrayBuffer.isView(data)) {
        return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }
    throw new TypeError('body must be a string, Uint8Array or ArrayBuffer');
}

// One goim packet: 16-byte big-endian header, then the body.
export function encodePacket(op, seq, body, ver = 1) {
    const b = toBytes(body);
    const out = new Uint8Array(HEADER_LEN + b.length);
    const v = new DataView(out.buffer);
    v.setInt32(0, out.length);
    v.setInt16(4, HEADER_LEN);
    v.setInt16(6, ver);
    v.setInt32(8, op);
    v.setInt32(12, seq);
    out.set(b, HEADER_LEN);
    return out;
}

// Every packet in `bytes` (a WebSocket message, or an OP_RAW body, which
// holds one or more whole packets).  Throws a GoimError of type 'protocol'
// on a malformed packet.
export function decodePackets(bytes) {
    const buf = toBytes(bytes);
    const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const out = [];
    let off = 0;
    while (off < buf.length) {
        if (buf.length - off < HEADER_LEN) {
            throw new GoimError('protocol',
                `truncated packet header at byte ${off}`);
        }
        const packLen = v.getInt32(off);
        const headerLen = v.getInt16(off + 4);
        if (headerLen !== HEADER_LEN || packLen < HEADER_LEN
            || packLen > buf.length - off)
        {
            throw new GoimError('protocol', `bad packet at byte ${off}: `
                + `packLen ${packLen}, headerLen ${headerLen}`);
        }
        out.push({
            ver: v.getInt16(off + 6),
            op: v.getInt32(off + 8),
            seq: v.getInt32(off + 12),
            body: buf.subarray(off + HEADER_LEN, off + packLen),
        });
        off += packLen;
    }
    return out;
}

// Full jitter: a random delay in [0, min(max, min * 2^attempt)], so that
// clients dropped together do not come back together.
export function backoffDelay(attempt, min, max, random = Math.random) {
    const cap = Math.min(max, min * Math.pow(2, Math.min(attempt, 30)));
    return Math.floor(random() * cap);
}

export class GoimError extends Error {
    constructor(type, message, extra) {
        super(message);
        this.name = 'GoimError';
        this.type = type;
        if (extra) {
            Object.assign(this, extra);
        }
    }
}

// A message pushed by the server.
export class Message {
    constructor(op, body, ver = 1, seq = 0) {
        this.op = op;
        this.body = body;
        this.ver = ver;
        this.seq = seq;
        this._text = undefined;
    }

    get text() {
        if (this._text === undefined) {
            this._text = utf8Decoder.decode(this.body);
        }
        return this._text;
    }

    json() {
        return JSON.parse(this.text);
    }
}

const DEFAULTS = {
    token: undefined,
    WebSocket: undefined,
    heartbeat: 30000,
    timeout: 10000,
    reconnect: true,
    minReconnectDelay: 500,
    maxReconnectDelay: 20000,
    stableAfter: 10000,
    recover: true,
};

function checkRoom(room) {
    if (typeof room !== 'string') {
        throw new TypeError('room must be a string');
    }
    if (utf8.encode(room).length > MAX_ROOM_BYTES) {
        throw new RangeError(`room id longer than ${MAX_ROOM_BYTES} bytes`);
    }
    if (/[\u0000-\u001f\u007f]/.test(room)) {
        throw new RangeError('room id with a control character');
    }
}

function checkRooms(rooms) {
    const list = Array.isArray(rooms) ? rooms : [rooms];
    for (const room of list) {
        checkRoom(room);
        if (room === '') {
            throw new RangeError('empty room id');
        }
    }
    return list;
}

function checkOps(ops) {
    const list = Array.isArray(ops) ? ops : [ops];
    for (const op of list) {
        if (!Number.isInteger(op) || op < -2147483648 || op > 2147483647) {
            throw new TypeError(`operation ${op} is not an int32`);
        }
    }
    return list;
}

// A relative URL ("/sub") is resolved against the page's location.
function resolveUrl(url) {
    if (/^wss?:\/\//i.test(url)) {
        return url;
    }
    const loc = globalThis.location;
    if (loc && loc.href) {
        const u = new URL(url, loc.href);
        u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
        return u.href;
    }
    if (/^https?:\/\//i.test(url)) {
        return url.replace(/^http/i, 'ws');
    }
    throw new TypeError(`not a WebSocket URL: ${url}`);
}

export class GoimClient {
    // url: "ws://host:3102/sub", a relative "/sub" in a page, or an array
    // of URLs tried in turn on reconnects.
    constructor(url, options = {}) {
        const urls = Array.isArray(url) ? url.slice() : [url];
        if (!urls.length || urls.some((u) => typeof u !== 'string')) {
            throw new TypeError('url must be a string or an array of strings');
        }
        this.options = { ...DEFAULTS, ...options };
        const o = this.options;
        if (o.token === undefined) {
            throw new TypeError('options.token is required');
        }
        for (const k of ['heartbeat', 'timeout', 'minReconnectDelay',
                         'maxReconnectDelay', 'stableAfter'])
        {
            if (!(typeof o[k] === 'number' && o[k] >= 0)) {
                throw new TypeError(`options.${k} must be a number >= 0`);
            }
        }
        this._WebSocket = o.WebSocket || globalThis.WebSocket;
        if (typeof this._WebSocket !== 'function') {
            throw new TypeError('no WebSocket: pass options.WebSocket '
                + '(in Node 20, the `ws` package\'s WebSocket)');
        }

        this._urls = urls;
        this._urlIndex = 0;
        this._handlers = new Map();
        this._state = 'disconnected';
        this._info = null;
        this._room = null;          // the room the server has us in
        this._wantRoom = undefined; // the room asked for with changeRoom()
        this._roomWaiters = [];
        this._watched = new Set();
        this._rooms = new Set();    // rooms asked for with joinRooms()
        this._online = null;
        this._attempt = 0;
        this._conn = null;          // the current connection's state
        this._timer = null;         // reconnect timer
        this._started = false;      // connect() called, close() not yet
        this._seq = 0;
        this._everConnected = false;
        this._onOnline = () => this._reconnectNow();
        // room -> {epoch, offset}: the last room message read (goim_history)
        this._positions = new Map();
        // stream id (a room message's ver) -> room
        this._streams = new Map();
    }

    // {room: {epoch, offset}}: where each room's stream is, to recover
    // from after a reconnect (servers with goim_history only)
    get positions() {
        return Object.fromEntries(this._positions);
    }

    // op 35 for the rooms given that have a position: the server sends
    // what was missed when the next op 7, op 12 or op 30 joins them
    _askRecover(conn, rooms) {
        if (!this.options.recover) {
            return;
        }
        const list = [];
        for (const room of new Set(rooms)) {
            const p = room ? this._positions.get(room) : undefined;
            if (p) {
                list.push({ room_id: room, epoch: p.epoch, offset: p.offset });
                conn.asked.add(room);
            }
        }
        if (list.length) {
            this._send(conn, OP.RECOVER, JSON.stringify({ rooms: list }));
        }
    }

    // positions from op 8, op 31 or op 36:
    // [{room_id, stream, epoch, offset}, ...]
    _setPositions(conn, rooms, fromJoin) {
        if (!Array.isArray(rooms)) {
            return;
        }
        for (const r of rooms) {
            if (!r || typeof r.room_id !== 'string'
                || typeof r.epoch !== 'string'
                || typeof r.offset !== 'number'
                || typeof r.stream !== 'number')
            {
                continue;
            }
            this._streams.set(r.stream, r.room_id);
            // recovered messages follow op 8 or op 31: they move the
            // position, and op 36 gives it when they did not come
            if (fromJoin && conn.asked.has(r.room_id)) {
                continue;
            }
            this._positions.set(r.room_id, { epoch: r.epoch,
                                             offset: r.offset });
        }
    }

    get state() {
        return this._state;
    }

    // {mid, key, room} from the server's auth reply, while connected
    get info() {
        return this._info;
    }

    get room() {
        return this._room;
    }

    get online() {
        return this._online;
    }

    // the rooms joined with joinRooms() and not left since
    get rooms() {
        return Array.from(this._rooms);
    }

    get url() {
        return this._urls[this._urlIndex];
    }

    // event: 'state', 'connect', 'disconnect', 'error', 'online', 'room',
    // 'message', or an operation number (the messages of that operation).
    // Returns a function that removes the handler.
    on(event, fn) {
        if (typeof fn !== 'function') {
            throw new TypeError('handler must be a function');
        }
        let set = this._handlers.get(event);
        if (!set) {
            set = new Set();
            this._handlers.set(event, set);
        }
        set.add(fn);
        return () => this.off(event, fn);
    }

    off(event, fn) {
        const set = this._handlers.get(event);
        if (set) {
            set.delete(fn);
        }
    }

    _emit(event, ...args) {
        const set = this._handlers.get(event);
        if (!set) {
            return;
        }
        for (const fn of Array.from(set)) {
            try {
                fn(...args);
            } catch (e) {
                // an application's handler must not break the client
                if (typeof globalThis.reportError === 'function') {
                    globalThis.reportError(e);
                } else {
                    console.error(e);
                }
            }
        }
    }

    _setState(state) {
        if (this._state === state) {
            return;
        }
        const prev = this._state;
        this._state = state;
        this._emit('state', state, prev);
    }

    // Starts connecting (and reconnecting, until close()).
    connect() {
        if (this._started) {
            return;
        }
        this._started = true;
        this._attempt = 0;
        if (typeof globalThis.addEventListener === 'function') {
            globalThis.addEventListener('online', this._onOnline);
        }
        this._open();
    }

    // Closes the connection and stops reconnecting.  The server sees a
    // WebSocket Close 1000.
    close() {
        const wasStarted = this._started;
        this._started = false;
        if (typeof globalThis.removeEventListener === 'function') {
            globalThis.removeEventListener('online', this._onOnline);
        }
        clearTimeout(this._timer);
        this._timer = null;
        const conn = this._conn;
        this._conn = null;
        if (conn) {
            this._teardown(conn, 1000, 'client closed');
        }
        this._failRoomWaiters(new GoimError('closed', 'client closed'));
        this._info = null;
        this._setState('disconnected');
        if (wasStarted && conn && conn.authed) {
            this._emit('disconnect', { code: 1000, reason: 'client closed',
                                       reconnect: false, delay: null });
        }
    }

    // Moves this connection to another room ("" leaves every room).  The
    // promise resolves once the server confirmed it; while disconnected
    // the room is changed as soon as the client is connected again.
    changeRoom(room) {
        checkRoom(room);
        this._wantRoom = room;
        const p = new Promise((resolve, reject) => {
            this._roomWaiters.push({ room, resolve, reject });
        });
        if (this._conn && this._conn.authed) {
            this._syncRoom(this._conn);
        }
        return p;
    }

    // Adds operations to those this connection receives in key, mid and
    // broadcast pushes (room pushes reach every member anyway).  Kept
    // across reconnects.  Resolves once the server confirmed it.
    watch(ops) {
        const list = checkOps(ops);
        for (const op of list) {
            this._watched.add(op);
        }
        return this._subRequest(OP.SUB, list);
    }

    unwatch(ops) {
        const list = checkOps(ops);
        for (const op of list) {
            this._watched.delete(op);
        }
        return this._subRequest(OP.UNSUB, list);
    }

    // Joins more rooms beside the first (goim for nginx, op 30); kept
    // across reconnects.  Resolves with the server's result per room,
    // [{room_id, joined, error?}], or null when not connected (they are
    // joined on the next connect).
    joinRooms(rooms) {
        const list = checkRooms(rooms);
        for (const room of list) {
            this._rooms.add(room);
        }
        return this._roomsRequest(OP.JOIN, list);
    }

    // Leaves rooms (op 32), the first room included; resolves with
    // [{room_id, left, error?}], or null when not connected.
    leaveRooms(rooms) {
        const list = checkRooms(rooms);
        for (const room of list) {
            this._rooms.delete(room);
        }
        return this._roomsRequest(OP.LEAVE, list);
    }

    _roomsRequest(op, list) {
        const conn = this._conn;
        if (!conn || !conn.authed) {
            return Promise.resolve(null);
        }
        if (op === OP.JOIN) {
            this._askRecover(conn, list);
        }
        return this._request(conn, op, JSON.stringify(list));
    }

    // Sends a heartbeat now; resolves with the room's online count.
    ping() {
        const conn = this._conn;
        if (!conn || !conn.authed) {
            return Promise.reject(new GoimError('disconnected',
                                                'not connected'));
        }
        return this._heartbeat(conn);
    }

    _subRequest(op, list) {
        const conn = this._conn;
        if (!conn || !conn.authed) {
            return Promise.resolve();   // sent on the next connect
        }
        return this._request(conn, op, list.join(',')).then(() => {});
    }

    // --- connecting ------------------------------------------------------

    async _open() {
        this._setState('connecting');
        const conn = {
            ws: null,
            authed: false,
            since: 0,
            pending: new Map(),
            asked: new Set(),   // rooms named in op 35
            timer: null,        // connect / auth deadline
            hbTimer: null,      // next heartbeat
            dead: false,
        };
        this._conn = conn;

        let token;
        let tokenRooms = [];
        try {
            const t = this.options.token;
            token = typeof t === 'function'
                    ? await this._withTimeout(t(), 'the token function')
                    : t;
            if (token !== null && typeof token === 'object'
                && !(token instanceof Uint8Array))
            {
                tokenRooms = [token.room_id].concat(
                    Array.isArray(token.room_ids) ? token.room_ids : [])
                    .filter((r) => typeof r === 'string');
                token = JSON.stringify(token);
            }
            if (typeof token !== 'string' && !(token instanceof Uint8Array)) {
                throw new TypeError('the token is not a string');
            }
        } catch (e) {
            if (this._conn !== conn) {
                return;
            }
            this._conn = null;
            this._emit('error', new GoimError('token',
                `could not get a token: ${e && e.message || e}`,
                { cause: e }));
            this._retry(conn, null, null);
            return;
        }
        if (this._conn !== conn) {
            return;             // closed meanwhile
        }

        let ws;
        try {
            ws = new this._WebSocket(resolveUrl(this.url));
        } catch (e) {
            this._conn = null;
            this._emit('error', new GoimError('transport',
                `cannot open ${this.url}: ${e && e.message || e}`));
            this._retry(conn, null, null);
            return;
        }
        conn.ws = ws;
        ws.binaryType = 'arraybuffer';

        conn.timer = setTimeout(() => {
            this._lost(conn, new GoimError('timeout',
                `no auth reply within ${this.options.timeout} ms`));
        }, this.options.timeout);

        ws.onopen = () => {
            if (this._conn === conn) {
                // op 35 goes right before op 7 (docs/PROTOCOL.md 1.15),
                // with the member's own room (members=on, 1.16)
                const members = [...this._positions.keys()]
                    .filter((r) => r.startsWith('mid://'));
                this._askRecover(conn, [this._room, this._wantRoom,
                                        ...tokenRooms, ...members]);
                this._send(conn, OP.AUTH, token);
            }
        };
        ws.onmessage = (ev) => this._onData(conn, ev.data);
        ws.onerror = () => {
            // the close event that follows says more
        };
        ws.onclose = (ev) => this._onClose(conn, ev.code, ev.reason);
    }

    _withTimeout(value, what) {
        let timer;
        const limit = new Promise((resolve, reject) => {
            timer = setTimeout(() => reject(new Error(`${what} did not `
                + `answer within ${this.options.timeout} ms`)),
                this.options.timeout);
        });
        return Promise.race([Promise.resolve(value), limit])
            .finally(() => clearTimeout(timer));
    }

    _onClose(conn, code, reason) {
        if (this._conn !== conn) {
            return;
        }
        reason = reason || '';
        if (code === WS_POLICY && !conn.authed) {
            // the server refused this token: another try would be refused
            // too (a token function gets its chance at the next connect())
            this._fatal(conn, new GoimError('auth',
                `the server refused the token: ${reason || 'no reason given'}`,
                { code, reason }));
            return;
        }
        if (code === WS_POLICY && /^duplicate key/.test(reason)) {
            // another connection with our key took over: coming back would
            // take it from that one, and so on
            this._fatal(conn, new GoimError('replaced',
                `replaced by another connection with key `
                + `"${conn.authed && this._info ? this._info.key : ''}"`,
                { code, reason }));
            return;
        }
        const what = code === WS_GOING_AWAY ? 'server going away'
                     : `connection closed (${code}${reason ? ' ' + reason : ''})`;
        this._lost(conn, new GoimError('transport', what, { code, reason }),
                   code, reason);
    }

    _fatal(conn, err) {
        this._conn = null;
        this._started = false;
        if (typeof globalThis.removeEventListener === 'function') {
            globalThis.removeEventListener('online', this._onOnline);
        }
        const wasAuthed = conn.authed;
        this._teardown(conn);
        this._info = null;
        this._emit('error', err);
        this._failRoomWaiters(err);
        this._setState('disconnected');
        this._emit('disconnect', { code: err.code, reason: err.reason,
                                   reconnect: false, delay: null,
                                   error: err, wasConnected: wasAuthed });
    }

    // The connection failed or died: drop it and try again later.
    _lost(conn, err, code, reason) {
        if (this._conn !== conn) {
            return;
        }
        this._conn = null;
        this._teardown(conn, 1000, 'reconnecting');
        this._emit('error', err);
        this._retry(conn, code, reason, err);
    }

    _retry(conn, code, reason, err) {
        const wasAuthed = conn.authed;
        if (wasAuthed && Date.now() - conn.since >= this.options.stableAfter) {
            this._attempt = 0;   // it had worked for a while
        }
        this._info = null;
        if (!this._started || !this.options.reconnect) {
            this._started = false;
            this._setState('disconnected');
            this._emit('disconnect', { code, reason, reconnect: false,
                                       delay: null, error: err,
                                       wasConnected: wasAuthed });
            return;
        }
        if (!wasAuthed && this._urls.length > 1) {
            this._urlIndex = (this._urlIndex + 1) % this._urls.length;
        }
        const o = this.options;
        const delay = backoffDelay(this._attempt++, o.minReconnectDelay,
                                   o.maxReconnectDelay);
        this._setState('connecting');
        this._emit('disconnect', { code, reason, reconnect: true, delay,
                                   error: err, wasConnected: wasAuthed });
        clearTimeout(this._timer);
        this._timer = setTimeout(() => {
            this._timer = null;
            if (this._started && !this._conn) {
                this._open();
            }
        }, delay);
    }

    // The browser says the network is back: do not wait out the backoff.
    _reconnectNow() {
        if (this._started && !this._conn && this._timer) {
            clearTimeout(this._timer);
            this._timer = null;
            this._attempt = 0;
            this._open();
        }
    }

    _teardown(conn, code, reason) {
        conn.dead = true;
        clearTimeout(conn.timer);
        clearTimeout(conn.hbTimer);
        for (const p of conn.pending.values()) {
            clearTimeout(p.timer);
            p.reject(new GoimError('disconnected', 'connection lost'));
        }
        conn.pending.clear();
        const ws = conn.ws;
        if (!ws) {
            return;
        }
        ws.onopen = ws.onmessage = ws.onclose = null;
        ws.onerror = () => {};
        try {
            if (code !== undefined && ws.readyState === 1) {
                ws.close(code, reason);
            } else {
                ws.close();
            }
        } catch (e) {
            // closing a socket that is still connecting may throw (ws)
        }
        // a dead peer never answers the Close: free the socket at once
        // where the implementation allows it (the ws package)
        if (typeof ws.terminate === 'function' && code !== 1000) {
            try { ws.terminate(); } catch (e) { /* already gone */ }
        }
        if (typeof ws.terminate === 'function' && code === 1000) {
            const t = setTimeout(() => {
                try { ws.terminate(); } catch (e) { /* already gone */ }
            }, 1000);
            if (t.unref) {
                t.unref();
            }
        }
    }

    // --- packets ---------------------------------------------------------

    _nextSeq() {
        this._seq = (this._seq % 0x7fffffff) + 1;
        return this._seq;
    }

    _send(conn, op, body) {
        const seq = this._nextSeq();
        try {
            conn.ws.send(encodePacket(op, seq, body));
        } catch (e) {
            this._lost(conn, new GoimError('transport',
                `send failed: ${e && e.message || e}`));
        }
        return seq;
    }

    // A request the server answers (op + 1).  A missing answer means the
    // connection is dead: the server answers every request, in order.
    _request(conn, op, body) {
        return new Promise((resolve, reject) => {
            const seq = this._send(conn, op, body);
            if (conn.dead) {
                reject(new GoimError('disconnected', 'connection lost'));
                return;
            }
            const timer = setTimeout(() => {
                conn.pending.delete(seq);
                reject(new GoimError('timeout', `no reply to op ${op}`));
                this._lost(conn, new GoimError('timeout',
                    `no reply from the server within `
                    + `${this.options.timeout} ms`));
            }, this.options.timeout);
            conn.pending.set(seq, { op: op + 1, resolve, reject, timer });
        });
    }

    _heartbeat(conn) {
        return this._request(conn, OP.HEARTBEAT, null);
    }

    _scheduleHeartbeat(conn) {
        clearTimeout(conn.hbTimer);
        conn.hbTimer = setTimeout(() => {
            if (this._conn === conn && !conn.dead) {
                this._heartbeat(conn).catch(() => {});
            }
        }, this.options.heartbeat);
    }

    _onData(conn, data) {
        if (this._conn !== conn) {
            return;
        }
        if (typeof data === 'string') {
            data = utf8.encode(data);   // goim allows text frames too
        }
        let packets;
        try {
            packets = decodePackets(data);
        } catch (e) {
            this._lost(conn, e);
            return;
        }
        for (const p of packets) {
            if (this._conn !== conn) {
                return;
            }
            this._onPacket(conn, p);
        }
    }

    _onPacket(conn, p) {
        switch (p.op) {
        case OP.AUTH_REPLY:
            this._onAuthReply(conn, p);
            return;
        case OP.RAW: {
            let inner;
            try {
                inner = decodePackets(p.body);
            } catch (e) {
                this._lost(conn, e);
                return;
            }
            for (const q of inner) {
                this._deliver(q);
            }
            return;
        }
        case OP.RECOVER_REPLY:
            this._onRecoverReply(conn, p);
            return;
        case OP.HEARTBEAT_REPLY:
            if (p.body.length >= 4) {
                const v = new DataView(p.body.buffer, p.body.byteOffset, 4);
                const n = v.getUint32(0);
                if (n !== this._online) {
                    this._online = n;
                    this._emit('online', n);
                }
            }
            this._answer(conn, p, this._online);
            if (this._conn === conn) {
                this._scheduleHeartbeat(conn);
            }
            return;
        case OP.CHANGE_ROOM_REPLY: {
            const room = utf8Decoder.decode(p.body);
            this._answer(conn, p, room);
            this._roomChanged(room);
            return;
        }
        case OP.SUB_REPLY:
        case OP.UNSUB_REPLY:
            this._answer(conn, p);
            return;
        case OP.JOIN_REPLY:
        case OP.LEAVE_REPLY: {
            let r = null;
            try {
                r = JSON.parse(utf8Decoder.decode(p.body));
            } catch (e) {
                r = null;
            }
            const pending = conn.pending.get(p.seq);
            if (r && typeof r.error === 'string' && pending
                && pending.op === p.op)
            {
                conn.pending.delete(p.seq);
                clearTimeout(pending.timer);
                pending.reject(new GoimError('refused', r.error));
                return;
            }
            if (r && p.op === OP.JOIN_REPLY) {
                this._setPositions(conn, r.rooms, true);
            }
            this._answer(conn, p, r && Array.isArray(r.rooms) ? r.rooms : []);
            return;
        }
        default:
            // a packet pushed directly (not in an OP_RAW batch)
            this._deliver(p);
        }
    }

    _answer(conn, p, value) {
        const r = conn.pending.get(p.seq);
        if (r && r.op === p.op) {
            conn.pending.delete(p.seq);
            clearTimeout(r.timer);
            r.resolve(value);
        }
    }

    _deliver(p) {
        const m = new Message(p.op, p.body, p.ver, p.seq);
        // a room message: ver is its room's stream id, seq its offset's
        // low 32 bits (docs/PROTOCOL.md 1.15); ver 0 is the member's
        // stream in Redis (1.16), whose messages may come out of order
        // when pushed at once through several servers: the position is
        // the highest offset read
        const stream = p.ver & 0xffff;
        const room = stream >= 2 || stream === 0
                     ? this._streams.get(stream) : undefined;
        const pos = room !== undefined ? this._positions.get(room)
                                       : undefined;
        if (pos) {
            const low = pos.offset % 0x100000000;
            if (stream === 0) {
                m.offset = pos.offset + (((p.seq >>> 0) - low) | 0);
                pos.offset = Math.max(pos.offset, m.offset);
            } else {
                pos.offset += ((p.seq >>> 0) - low + 0x100000000)
                              % 0x100000000;
                m.offset = pos.offset;
            }
            m.room = room;
        }
        this._emit(p.op, m);
        this._emit('message', m);
    }

    // op 36: the rooms' positions, and what was recovered
    _onRecoverReply(conn, p) {
        let r;
        try {
            r = JSON.parse(utf8Decoder.decode(p.body));
        } catch (e) {
            return;
        }
        if (!r || !Array.isArray(r.rooms)) {
            return;
        }
        this._setPositions(conn, r.rooms, false);
        for (const x of r.rooms) {
            // the rooms of the request this answers (a later one may be
            // on its way): each has a result
            if (x && x.recovered !== undefined) {
                conn.asked.delete(x.room_id);
            }
            // a room asked for but not joined yet is asked again later
            if (x && x.recovered !== undefined && x.reason !== 'not joined') {
                this._emit('recover', { room: x.room_id,
                    recovered: x.recovered === true,
                    reason: x.reason || null,
                    messages: x.messages || 0 });
            }
        }
        if (r.error) {
            this._emit('error', new GoimError('recover',
                `recovery request refused: ${r.error}`));
        }
    }

    _onAuthReply(conn, p) {
        if (conn.authed) {
            return;
        }
        clearTimeout(conn.timer);
        conn.authed = true;
        conn.since = Date.now();
        let info = {};
        if (p.body.length) {
            try {
                info = JSON.parse(utf8Decoder.decode(p.body));
            } catch (e) {
                info = {};      // goim's own comet sends an empty body
            }
        }
        const reconnected = this._everConnected;
        this._everConnected = true;
        this._info = {
            mid: info.mid !== undefined ? info.mid : null,
            key: info.key !== undefined ? info.key : null,
            room: info.room_id !== undefined ? info.room_id : null,
        };
        if (Array.isArray(info.rooms)) {
            this._info.rooms = info.rooms;
        }
        this._setPositions(conn, info.rooms, true);
        const prevRoom = this._room;
        this._room = this._info.room;
        this._setState('connected');
        this._emit('connect', { ...this._info, reconnected });
        if (this._conn !== conn) {
            return;
        }
        if (this._room !== prevRoom && this._wantRoom === undefined) {
            this._emit('room', this._room);
        }
        // what the application asked for before this connection
        this._syncRoom(conn);
        if (this._watched.size) {
            this._request(conn, OP.SUB, Array.from(this._watched).join(','))
                .catch(() => {});
        }
        if (this._rooms.size) {
            this._askRecover(conn, this.rooms);
            this._request(conn, OP.JOIN, JSON.stringify(this.rooms))
                .catch(() => {});
        }
        // at once: the online count, and a check that the path works
        this._heartbeat(conn).catch(() => {});
    }

    _syncRoom(conn) {
        if (this._wantRoom === undefined) {
            return;
        }
        if (this._wantRoom === this._room && conn.authed) {
            this._roomChanged(this._room);
            return;
        }
        this._askRecover(conn, [this._wantRoom]);
        this._request(conn, OP.CHANGE_ROOM, this._wantRoom).catch(() => {});
    }

    _roomChanged(room) {
        const changed = room !== this._room;
        this._room = room;
        const left = [];
        const final = room === this._wantRoom;
        for (const w of this._roomWaiters) {
            if (w.room === room) {
                w.resolve(room);
            } else if (final) {
                // replies come in order: this one's never will
                w.reject(new GoimError('superseded',
                    `room change to "${w.room}" superseded by "${room}"`));
            } else {
                left.push(w);
            }
        }
        this._roomWaiters = left;
        if (changed) {
            this._emit('room', room);
        }
    }

    _failRoomWaiters(err) {
        const w = this._roomWaiters;
        this._roomWaiters = [];
        for (const x of w) {
            x.reject(err);
        }
    }
}

export default GoimClient;
