// The client against a real nginx with the goim module (build it first:
// make).  node --test test/   (Node 20: WebSocket from the `ws` package,
// a dev dependency; `make deps` installs it.)

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { WebSocket } from 'ws';

import { GoimClient, GoimError, Message, OP, backoffDelay, decodePackets,
         encodePacket } from '../goim.js';
import fs from 'node:fs';
import path from 'node:path';

import { Nginx, freePort, http, loadModules, procState, renderEmbedded,
         sleep, startProxy, waitFor } from './nginx.mjs';

// ASan builds are slower: scale the waits, not the protocol timings
const T = (ms) => ms * (process.env.TEST_NGINX_ASAN ? 3 : 1);

function conf({ main = '', workers = 1 } = {}) {
    return (ports) => `${loadModules()}
${process.getuid && process.getuid() === 0 ? 'user root;' : ''}
worker_processes ${workers};
error_log logs/error.log info;
pid logs/nginx.pid;
${main}
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path temp/body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    server {
        listen 127.0.0.1:${ports.ws} reuseport;
        location = /sub { goim_websocket; }
    }
    server {
        listen 127.0.0.1:${ports.api};
        location /goim/ { goim_logic_api; }
    }
}
`;
}

function startNode(name, opts) {
    return Nginx.start({ name, render: conf(opts), portNames: ['ws', 'api'],
                         workers: opts && opts.workers || 1 });
}

let keySeq = 0;
function token(room = 'live://a', extra = {}) {
    return { mid: 100 + keySeq, key: `k${process.pid}-${++keySeq}`,
             room_id: room, accepts: [1000], ...extra };
}

// A client that records its events, with helpers to wait for them.
function client(n, opts = {}, url) {
    const c = new GoimClient(url || `ws://127.0.0.1:${n.ports.ws}/sub`, {
        WebSocket, token: token(), ...opts,
    });
    c.events = [];
    c.messages = [];
    for (const ev of ['state', 'connect', 'disconnect', 'error', 'online',
                      'room', 'recover'])
    {
        c.on(ev, (...a) => c.events.push([ev, ...a]));
    }
    c.on('message', (m) => c.messages.push(m));
    c.seen = (ev, pred = () => true) =>
        c.events.filter((e) => e[0] === ev && pred(...e.slice(1)));
    c.waitEvent = (ev, pred = () => true, ms = T(5000)) =>
        waitFor(() => c.seen(ev, pred).length > 0, ms, `event ${ev}`);
    c.waitCount = (ev, count, ms = T(5000)) =>
        waitFor(() => c.seen(ev).length >= count, ms, `${count} ${ev}`);
    c.waitText = (text, ms = T(5000)) =>
        waitFor(() => c.messages.some((m) => m.text === text), ms,
                `message "${text}"`);
    c.texts = () => c.messages.map((m) => m.text);
    return c;
}

async function push(n, route, body) {
    const r = await http(n.ports.api, 'POST', `/goim/push/${route}`, body);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.code, 0, r.body);
}

async function onlineTotal(n) {
    const r = await http(n.ports.api, 'GET', '/goim/online/total');
    return r.json.data.conn_count;
}

describe('packets', () => {
    test('encode and decode round trip', () => {
        const p = encodePacket(7, 42, '{"mid":1}');
        assert.equal(p.length, 16 + 9);
        const v = new DataView(p.buffer);
        assert.deepEqual([v.getInt32(0), v.getInt16(4), v.getInt16(6),
                          v.getInt32(8), v.getInt32(12)], [25, 16, 1, 7, 42]);
        const [d] = decodePackets(p);
        assert.deepEqual([d.op, d.seq, d.ver], [7, 42, 1]);
        assert.equal(new TextDecoder().decode(d.body), '{"mid":1}');
    });

    test('an OP_RAW body holds packets back to back', () => {
        const a = encodePacket(1000, 0, 'one');
        const b = encodePacket(1001, 0, '');
        const c = encodePacket(1000, 0, new Uint8Array([0, 255]));
        const raw = encodePacket(OP.RAW, 0, new Uint8Array([...a, ...b, ...c]));
        const [outer] = decodePackets(raw);
        const inner = decodePackets(outer.body);
        assert.deepEqual(inner.map((p) => p.op), [1000, 1001, 1000]);
        assert.deepEqual(inner.map((p) => p.body.length), [3, 0, 2]);
        assert.deepEqual([...inner[2].body], [0, 255]);
    });

    test('malformed packets throw a protocol error', () => {
        const good = encodePacket(1000, 0, 'abc');
        const cases = {
            'short header': good.subarray(0, 10),
            'packLen past the end': good.subarray(0, 18),
            'headerLen not 16': (() => {
                const b = good.slice(); b[5] = 15; return b;
            })(),
            'packLen below 16': (() => {
                const b = good.slice(); b[3] = 8; return b;
            })(),
        };
        for (const [what, bytes] of Object.entries(cases)) {
            assert.throws(() => decodePackets(bytes),
                          (e) => e instanceof GoimError
                                 && e.type === 'protocol', what);
        }
    });

    test('Message: text and json', () => {
        const m = new Message(1000, new TextEncoder().encode('{"a":"é"}'));
        assert.equal(m.text, '{"a":"é"}');
        assert.deepEqual(m.json(), { a: 'é' });
    });

    test('backoff: full jitter under a doubling cap', () => {
        const top = [0, 1, 2, 3, 4, 5, 40].map(
            (a) => backoffDelay(a, 100, 1000, () => 0.9999));
        assert.deepEqual(top, [99, 199, 399, 799, 999, 999, 999]);
        assert.equal(backoffDelay(3, 100, 1000, () => 0), 0);
        for (let i = 0; i < 1000; i++) {
            const d = backoffDelay(i % 8, 100, 1000);
            assert.ok(d >= 0 && d <= Math.min(1000, 100 * 2 ** (i % 8)));
        }
    });

    test('options are checked', () => {
        assert.throws(() => new GoimClient('ws://x/sub', { WebSocket }),
                      /token is required/);
        assert.throws(() => new GoimClient('ws://x/sub',
                                           { token: 't', heartbeat: -1,
                                             WebSocket }), /heartbeat/);
        if (typeof globalThis.WebSocket !== 'function') {
            assert.throws(() => new GoimClient('ws://x/sub', { token: 't' }),
                          /no WebSocket/);
        }
        const c = new GoimClient('ws://x/sub', { token: 't', WebSocket });
        assert.throws(() => c.changeRoom('x'.repeat(257)), /longer than 256/);
        assert.throws(() => c.changeRoom('a\nb'), /control character/);
        assert.throws(() => c.watch(1.5), /int32/);
    });
});

describe('one node', () => {
    let n;
    before(async () => {
        // 1s: room messages that follow within a second are merged
        n = await startNode('client-basic', { main: 'goim_room_flush 1s;' });
    });
    after(async () => {
        assert.deepEqual(await n.stop(), []);
    });

    test('connects, authenticates, gets the online count', async () => {
        const t = token('live://basic');
        const c = client(n, { token: t });
        assert.equal(c.state, 'disconnected');
        c.connect();
        assert.equal(c.state, 'connecting');
        await c.waitEvent('connect');
        assert.equal(c.state, 'connected');
        assert.deepEqual(c.info, { mid: t.mid, key: t.key,
                                   room: 'live://basic' });
        assert.equal(c.room, 'live://basic');
        const [, connect] = c.seen('connect')[0];
        assert.equal(connect.reconnected, false);
        await c.waitEvent('online', (count) => count === 1);
        assert.equal(c.online, 1);
        assert.deepEqual(c.seen('state').map((e) => e[1]),
                         ['connecting', 'connected']);
        c.close();
    });

    test('room pushes: per operation, and OP_RAW batches unpacked in order',
         async () => {
        let frames = 0;
        class CountingWebSocket extends WebSocket {
            constructor(...a) {
                super(...a);
                this.addEventListener('message', () => frames++);
            }
        }
        const c = client(n, { token: token('live://batch'),
                              WebSocket: CountingWebSocket });
        const got1000 = [];
        const got1001 = [];
        c.on(1000, (m) => got1000.push(m.text));
        c.on(1001, (m) => got1001.push(m.text));
        c.connect();
        await c.waitEvent('connect');
        await c.ping();
        const before = frames;
        for (let i = 1; i <= 8; i++) {
            await push(n, `room?operation=${i % 2 ? 1000 : 1001}`
                          + '&type=live&room=batch', `m${i}`);
        }
        await c.waitText('m8');
        assert.deepEqual(got1000, ['m1', 'm3', 'm5', 'm7']);
        assert.deepEqual(got1001, ['m2', 'm4', 'm6', 'm8']);
        assert.deepEqual(c.texts(), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6',
                                     'm7', 'm8']);
        assert.ok(frames - before < 8,
                  `8 messages came in ${frames - before} frames (merged)`);
        assert.ok(c.messages.every((m) => m.body instanceof Uint8Array));
        c.close();
    });

    test('key and member pushes reach the accepted operations', async () => {
        const t = token('', { accepts: [1000] });
        const c = client(n, { token: t });
        c.connect();
        await c.waitEvent('connect');
        await push(n, `keys?operation=1000&keys=${t.key}`, 'by key');
        await push(n, `mids?operation=1000&mids=${t.mid}`, 'by mid');
        await c.waitText('by mid');
        assert.deepEqual(c.texts(), ['by key', 'by mid']);
        assert.equal(c.room, '');
        c.close();
    });

    test('watch and unwatch operations, kept across calls', async () => {
        const c = client(n, { token: token('') });
        c.connect();
        await c.waitEvent('connect');
        await push(n, 'all?operation=1005', 'unwatched');
        await push(n, 'all?operation=1000', 'sentinel 1');
        await c.waitText('sentinel 1');
        await c.watch([1005, 1006]);
        await push(n, 'all?operation=1005', 'watched');
        await push(n, 'all?operation=1006', 'watched too');
        await c.waitText('watched too');
        await c.unwatch(1005);
        await push(n, 'all?operation=1005', 'unwatched again');
        await push(n, 'all?operation=1000', 'sentinel 2');
        await c.waitText('sentinel 2');
        assert.deepEqual(c.texts(), ['sentinel 1', 'watched', 'watched too',
                                     'sentinel 2']);
        c.close();
    });

    test('changeRoom: the new room\'s pushes, not the old one\'s', async () => {
        const c = client(n, { token: token('live://r1') });
        c.connect();
        await c.waitEvent('connect');
        assert.equal(await c.changeRoom('live://r2'), 'live://r2');
        assert.equal(c.room, 'live://r2');
        assert.deepEqual(c.seen('room').map((e) => e[1]),
                         ['live://r1', 'live://r2']);
        await push(n, 'room?operation=1000&type=live&room=r1', 'old room');
        await push(n, 'room?operation=1000&type=live&room=r2', 'new room');
        await c.waitText('new room');
        await sleep(T(300));
        assert.deepEqual(c.texts(), ['new room']);
        // a change asked for while connecting is made once connected
        const d = client(n, { token: token('live://r1') });
        d.connect();
        const p = d.changeRoom('live://r3');
        assert.equal(await p, 'live://r3');
        await push(n, 'room?operation=1000&type=live&room=r3', 'third');
        await d.waitText('third');
        // two changes in a row: the first is superseded
        const first = c.changeRoom('live://r4');
        const second = c.changeRoom('live://r5');
        await assert.doesNotReject(first);
        assert.equal(await second, 'live://r5');
        assert.equal(c.room, 'live://r5');
        c.close();
        d.close();
    });

    test('several rooms: room_ids, joinRooms, leaveRooms', async () => {
        const c = client(n, { token: token('live://m1',
                                           { room_ids: ['group://m1'] }) });
        const early = c.joinRooms(['group://m2']);
        c.connect();
        assert.equal(await early, null);
        await c.waitEvent('connect');
        assert.deepEqual(c.info.rooms, [
            { room_id: 'live://m1', joined: true },
            { room_id: 'group://m1', joined: true }]);
        assert.deepEqual(c.rooms, ['group://m2']);
        assert.deepEqual(await c.joinRooms(['group://m3', 'live://m1']), [
            { room_id: 'group://m3', joined: true },
            { room_id: 'live://m1', joined: true }]);
        // group://m2, joined before the connection, is joined once it is up
        await push(n, 'room?operation=1000&type=group&room=m2', 'm2');
        await push(n, 'room?operation=1000&type=group&room=m3', 'm3');
        await push(n, 'room?operation=1000&type=live&room=m1', 'm1');
        await c.waitText('m1');
        await c.waitText('m2');
        await c.waitText('m3');
        assert.deepEqual(await c.leaveRooms('group://m3'),
                         [{ room_id: 'group://m3', left: true }]);
        assert.deepEqual(c.rooms, ['group://m2', 'live://m1']);
        await push(n, 'room?operation=1000&type=group&room=m3', 'gone');
        await push(n, 'room?operation=1000&type=group&room=m1', 'last');
        await c.waitText('last');
        await sleep(T(300));
        assert.deepEqual(c.texts().sort(), ['last', 'm1', 'm2', 'm3']);
        assert.throws(() => c.joinRooms(''), /empty room id/);
        c.close();
    });

    test('ping: the room\'s online count over the whole node', async () => {
        const a = client(n, { token: token('live://count') });
        const b = client(n, { token: token('live://count') });
        a.connect();
        b.connect();
        await a.waitEvent('connect');
        await b.waitEvent('connect');
        assert.equal(await a.ping(), 2);
        b.close();
        await waitFor(async () => (await a.ping()) === 1, T(3000),
                      'the count to drop');
        await a.waitEvent('online', (count) => count === 1);
        a.close();
        await assert.rejects(a.ping(), (e) => e.type === 'disconnected');
    });

    test('token: an async function, called for each connection', async () => {
        let calls = 0;
        const t = token('live://fn');
        const c = client(n, {
            token: async () => { calls++; await sleep(10);
                                 return JSON.stringify(t); },
        });
        c.connect();
        await c.waitEvent('connect');
        assert.equal(calls, 1);
        assert.equal(c.info.key, t.key);
        c.close();
        // a failing token function: an error, then another try
        let fails = 0;
        const d = client(n, {
            token: () => { if (fails++ < 2) throw new Error('no token yet');
                           return token('live://fn'); },
            minReconnectDelay: 20, maxReconnectDelay: 40,
        });
        d.connect();
        await d.waitEvent('connect');
        assert.deepEqual(d.seen('error').map((e) => e[1].type),
                         ['token', 'token']);
        assert.match(d.seen('error')[0][1].message, /no token yet/);
        d.close();
    });

    test('close(): Close 1000, nothing left online, no reconnect',
         async () => {
        await waitFor(async () => (await onlineTotal(n)) === 0, T(3000),
                      'earlier clients gone');
        const c = client(n, { minReconnectDelay: 10, maxReconnectDelay: 20 });
        c.connect();
        await c.waitEvent('connect');
        assert.equal(await onlineTotal(n), 1);
        c.close();
        assert.equal(c.state, 'disconnected');
        assert.deepEqual(c.seen('disconnect').map((e) => e[1].reconnect),
                         [false]);
        await waitFor(async () => (await onlineTotal(n)) === 0, T(3000),
                      'the server to see the close');
        await sleep(T(300));
        assert.equal(await onlineTotal(n), 0);
        assert.equal(c.state, 'disconnected');
        assert.equal(c.seen('connect').length, 1);
        assert.equal(n.logLines(/connection closed: .*key "k/).length
                     > 0, true);
    });

    test('a server that is down: backoff with jitter under the cap, then '
         + 'connected when it is up', async () => {
        const proxy = await startProxy(n.ports.ws);
        proxy.blackhole = true;
        // a refused port first, then the proxy: URLs are tried in turn
        const dead = await (await import('./nginx.mjs')).freePort();
        const c = client(n, { minReconnectDelay: 40, maxReconnectDelay: 160,
                              timeout: 200 },
                         [`ws://127.0.0.1:${dead}/sub`,
                          `ws://127.0.0.1:${proxy.port}/sub`]);
        c.connect();
        await c.waitCount('disconnect', 6);
        const ds = c.seen('disconnect').map((e) => e[1]);
        ds.forEach((d, i) => {
            assert.equal(d.reconnect, true);
            assert.equal(d.wasConnected, false);
            assert.ok(d.delay >= 0 && d.delay <= Math.min(160, 40 * 2 ** i),
                      `delay ${i}: ${d.delay}`);
        });
        const types = new Set(c.seen('error').map((e) => e[1].type));
        assert.deepEqual([...types].sort(), ['timeout', 'transport'],
                         'refused (transport) and unanswered (timeout)');
        assert.ok(proxy.connections >= 2, 'the second URL was tried');
        assert.equal(c.state, 'connecting');
        proxy.blackhole = false;
        await c.waitEvent('connect', () => true, T(5000));
        assert.equal(c.url, `ws://127.0.0.1:${proxy.port}/sub`);
        c.close();
        await proxy.close();
    });

    test('a handler that throws does not break the client', async () => {
        const c = client(n, { token: token('live://throw') });
        const errors = [];
        const orig = console.error;
        console.error = (e) => errors.push(e);
        try {
            c.on(1000, () => { throw new Error('app bug'); });
            c.connect();
            await c.waitEvent('connect');
            await push(n, 'room?operation=1000&type=live&room=throw', 'x');
            await c.waitText('x');
            assert.equal(c.state, 'connected');
            assert.equal(await c.ping(), 1);
            assert.match(String(errors[0]), /app bug/);
        } finally {
            console.error = orig;
            c.close();
        }
    });
});

describe('signed tokens', () => {
    const secret = 'a-test-secret-of-at-least-32-bytes!!';
    let n;
    before(async () => {
        n = await startNode('client-jwt', {
            main: `goim_auth_secret ${secret};`,
        });
    });
    after(async () => {
        assert.deepEqual(await n.stop(), []);
    });

    function jwt(claims) {
        const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const head = b64({ alg: 'HS256', typ: 'JWT' });
        const body = b64(claims);
        const sig = crypto.createHmac('sha256', secret)
            .update(`${head}.${body}`).digest('base64url');
        return `${head}.${body}.${sig}`;
    }

    test('a refused token: the reason, and no reconnect', async () => {
        let calls = 0;
        const c = client(n, {
            token: () => { calls++; return token('live://j'); },
            minReconnectDelay: 10, maxReconnectDelay: 20,
        });
        c.connect();
        await c.waitEvent('error');
        const [, err] = c.seen('error')[0];
        assert.equal(err.type, 'auth');
        assert.equal(err.code, 1008);
        assert.match(err.reason, /^auth failed: bad token/);
        assert.equal(c.state, 'disconnected');
        const [, d] = c.seen('disconnect')[0];
        assert.equal(d.reconnect, false);
        await sleep(T(500));
        assert.equal(calls, 1, 'no second try');
        assert.equal(c.seen('state').at(-1)[1], 'disconnected');
        // connect() tries again, with a fresh token
        c.connect();
        await c.waitCount('error', 2);
        assert.equal(calls, 2);
    });

    test('an expired token is refused too', async () => {
        const c = client(n, { token: jwt({ mid: 5, key: 'exp',
                                           exp: Math.floor(Date.now() / 1000)
                                                - 3600 }) });
        c.connect();
        await c.waitEvent('error');
        assert.equal(c.seen('error')[0][1].type, 'auth');
    });

    test('a signed token is accepted', async () => {
        const c = client(n, {
            token: async () => jwt({ mid: 77, key: 'signed-1',
                                     room_id: 'live://j', accepts: [1000],
                                     exp: Math.floor(Date.now() / 1000) + 60 }),
        });
        c.connect();
        await c.waitEvent('connect');
        assert.deepEqual(c.info, { mid: 77, key: 'signed-1',
                                   room: 'live://j' });
        await push(n, 'mids?operation=1000&mids=77', 'for 77');
        await c.waitText('for 77');
        c.close();
    });
});

describe('duplicate key', () => {
    let n;
    before(async () => { n = await startNode('client-dup'); });
    after(async () => { assert.deepEqual(await n.stop(), []); });

    test('the replaced connection is told and does not come back',
         async () => {
        const t = token('live://dup');
        const a = client(n, { token: t, minReconnectDelay: 10,
                              maxReconnectDelay: 20 });
        a.connect();
        await a.waitEvent('connect');
        const b = client(n, { token: t });
        b.connect();
        await b.waitEvent('connect');
        await a.waitEvent('error');
        assert.equal(a.seen('error')[0][1].type, 'replaced');
        assert.equal(a.state, 'disconnected');
        await sleep(T(300));
        assert.equal(a.seen('connect').length, 1);
        assert.equal(b.state, 'connected');
        assert.equal(await b.ping(), 1);
        b.close();
    });
});

describe('reload and crash', () => {
    let n;
    before(async () => {
        n = await startNode('client-reload', {
            main: 'goim_shutdown_drain 1s;', workers: 2,
        });
    });
    after(async () => {
        assert.deepEqual(await n.stop([/exited on signal 9/]), []);
    });

    test('nginx -s reload: Close 1001, reconnected, room kept', async () => {
        const c = client(n, { token: token('live://rl'),
                              minReconnectDelay: 100 });
        c.connect();
        await c.waitEvent('connect');
        await c.changeRoom('live://moved');
        await n.reload(T(10000));
        await c.waitCount('connect', 2);
        const [, d] = c.seen('disconnect')[0];
        assert.equal(d.code, 1001);
        assert.equal(d.reconnect, true);
        assert.equal(d.wasConnected, true);
        assert.equal(c.seen('connect')[1][1].reconnected, true);
        await waitFor(() => c.room === 'live://moved', T(3000),
                      'the room changed again');
        await push(n, 'room?operation=1000&type=live&room=moved', 'after');
        await c.waitText('after');
        c.close();
    });

    test('a worker killed: reconnected to the new one', async () => {
        const c = client(n, { token: token('live://kill'),
                              minReconnectDelay: 100 });
        c.connect();
        await c.waitEvent('connect');
        // the worker that holds it: the one whose log names its key
        const pids = n.workerPids();
        for (const pid of pids) {
            process.kill(pid, 'SIGKILL');
        }
        await c.waitCount('connect', 2, T(8000));
        assert.equal(c.seen('disconnect')[0][1].code, 1006);
        await push(n, 'room?operation=1000&type=live&room=kill', 'back');
        await c.waitText('back');
        c.close();
    });
});

// goim_history: after a reconnect the client gets what it missed, once
describe('history and recovery', () => {
    let n;
    before(async () => {
        n = await startNode('client-history', {
            main: 'goim_shutdown_drain 1s;\ngoim_history size=64;',
            workers: 2,
        });
    });
    after(async () => {
        assert.deepEqual(await n.stop(), []);
    });

    test('a reload: the messages pushed while away, then live', async () => {
        // the second connection waits until the pushes were made
        let calls = 0;
        let open;
        const gate = new Promise((r) => { open = r; });
        const c = client(n, { minReconnectDelay: 100, token: async () => {
            if (++calls > 1) {
                await gate;
            }
            return token('live://hist');
        } });
        c.connect();
        await c.waitEvent('connect');
        await push(n, 'room?operation=1000&type=live&room=hist', 'h1');
        await c.waitText('h1');
        assert.equal(c.messages[0].offset, 1);
        assert.equal(c.messages[0].room, 'live://hist');
        assert.equal(c.positions['live://hist'].offset, 1);
        await n.reload(T(10000));
        await c.waitCount('disconnect', 1);
        await push(n, 'room?operation=1000&type=live&room=hist', 'h2');
        await push(n, 'room?operation=1000&type=live&room=hist', 'h3');
        open();
        await c.waitCount('connect', 2);
        await c.waitEvent('recover');
        const [, r] = c.seen('recover')[0];
        assert.deepEqual(r, { room: 'live://hist', recovered: true,
                              reason: null, messages: 2 });
        await push(n, 'room?operation=1000&type=live&room=hist', 'h4');
        await c.waitText('h4');
        assert.deepEqual(c.texts(), ['h1', 'h2', 'h3', 'h4']);
        assert.deepEqual(c.messages.map((m) => m.offset), [1, 2, 3, 4]);
        c.close();
    });

    test("a member's messages while away (members=on)", async () => {
        const m = await startNode('client-member', {
            main: 'goim_shutdown_drain 1s;\n'
                  + 'goim_history size=64 members=on;',
            workers: 2,
        });
        let calls = 0;
        let open;
        const gate = new Promise((r) => { open = r; });
        const tok = token('');
        const c = client(m, { minReconnectDelay: 100, token: async () => {
            if (++calls > 1) {
                await gate;
            }
            return tok;
        } });
        c.connect();
        await c.waitEvent('connect');
        const mid = `mids=${tok.mid}`;
        await push(m, `mids?operation=1000&${mid}`, 'p1');
        await c.waitText('p1');
        assert.equal(c.messages[0].room, `mid://${tok.mid}`);
        assert.equal(c.messages[0].offset, 1);
        await m.reload(T(10000));
        await c.waitCount('disconnect', 1);
        await push(m, `mids?operation=1000&${mid}`, 'p2');
        await push(m, `mids?operation=1000&${mid}`, 'p3');
        open();
        await c.waitCount('connect', 2);
        await c.waitEvent('recover');
        assert.deepEqual(c.seen('recover')[0][1],
                         { room: `mid://${tok.mid}`, recovered: true,
                           reason: null, messages: 2 });
        await push(m, `mids?operation=1000&${mid}`, 'p4');
        await c.waitText('p4');
        assert.deepEqual(c.texts(), ['p1', 'p2', 'p3', 'p4']);
        assert.deepEqual(c.messages.map((x) => x.offset), [1, 2, 3, 4]);
        c.close();
        assert.deepEqual(await m.stop(), []);
    });

    test("a member's messages while away, kept in Redis (goim_redis)",
         { skip: spawnSync('redis-server', ['--version']).status !== 0
                 && 'redis-server is needed' }, async () => {
        const port = await freePort();
        const redis = spawn('redis-server', ['--port', String(port),
            '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
            { stdio: 'ignore' });
        try {
            await waitFor(() => spawnSync('redis-cli', ['-p', String(port),
                'PING']).stdout.toString().trim() === 'PONG', T(5000),
                'redis-server');
            const m = await startNode('client-member-redis', {
                main: 'goim_shutdown_drain 1s;\n'
                      + `goim_redis 127.0.0.1:${port};\n`
                      + 'goim_history size=64 members=on;',
                workers: 2,
            });
            let calls = 0;
            let open;
            const gate = new Promise((r) => { open = r; });
            const tok = token('');
            const c = client(m, { minReconnectDelay: 100,
                                  token: async () => {
                                      if (++calls > 1) {
                                          await gate;
                                      }
                                      return tok;
                                  } });
            c.connect();
            await c.waitEvent('connect');
            const mid = `mids=${tok.mid}`;
            await push(m, `mids?operation=1000&${mid}`, 'p1');
            await c.waitText('p1');
            assert.equal(c.messages[0].room, `mid://${tok.mid}`);
            assert.equal(c.messages[0].offset, 1);
            assert.equal(c.messages[0].ver, 0);
            await m.reload(T(10000));
            await c.waitCount('disconnect', 1);
            await push(m, `mids?operation=1000&${mid}`, 'p2');
            await push(m, `mids?operation=1000&${mid}`, 'p3');
            open();
            await c.waitCount('connect', 2);
            await c.waitEvent('recover');
            assert.deepEqual(c.seen('recover')[0][1],
                             { room: `mid://${tok.mid}`, recovered: true,
                               reason: null, messages: 2 });
            await push(m, `mids?operation=1000&${mid}`, 'p4');
            await c.waitText('p4');
            assert.deepEqual(c.texts(), ['p1', 'p2', 'p3', 'p4']);
            assert.deepEqual(c.messages.map((x) => x.offset), [1, 2, 3, 4]);
            c.close();
            assert.deepEqual(await m.stop(), []);
        } finally {
            redis.kill('SIGKILL');
        }
    });

    test('three rooms (token, room_ids, joinRooms): each recovered',
         async () => {
        let calls = 0;
        let open;
        const gate = new Promise((r) => { open = r; });
        const c = client(n, { minReconnectDelay: 100, token: async () => {
            if (++calls > 1) {
                await gate;
            }
            return token('live://r1', { room_ids: ['group://r2'] });
        } });
        c.joinRooms('group://r3');
        c.connect();
        await c.waitEvent('connect');
        await waitFor(() => c.positions['group://r3'] !== undefined, T(5000),
                      'the joined room\'s position');
        const rooms = ['live://r1', 'group://r2', 'group://r3'];
        const path = (r) => r.replace('://', '&room=');
        for (const r of rooms) {
            await push(n, `room?operation=1000&type=${path(r)}`, `${r} 1`);
        }
        await waitFor(() => c.messages.length >= 3, T(5000), '3 messages');
        assert.deepEqual(c.messages.map((m) => [m.room, m.offset]).sort(),
                         rooms.map((r) => [r, 1]).sort());
        await n.reload(T(10000));
        await c.waitCount('disconnect', 1);
        for (const r of rooms) {
            await push(n, `room?operation=1000&type=${path(r)}`, `${r} 2`);
            await push(n, `room?operation=1000&type=${path(r)}`, `${r} 3`);
        }
        open();
        await c.waitCount('connect', 2);
        await waitFor(() => c.seen('recover').length === 3, T(5000),
                      'three recover events');
        assert.deepEqual(c.seen('recover').map((e) => e[1]).sort(
            (a, b) => a.room < b.room ? -1 : 1),
            ['group://r2', 'group://r3', 'live://r1'].map((room) => ({
                room, recovered: true, reason: null, messages: 2 })));
        for (const r of rooms) {
            await push(n, `room?operation=1000&type=${path(r)}`, `${r} 4`);
        }
        await waitFor(() => c.messages.length >= 12, T(5000), '12 messages');
        await sleep(T(300));
        for (const r of rooms) {
            assert.deepEqual(
                c.messages.filter((m) => m.room === r).map(
                    (m) => [m.offset, m.text]),
                [1, 2, 3, 4].map((i) => [i, `${r} ${i}`]), r);
        }
        assert.equal(c.messages.length, 12);
        c.close();
    });

    test('another epoch: recovered false with the reason', async () => {
        const c = client(n, { token: token('live://hist2') });
        c._positions.set('live://hist2',
                         { epoch: '0000000000000000-1', offset: 5 });
        c.connect();
        await c.waitEvent('recover');
        assert.deepEqual(c.seen('recover')[0][1],
                         { room: 'live://hist2', recovered: false,
                           reason: 'epoch changed', messages: 0 });
        assert.equal(c.positions['live://hist2'].offset, 0);
        await push(n, 'room?operation=1000&type=live&room=hist2', 'x');
        await c.waitText('x');
        c.close();
    });
});

// The upgrade's access log line is written when the module frees the
// request, before the connection's header buffers are freed (they hold
// the request line): once the other way round, ASan saw a use after free.
describe('WebSocket upgrade with an access log', () => {
    let n;
    before(async () => {
        n = await Nginx.start({
            name: 'client-accesslog', portNames: ['ws', 'tcp', 'api'],
            render: (ports) => renderEmbedded(ports, { accessLog: true }),
        });
    });
    after(async () => {
        assert.deepEqual(await n.stop(), []);
    });

    test('the access log has the upgrade, nothing reads freed memory',
         async () => {
        const probe = `probe-${process.pid}-${Date.now()}`;
        const c = client(n, { token: token('live://log') },
                         `ws://127.0.0.1:${n.ports.ws}/sub?${probe}`);
        c.connect();
        await c.waitEvent('connect');
        assert.equal(await c.ping(), 1);
        c.close();
        const log = path.join(n.dir, 'logs/access.log');
        const line = await waitFor(() => fs.readFileSync(log, 'utf8')
            .split('\n').find((l) => l.includes(probe)), T(3000),
            'the access log line');
        assert.deepEqual(n.logLines(/AddressSanitizer/), []);
        assert.match(line, new RegExp(`"GET /sub\\?${probe} HTTP/1.1" 101 `));
    });
});

describe('dead network', () => {
    let n;
    before(async () => { n = await startNode('client-dead'); });
    after(async () => { assert.deepEqual(await n.stop(), []); });

    test('heartbeats unanswered (a proxy stops forwarding): detected, '
         + 'reconnected', async () => {
        const proxy = await startProxy(n.ports.ws);
        const c = client(n, { token: token('live://dead'), heartbeat: 300,
                              timeout: 500, minReconnectDelay: 50 },
                         `ws://127.0.0.1:${proxy.port}/sub`);
        c.connect();
        await c.waitEvent('connect');
        await c.waitEvent('online');
        const t0 = Date.now();
        proxy.freeze();
        await c.waitEvent('error', (e) => e.type === 'timeout', T(3000));
        const took = Date.now() - t0;
        assert.ok(took <= 300 + 500 + T(400), `detected in ${took} ms`);
        assert.equal(c.seen('disconnect')[0][1].wasConnected, true);
        await c.waitCount('connect', 2);
        assert.equal(proxy.connections, 2);
        await push(n, 'room?operation=1000&type=live&room=dead', 'alive');
        await c.waitText('alive');
        c.close();
        await proxy.close();
    });

    test('a stopped worker (SIGSTOP): detected; reconnected once it runs',
         async () => {
        const c = client(n, { token: token('live://stop'), heartbeat: 300,
                              timeout: 500, minReconnectDelay: 50,
                              maxReconnectDelay: 200 });
        c.connect();
        await c.waitEvent('connect');
        const [pid] = n.workerPids();
        process.kill(pid, 'SIGSTOP');
        try {
            await waitFor(() => procState(pid) === 'T', 2000, 'stopped');
            await c.waitEvent('error', (e) => e.type === 'timeout', T(3000));
            // new connections are not answered either while it is stopped
            await c.waitCount('disconnect', 3, T(5000));
            assert.equal(c.state, 'connecting');
        } finally {
            process.kill(pid, 'SIGCONT');
        }
        await c.waitCount('connect', 2, T(5000));
        await push(n, 'room?operation=1000&type=live&room=stop', 'resumed');
        await c.waitText('resumed');
        c.close();
    });
});
