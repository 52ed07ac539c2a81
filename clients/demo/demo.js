// The demo chat: goim-client for receiving, the demo-only publish
// location for sending, goim_status for the node panel.  Tests may set
// globalThis.goimDemoOptions (client options) before the page loads.

import { GoimClient } from './goim.js';

const OP_CHAT = 1000;
const ROOM_RE = /^[A-Za-z0-9_-]{1,32}$/;
const MAX_NAME = 24;
const MAX_TEXT = 500;
const CHART_POINTS = 60;

const $ = (id) => document.getElementById(id);

const ui = {
    status: $('status'), statusText: $('status-text'),
    join: $('join'), name: $('name'), room: $('room'),
    view: $('room-view'), roomName: $('room-name'),
    onlineCount: $('online-count'),
    switchBtn: $('switch'), switchForm: $('switch-form'),
    switchRoom: $('switch-room'), switchCancel: $('switch-cancel'),
    banner: $('banner'), bannerText: $('banner-text'), retry: $('retry'),
    messages: $('messages'), composer: $('composer'), text: $('text'),
    send: document.querySelector('#composer button'),
    conns: $('fig-conns'), rate: $('fig-rate'), drops: $('fig-drops'),
    chart: $('chart'), nodeNote: $('node-note'),
};

let client = null;
let me = '';
let room = '';
let joinedRoom = '';            // where our last "joined" went
const seen = new Set();         // message ids shown: delivery is at least once
const seenOrder = [];
const pending = new Map();      // id -> <li> of our own message, until echoed

// --- small helpers -----------------------------------------------------

function randomId() {
    const b = new Uint8Array(9);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

const PALETTE = ['#4f5bd5', '#1faa6b', '#e0663d', '#c0399f', '#2a9bc4',
                 '#8a5cd6', '#d19a12', '#d64565'];

function colorOf(name) {
    let h = 0x811c9dc5;                 // FNV-1a
    for (const ch of name) {
        h = Math.imul(h ^ ch.codePointAt(0), 0x01000193) >>> 0;
    }
    return PALETTE[h % PALETTE.length];
}

function timeOf(ts) {
    return new Date(ts).toLocaleTimeString([], { hour: '2-digit',
                                                 minute: '2-digit' });
}

function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) {
        e.className = cls;
    }
    if (text !== undefined) {
        e.textContent = text;      // never innerHTML: messages are untrusted
    }
    return e;
}

function nearBottom() {
    const m = ui.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
}

function append(li) {
    const stick = nearBottom();
    const empty = ui.messages.querySelector('.empty');
    if (empty) {
        empty.remove();
    }
    ui.messages.append(li);
    while (ui.messages.children.length > 300) {
        ui.messages.firstElementChild.remove();
    }
    if (stick) {
        ui.messages.scrollTop = ui.messages.scrollHeight;
    }
}

function systemLine(text) {
    append(el('li', 'system', text));
}

function showEmpty() {
    ui.messages.replaceChildren(el('li', 'empty',
        'No messages yet. Say hello!'));
}

function messageItem(m, own) {
    const li = el('li', own ? 'msg own' : 'msg');
    li.dataset.id = m.id;
    const av = el('span', 'avatar', (m.name[0] || '?').toUpperCase());
    av.style.background = colorOf(m.name);
    av.setAttribute('aria-hidden', 'true');
    const b = el('div', 'bubble');
    b.append(el('div', 'who', m.name), el('div', 'text', m.text),
             el('div', 'when', timeOf(m.ts)));
    li.append(av, b);
    return li;
}

function setStatus(state, text) {
    ui.status.dataset.state = state;
    ui.statusText.textContent = text;
    ui.status.title = text;
}

function banner(text, { bad = false, retry = false } = {}) {
    if (!text) {
        ui.banner.hidden = true;
        return;
    }
    ui.bannerText.textContent = text;
    ui.banner.classList.toggle('bad', bad);
    ui.retry.hidden = !retry;
    ui.banner.hidden = false;
}

function setOnline(n) {
    ui.onlineCount.textContent = n == null ? '–' : String(n);
}

function setCanSend(ok) {
    ui.send.disabled = !ok;
}

// --- publishing through the demo location ----------------------------

async function publish(msg, targetRoom = room) {
    const res = await fetch(`rooms/${encodeURIComponent(targetRoom)}/messages`,
                            { method: 'POST', body: JSON.stringify(msg) });
    if (res.status === 429) {
        throw new Error('slow down: too many messages');
    }
    if (res.status === 413) {
        throw new Error('message too long');
    }
    let body = null;
    try {
        body = await res.json();
    } catch (e) {
        // an nginx error page
    }
    if (!res.ok || !body || body.code !== 0) {
        throw new Error(body && body.message || `HTTP ${res.status}`);
    }
}

function announce(type, targetRoom = room) {
    if (type === 'join') {
        joinedRoom = targetRoom;
    }
    return publish({ v: 1, type, id: randomId(), name: me, ts: Date.now() },
                   targetRoom).catch(() => {});
}

// --- receiving ---------------------------------------------------------

function remember(id) {
    seen.add(id);
    seenOrder.push(id);
    if (seenOrder.length > 1000) {
        seen.delete(seenOrder.shift());
    }
}

function valid(m) {
    return m && typeof m === 'object'
        && typeof m.id === 'string' && m.id.length <= 64
        && typeof m.name === 'string' && m.name.length > 0
        && m.name.length <= MAX_NAME
        && typeof m.ts === 'number'
        && (m.type === 'join' || m.type === 'leave'
            || (m.type === 'msg' && typeof m.text === 'string'
                && m.text.length <= MAX_TEXT));
}

function onChat(message) {
    let m;
    try {
        m = message.json();
    } catch (e) {
        return;                 // not ours: anyone may publish to demo://
    }
    if (!valid(m) || seen.has(m.id)) {
        return;
    }
    remember(m.id);
    if (m.type === 'msg') {
        const mine = pending.get(m.id);
        if (mine) {
            // our own message came back through the WebSocket: delivered
            pending.delete(m.id);
            mine.classList.remove('pending');
            return;
        }
        append(messageItem(m, false));
        return;
    }
    systemLine(m.type === 'join' ? `${m.name} joined` : `${m.name} left`);
    // the member count changed: ask now rather than at the next heartbeat
    if (client) {
        client.ping().catch(() => {});
    }
}

// --- the connection ----------------------------------------------------

function connect() {
    const overrides = globalThis.goimDemoOptions || {};
    client = new GoimClient('/sub', {
        // plain JSON tokens: make run has no goim_auth_secret.  With one,
        // fetch a signed token from your application here instead.
        token: () => ({ mid: 0, key: '', room_id: `demo://${room}`,
                        platform: 'web', accepts: [OP_CHAT] }),
        heartbeat: 10000,
        ...overrides,
    });
    globalThis.goimDemo = { client };

    let lostAt = 0;
    client.on('state', (state) => {
        if (state === 'connected') {
            setStatus('connected', 'Connected');
        } else if (state === 'connecting') {
            setStatus('connecting', lostAt ? 'Reconnecting…' : 'Connecting…');
        }
        setCanSend(state === 'connected');
    });
    client.on('connect', (info) => {
        banner(null);
        if (info.reconnected) {
            systemLine('Reconnected. Messages sent while you were away are '
                       + 'not replayed.');
        }
        lostAt = 0;
    });
    client.on('disconnect', (d) => {
        if (d.reconnect) {
            if (d.wasConnected) {
                lostAt = Date.now();
                banner('Connection lost. Reconnecting…');
                setStatus('connecting', 'Reconnecting…');
            } else if (lostAt || d.delay > 2000) {
                const s = Math.max(1, Math.round(d.delay / 1000));
                setStatus('connecting', `Reconnecting in ${s} s…`);
            }
        } else if (d.error && (d.error.type === 'auth'
                               || d.error.type === 'replaced')) {
            setStatus('failed', d.error.type === 'auth'
                                ? 'Sign-in refused' : 'Replaced');
        } else {
            setStatus('disconnected', 'Not connected');
        }
    });
    client.on('error', (e) => {
        if (e.type === 'auth') {
            banner(`The server refused the sign-in: ${e.reason || e.message}. `
                   + 'Not retrying.', { bad: true, retry: true });
        } else if (e.type === 'replaced') {
            banner('Another connection with the same key took over. '
                   + 'Not retrying.', { bad: true, retry: true });
        }
    });
    client.on('online', setOnline);
    client.on(OP_CHAT, onChat);
    client.connect();
}

function enterRoom(name, roomName) {
    me = name;
    room = roomName;
    localStorage.setItem('goim-demo-name', me);
    localStorage.setItem('goim-demo-room', room);
    ui.roomName.textContent = room;
    ui.roomName.title = `demo://${room}`;
    ui.join.hidden = true;
    ui.view.hidden = false;
    showEmpty();
    setOnline(null);
    connect();
    let announced = false;
    client.on('connect', () => {
        if (!announced) {
            announced = true;
            announce('join');
        }
    });
    ui.text.focus();
}

async function switchRoom(next) {
    if (next === room) {
        return;
    }
    room = next;
    localStorage.setItem('goim-demo-room', room);
    ui.roomName.textContent = room;
    ui.roomName.title = `demo://${room}`;
    showEmpty();
    setOnline(null);
    pending.clear();
    try {
        await client.changeRoom(`demo://${room}`);
        // only now has this connection left: the others' member count,
        // asked when they see "left", no longer counts it.  A change
        // superseded by a later one never joined its room.
        if (joinedRoom !== room) {
            announce('leave', joinedRoom);
        }
        announce('join');
        client.ping().catch(() => {});
    } catch (e) {
        if (e.type !== 'superseded') {
            systemLine(`Could not switch rooms: ${e.message}`);
        }
    }
}

// --- forms ---------------------------------------------------------------

ui.name.value = localStorage.getItem('goim-demo-name') || '';
ui.room.value = localStorage.getItem('goim-demo-room') || 'lobby';

ui.join.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = ui.name.value.trim().slice(0, MAX_NAME);
    const r = ui.room.value.trim();
    if (!name || !ROOM_RE.test(r)) {
        return;
    }
    enterRoom(name, r);
});

ui.composer.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = ui.text.value.trim().slice(0, MAX_TEXT);
    if (!text || !client || client.state !== 'connected') {
        return;
    }
    ui.text.value = '';
    const m = { v: 1, type: 'msg', id: randomId(), name: me, text,
                ts: Date.now() };
    const li = messageItem(m, true);
    li.classList.add('pending');
    pending.set(m.id, li);
    append(li);
    try {
        // shown as delivered when it comes back through the WebSocket
        await publish(m);
    } catch (e) {
        pending.delete(m.id);
        li.classList.remove('pending');
        li.classList.add('failed');
        li.querySelector('.when').textContent = `not sent: ${e.message}`;
    }
});

ui.switchBtn.addEventListener('click', () => {
    ui.switchForm.hidden = !ui.switchForm.hidden;
    if (!ui.switchForm.hidden) {
        ui.switchRoom.value = '';
        ui.switchRoom.focus();
    }
});
ui.switchCancel.addEventListener('click', () => { ui.switchForm.hidden = true; });
ui.switchForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const r = ui.switchRoom.value.trim();
    if (!ROOM_RE.test(r)) {
        return;
    }
    ui.switchForm.hidden = true;
    switchRoom(r);
});

ui.retry.addEventListener('click', () => {
    banner(null);
    client.connect();
});

// back from the browser's page cache: the connection was closed on the
// way out
window.addEventListener('pageshow', (ev) => {
    if (ev.persisted && client && me) {
        client.connect();
        announce('join');
    }
});

window.addEventListener('pagehide', () => {
    if (client && me) {
        navigator.sendBeacon(`rooms/${encodeURIComponent(joinedRoom)}/messages`,
            JSON.stringify({ v: 1, type: 'leave', id: randomId(), name: me,
                             ts: Date.now() }));
        client.close();
    }
});

// --- the node panel: goim_status every second ----------------------------

const series = { rate: [], conns: [] };
let last = null;

function parseMetrics(text) {
    const sums = {};
    for (const line of text.split('\n')) {
        if (!line || line[0] === '#') {
            continue;
        }
        const m = /^([A-Za-z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
        if (m && Number.isFinite(Number(m[2]))) {
            sums[m[1]] = (sums[m[1]] || 0) + Number(m[2]);
        }
    }
    return sums;
}

function fmt(n) {
    if (n >= 10000) {
        return `${(n / 1000).toFixed(n >= 100000 ? 0 : 1)}k`;
    }
    return String(Math.round(n));
}

async function poll() {
    try {
        const res = await fetch('status', { cache: 'no-store' });
        if (!res.ok) {
            throw new Error(`HTTP ${res.status}`);
        }
        const s = parseMetrics(await res.text());
        const now = performance.now();
        const written = s.goim_messages_written_total || 0;
        const conns = s.goim_connections || 0;
        let rate = 0;
        if (last) {
            // a restarted worker starts its counters again: never negative
            rate = Math.max(0, written - last.written)
                   / Math.max(0.001, (now - last.t) / 1000);
        }
        last = { t: now, written };
        series.rate.push(rate);
        series.conns.push(conns);
        for (const k of Object.keys(series)) {
            if (series[k].length > CHART_POINTS) {
                series[k].shift();
            }
        }
        const drops = s.goim_dropped_total || 0;
        ui.conns.textContent = fmt(conns);
        ui.rate.textContent = rate < 10 ? rate.toFixed(1) : fmt(rate);
        ui.drops.textContent = fmt(drops);
        ui.drops.classList.toggle('nonzero', drops > 0);
        ui.nodeNote.textContent = `Figures from goim_status, every second; `
            + `${s.goim_online || 0} authenticated, `
            + `${s.goim_rooms || 0} room entries over the workers.`;
    } catch (e) {
        ui.nodeNote.textContent = `Node figures unavailable (${e.message}).`;
    }
    draw();
}

function draw() {
    const c = ui.chart;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (!w || !h) {
        return;
    }
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
        c.width = Math.round(w * dpr);
        c.height = Math.round(h * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const css = getComputedStyle(document.documentElement);
    const top = 14;
    const bottom = h - 4;
    const step = w / (CHART_POINTS - 1);

    // grid
    g.strokeStyle = '#eceef4';
    g.lineWidth = 1;
    for (let i = 0; i <= 3; i++) {
        const y = Math.round(top + (bottom - top) * i / 3) + 0.5;
        g.beginPath();
        g.moveTo(0, y);
        g.lineTo(w, y);
        g.stroke();
    }

    const plot = (data, color, fill) => {
        if (!data.length) {
            return 0;
        }
        const max = Math.max(1, ...data) * 1.15;
        const x0 = w - (data.length - 1) * step;
        const y = (v) => bottom - (bottom - top) * v / max;
        g.beginPath();
        data.forEach((v, i) => {
            const x = x0 + i * step;
            if (i === 0) {
                g.moveTo(x, y(v));
            } else {
                g.lineTo(x, y(v));
            }
        });
        g.strokeStyle = color;
        g.lineWidth = 2;
        g.lineJoin = 'round';
        g.stroke();
        if (fill) {
            g.lineTo(w, bottom);
            g.lineTo(x0, bottom);
            g.closePath();
            g.fillStyle = fill;
            g.fill();
        }
        return max / 1.15;
    };
    const rateMax = plot(series.rate, css.getPropertyValue('--rate').trim(),
                         'rgba(79, 91, 213, .12)');
    const connMax = plot(series.conns, css.getPropertyValue('--conns').trim());

    g.font = '11px system-ui, sans-serif';
    g.textBaseline = 'top';
    g.fillStyle = css.getPropertyValue('--rate').trim();
    g.fillText(`max ${fmt(rateMax)}/s`, 2, 0);
    g.fillStyle = css.getPropertyValue('--conns').trim();
    const label = `max ${fmt(connMax)}`;
    g.fillText(label, w - g.measureText(label).width - 2, 0);
}

window.addEventListener('resize', draw);
poll();
setInterval(poll, 1000);
