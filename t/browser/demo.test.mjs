// The demo page (clients/demo) and the client library in a real browser:
// Debian's Chromium, headless, driven by playwright-core (make deps
// installs it into clients/js/node_modules; no browser download), against
// nginx with conf/goim-embedded.conf on random ports.  Run by
// t/110-browser.t; screenshots go to build/screenshots/.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { Nginx, http, renderEmbedded, repo, sleep, startProxy,
         waitFor } from '../../clients/js/test/nginx.mjs';

const require = createRequire(path.join(repo, 'clients/js/package.json'));
const { chromium } = require('playwright-core');

const T = (ms) => ms * (process.env.TEST_NGINX_ASAN ? 3 : 1);
const shots = path.join(repo, 'build/screenshots');
const chromiumPath = process.env.TEST_CHROMIUM || '/usr/bin/chromium';

const DESKTOP = { viewport: { width: 1280, height: 800 } };
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2,
                isMobile: true, hasTouch: true };

let browser;

before(async () => {
    fs.mkdirSync(shots, { recursive: true });
    // launch() gives every run a fresh temporary profile (playwright
    // refuses --user-data-dir here; launchPersistentContext takes one)
    browser = await chromium.launch({
        executablePath: chromiumPath,
        args: ['--headless', '--no-sandbox', '--disable-gpu',
               '--disable-quic', '--no-first-run',
               '--disable-background-networking',
               '--disable-component-update', '--disable-sync'],
    });
});

after(async () => {
    if (browser) {
        await browser.close();
    }
});

function embedded(name, extra = '') {
    return Nginx.start({
        name, portNames: ['ws', 'tcp', 'api'], workers: 2,
        render: (ports) => renderEmbedded(ports, {
            workers: 2, extra: `goim_shutdown_drain 1s;\n${extra}`,
        }),
    });
}

// A page of the demo, joined to `room` as `name`.  `options` become the
// page's client options (globalThis.goimDemoOptions).  With `hold`, the
// page's frames to the server wait hold.ms on the way.  Counts the page's
// WebSocket connections and records its errors.
async function openDemo(origin, name, room, { device = DESKTOP, options,
                                              hold, wait = true } = {}) {
    const context = await browser.newContext(device);
    if (options) {
        await context.addInitScript(
            `globalThis.goimDemoOptions = ${JSON.stringify(options)};`);
    }
    const page = await context.newPage();
    if (hold) {
        await page.routeWebSocket(/\/sub/, (ws) => {
            const server = ws.connectToServer();
            ws.onMessage((m) => setTimeout(() => server.send(m), hold.ms));
        });
    }
    page.sockets = 0;
    page.errors = [];
    page.on('websocket', () => page.sockets++);
    page.on('pageerror', (e) => page.errors.push(String(e)));
    await page.goto(`${origin}/demo/`);
    await page.fill('#name', name);
    await page.fill('#room', room);
    await page.click('#join button[type=submit]');
    if (wait) {
        await page.waitForSelector('#status[data-state="connected"]',
                                   { timeout: T(10000) });
    }
    return page;
}

async function say(page, text) {
    await page.fill('#text', text);
    await page.press('#text', 'Enter');
}

// Waits until the page shows a message bubble (or system line) with text.
function shows(page, text, ms = T(5000)) {
    return page.waitForFunction(
        (t) => [...document.querySelectorAll('#messages li')]
            .some((li) => li.textContent.includes(t)),
        text, { timeout: ms });
}

async function onlineCount(page) {
    return Number(await page.textContent('#online-count'));
}

describe('the demo on make run\'s configuration', () => {
    let n;
    let origin;
    before(async () => {
        n = await embedded('browser-demo');
        origin = `http://127.0.0.1:${n.ports.ws}`;
    });
    after(async () => {
        assert.deepEqual(await n.stop([/exited on signal 9/]), []);
    });

    test('two pages chat with each other; screenshots', async () => {
        // a's count changes only when a asks (on "joined" or "left"):
        // its heartbeat does not come within the test
        const a = await openDemo(origin, 'Ada', 'chat',
                                 { options: { heartbeat: 60000 } });
        const hold = { ms: 0 };
        const b = await openDemo(origin, 'Grace', 'chat',
                                 { device: PHONE, hold });
        await shows(a, 'Grace joined');
        await waitFor(async () => await onlineCount(a) === 2
                                  && await onlineCount(b) === 2,
                      T(5000), 'both pages to show 2 online');

        await say(a, 'Hi Grace, can you see this?');
        await shows(b, 'Hi Grace, can you see this?');
        await say(b, 'Loud and clear! Pushed over one WebSocket.');
        await shows(a, 'Loud and clear!');
        await say(a, 'Great. Now let me reload nginx 😄');
        await shows(b, 'Now let me reload nginx');
        // own messages are confirmed by their echo through the WebSocket
        await a.waitForFunction(() =>
            document.querySelectorAll('#messages .msg.own').length === 2
            && !document.querySelector('#messages .msg.pending'),
            null, { timeout: T(5000) });
        assert.equal(await a.locator('#messages .msg:not(.own)').count(), 1);
        assert.equal(await b.locator('#messages .msg:not(.own)').count(), 2);

        // the node panel: figures from goim_status, updated every second
        await waitFor(async () =>
            Number(await a.textContent('#fig-conns')) >= 2,
            T(5000), 'the node panel to count 2 connections');
        await a.waitForFunction(() =>
            /written|authenticated/.test(
                document.getElementById('node-note').textContent),
            null, { timeout: T(5000) });
        await sleep(1500);      // a few points on the chart
        await a.screenshot({ path: path.join(shots, 'demo-desktop.png') });
        await b.screenshot({ path: path.join(shots, 'demo-phone.png') });
        await b.screenshot({ path: path.join(shots, 'demo-phone-full.png'),
                             fullPage: true });

        // switching rooms (op 12): the other page no longer hears it.  The
        // change takes a second on the way, and "left" comes after it.
        hold.ms = 1000;
        await b.click('#switch');
        await b.fill('#switch-room', 'quiet');
        await b.press('#switch-room', 'Enter');
        await shows(a, 'Grace left');
        await waitFor(async () => await onlineCount(a) === 1, T(5000),
                      'the count to drop to 1');
        await say(a, 'anyone?');
        await shows(a, 'anyone?');
        await say(b, 'in the quiet room');
        await shows(b, 'in the quiet room');
        await sleep(300);
        assert.equal(await b.locator('#messages li', { hasText: 'anyone?' })
                             .count(), 0);
        assert.equal(await a.locator('#messages li',
                                     { hasText: 'in the quiet room' })
                             .count(), 0);
        assert.deepEqual([...a.errors, ...b.errors], []);
        assert.equal(a.sockets, 1);
        assert.equal(b.sockets, 1);
        await a.context().close();
        await b.context().close();
    });

    test('survives nginx -s reload and a worker killed with SIGKILL',
         async () => {
        const a = await openDemo(origin, 'Ada', 'ops',
                                 { options: { minReconnectDelay: 100 } });
        const b = await openDemo(origin, 'Linus', 'ops');
        await shows(a, 'Linus joined');

        await n.reload(T(10000));
        await shows(a, 'Reconnected.', T(8000));
        await shows(b, 'Reconnected.', T(8000));
        await a.waitForSelector('#status[data-state="connected"]');
        assert.ok(a.sockets >= 2, `page reconnected (${a.sockets} sockets)`);
        await say(b, 'after the reload');
        await shows(a, 'after the reload');

        const before = a.sockets;
        for (const pid of n.workerPids()) {
            process.kill(pid, 'SIGKILL');
        }
        await waitFor(() => a.sockets > before, T(8000), 'a new socket');
        await a.waitForSelector('#status[data-state="connected"]',
                                { timeout: T(8000) });
        await b.waitForSelector('#status[data-state="connected"]',
                                { timeout: T(8000) });
        await say(b, 'after the crash');
        await shows(a, 'after the crash');
        assert.deepEqual([...a.errors, ...b.errors], []);
        await a.context().close();
        await b.context().close();
    });

    test('a dead network (no heartbeat replies) is detected and recovered',
         async () => {
        const proxy = await startProxy(n.ports.ws);
        try {
            const via = `http://127.0.0.1:${proxy.port}`;
            const a = await openDemo(via, 'Ada', 'net', {
                options: { heartbeat: 1000, timeout: 1000,
                           minReconnectDelay: 100 },
            });
            const b = await openDemo(origin, 'Edsger', 'net');
            await shows(a, 'Edsger joined');
            const t0 = Date.now();
            proxy.freeze();     // the page's socket goes silent both ways
            await a.waitForFunction(() =>
                document.getElementById('status').dataset.state
                === 'connecting', null, { timeout: T(5000) });
            const took = Date.now() - t0;
            assert.ok(took <= 2000 + T(1000), `detected in ${took} ms`);
            assert.match(await a.textContent('#banner-text'),
                         /Connection lost/);
            await a.waitForSelector('#status[data-state="connected"]',
                                    { timeout: T(8000) });
            assert.equal(a.sockets, 2);
            await say(b, 'you are back');
            await shows(a, 'you are back');
            assert.equal(await a.isHidden('#banner'), true);
            await a.context().close();
            await b.context().close();
        } finally {
            await proxy.close();
        }
    });

    test('the demo location publishes only to demo:// rooms, small, '
         + 'rate-limited', async () => {
        const ws = n.ports.ws;
        const ok = await http(ws, 'POST', '/demo/rooms/lim/messages', '{}');
        assert.equal(ok.status, 200);
        assert.equal(ok.json.code, 0);
        assert.equal((await http(ws, 'POST', '/demo/rooms/a.b/messages', 'x'))
                     .status, 404);
        assert.equal((await http(ws, 'POST', '/demo/rooms/a/messages?room=x',
                                 'x')).status, 200);
        assert.equal((await http(ws, 'GET', '/demo/rooms/a/messages'))
                     .status, 403);
        assert.equal((await http(ws, 'POST', '/demo/rooms/a/messages',
                                 'x'.repeat(2000))).status, 413);
        assert.equal((await http(ws, 'POST',
                                 '/goim/push/all?operation=1000', 'x'))
                     .status, 404);
        const status = await http(ws, 'GET', '/demo/status');
        assert.match(status.body, /^goim_connections\{/m);
        assert.equal((await http(ws, 'POST', '/demo/status', 'x')).status,
                     405);
        // 5 r/s with a burst of 10 per address: 30 at once are not all let in
        const codes = await Promise.all(Array.from({ length: 30 }, () =>
            http(ws, 'POST', '/demo/rooms/lim/messages', '{}')
                .then((r) => r.status)));
        assert.ok(codes.includes(429), `codes: ${codes.join(' ')}`);
        assert.ok(codes.filter((c) => c === 200).length <= 11);
    });
});

describe('a node that requires signed tokens', () => {
    let n;
    before(async () => {
        n = await embedded('browser-jwt',
            'goim_auth_secret browser-test-secret-at-least-32-bytes;');
    });
    after(async () => {
        assert.deepEqual(await n.stop(), []);
    });

    test('the page shows why and stops reconnecting', async () => {
        const a = await openDemo(`http://127.0.0.1:${n.ports.ws}`, 'Mallory',
                                 'jwt', { wait: false, options: {
                                     minReconnectDelay: 50,
                                     maxReconnectDelay: 100 } });
        await a.waitForSelector('#status[data-state="failed"]',
                                { timeout: T(5000) });
        const text = await a.textContent('#banner-text');
        assert.match(text, /refused the sign-in: auth failed: bad token/);
        assert.match(text, /Not retrying/);
        await sleep(1000);      // ten backoff periods
        assert.equal(a.sockets, 1);
        assert.equal(await a.textContent('#status-text'), 'Sign-in refused');
        assert.equal(await a.isDisabled('#composer button'), true);
        // the button tries once more, on demand
        await a.click('#retry');
        await waitFor(() => a.sockets === 2, T(3000), 'a second socket');
        await a.waitForSelector('#status[data-state="failed"]',
                                { timeout: T(5000) });
        await a.screenshot({ path: path.join(shots, 'demo-refused.png') });
        assert.equal(n.logLines(/goim: auth failed: bad token/).length, 2);
        assert.deepEqual(a.errors, []);
        await a.context().close();
    });
});
