// Test helpers: a real nginx with the goim module on random loopback
// ports (one per test file or test), a TCP proxy that can stop
// forwarding, and polling with a deadline.  Used by the library's tests
// (clients/js/test) and by the browser suite (t/browser).
//
// Environment (as t/lib/Test/Goim.pm): TEST_NGINX_BINARY (nginx, or
// tools/asan-nginx.sh for make test-asan), TEST_GOIM_MODULE,
// TEST_NGINX_STREAM_MODULE, TEST_NGINX_ASAN (look for sanitizer reports).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
                                 '../../..');
const nginxBin = process.env.TEST_NGINX_BINARY || '/usr/sbin/nginx';
const goimModule = process.env.TEST_GOIM_MODULE
                   || path.join(repo, 'build/ngx_goim_module.so');
const streamModule = process.env.TEST_NGINX_STREAM_MODULE
                     || '/usr/lib/nginx/modules/ngx_stream_module.so';
const asan = !!process.env.TEST_NGINX_ASAN;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn() until it returns a truthy value; returns it, or throws after
// `ms` with `what` in the message.
export async function waitFor(fn, ms, what = 'condition') {
    const deadline = Date.now() + ms;
    for (;;) {
        const v = await fn();
        if (v) {
            return v;
        }
        if (Date.now() >= deadline) {
            throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        }
        await sleep(20);
    }
}

const usedPorts = new Set();

// A free loopback port below the ephemeral range, so that client sockets
// cannot take it between this check and nginx's bind.
export async function freePort() {
    for (let i = 0; i < 200; i++) {
        const port = 10000 + Math.floor(Math.random() * 22000);
        if (usedPorts.has(port)) {
            continue;
        }
        const ok = await new Promise((resolve) => {
            const s = net.createServer();
            s.once('error', () => resolve(false));
            s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
        });
        if (ok) {
            usedPorts.add(port);
            return port;
        }
    }
    throw new Error('no free port found');
}

function portOpen(port) {
    return new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => { s.destroy(); resolve(true); });
        s.once('error', () => resolve(false));
    });
}

function readFile(p) {
    try {
        return fs.readFileSync(p, 'utf8');
    } catch (e) {
        return '';
    }
}

// Live (not zombie) children of pid, from /proc.
export function childrenOf(ppid) {
    const out = [];
    for (const d of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) {
            continue;
        }
        const m = /^(\d+) \(.*\) (\S) (\d+) /.exec(readFile(`/proc/${d}/stat`));
        if (m && Number(m[3]) === ppid && m[2] !== 'Z') {
            out.push(Number(m[1]));
        }
    }
    return out.sort((a, b) => a - b);
}

export function procState(pid) {
    const m = /^\d+ \(.*\) (\S) /.exec(readFile(`/proc/${pid}/stat`));
    return m ? m[1] : null;
}

const running = new Set();

function killAll() {
    for (const n of running) {
        for (const pid of [n.pid, ...childrenOf(n.pid)]) {
            try { process.kill(pid, 'SIGKILL'); } catch (e) { /* gone */ }
        }
    }
    running.clear();
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => { killAll(); process.exit(130); });
}

// The main-context lines every test config starts with.
export function loadModules() {
    return `load_module ${streamModule};\nload_module ${goimModule};\n`;
}

// Lines that fail a test unless it allows them.
const badLines = [/\[(?:alert|crit|emerg)\]/, /exited on signal/,
                  /AddressSanitizer|LeakSanitizer|runtime error:/];

export class Nginx {
    // name: a directory under build/js-test; render(ports) -> nginx.conf
    // text (relative paths are under that directory); portNames: the
    // ports to choose, the first is waited for.
    static async start({ name, render, portNames = ['http'], workers = 1 }) {
        const n = new Nginx();
        n.name = name;
        n.dir = path.join(repo, 'build/js-test', `${name}`);
        n.ports = {};
        for (const p of portNames) {
            n.ports[p] = await freePort();
        }
        n.workers = workers;
        fs.rmSync(n.dir, { recursive: true, force: true });
        for (const d of ['conf', 'logs', 'temp']) {
            fs.mkdirSync(path.join(n.dir, d), { recursive: true });
        }
        n.conf = render(n.ports, n);
        fs.writeFileSync(path.join(n.dir, 'conf/nginx.conf'), n.conf);
        await n._spawn();
        return n;
    }

    async _spawn() {
        const errFd = fs.openSync(path.join(this.dir, 'logs/stderr.log'), 'a');
        const env = { ...process.env };
        delete env.NGINX;   // nginx reads it as inherited sockets
        this.proc = spawn(nginxBin, ['-p', this.dir + '/', '-c',
                                     'conf/nginx.conf', '-e',
                                     'logs/error.log', '-g', 'daemon off;'],
                          { stdio: ['ignore', errFd, errFd], env });
        fs.closeSync(errFd);
        this.pid = this.proc.pid;
        this.exited = new Promise((resolve) => {
            this.proc.once('exit', (code, signal) => {
                running.delete(this);
                resolve({ code, signal });
            });
        });
        running.add(this);
        const first = Object.values(this.ports)[0];
        const scale = asan ? 4 : 1;
        await waitFor(async () => {
            if (this.proc.exitCode !== null) {
                throw new Error(`nginx exited: ${this.proc.exitCode}\n`
                    + readFile(path.join(this.dir, 'logs/stderr.log'))
                    + readFile(path.join(this.dir, 'logs/error.log')));
            }
            return await portOpen(first)
                   && this.workerPids().length >= this.workers;
        }, 10000 * scale, `nginx ${this.name} to listen on ${first}`);
    }

    workerPids() {
        return childrenOf(this.pid);
    }

    errorLog() {
        return readFile(path.join(this.dir, 'logs/error.log'))
               + readFile(path.join(this.dir, 'logs/stderr.log'));
    }

    // Lines matching `re` in the error log so far.
    logLines(re) {
        return this.errorLog().split('\n').filter((l) => re.test(l));
    }

    // nginx -s reload: waits until none of the old workers is left.
    async reload(ms = 10000) {
        const old = this.workerPids();
        process.kill(this.pid, 'SIGHUP');
        await waitFor(() => {
            const now = this.workerPids();
            return now.length >= this.workers
                   && !now.some((p) => old.includes(p));
        }, ms, 'the old workers to exit after the reload');
    }

    // Stops nginx (graceful quit, then KILL) and returns the error log
    // lines that nothing allowed: [alert], [crit], [emerg], a worker that
    // died of a signal, a sanitizer report.
    async stop(allow = []) {
        if (this.proc.exitCode === null && this.proc.signalCode === null) {
            process.kill(this.pid, 'SIGQUIT');
            let timer;
            const quit = await Promise.race([
                this.exited,
                new Promise((r) => { timer = setTimeout(r, 10000); }),
            ]);
            clearTimeout(timer);
            if (!quit) {
                for (const pid of [this.pid, ...this.workerPids()]) {
                    try { process.kill(pid, 'SIGKILL'); } catch (e) { }
                }
                await this.exited;
            }
        }
        return this.errorLog().split('\n').filter((l) =>
            badLines.some((re) => re.test(l))
            && !allow.some((re) => re.test(l)));
    }
}

// A TCP proxy to 127.0.0.1:target.  freeze() makes the connections open
// at that moment a dead network: they stay open, but nothing passes any
// more in either direction.  New connections pass normally, unless
// `blackhole` is set (then they are accepted and never answered).
export async function startProxy(target) {
    const pairs = new Set();
    const proxy = { port: await freePort(), blackhole: false,
                    connections: 0 };
    const server = net.createServer((client) => {
        proxy.connections++;
        const pair = { client, upstream: null, frozen: false };
        pairs.add(pair);
        const drop = () => {
            pairs.delete(pair);
            client.destroy();
            if (pair.upstream) {
                pair.upstream.destroy();
            }
        };
        client.on('error', drop);
        client.on('close', () => { if (!pair.frozen) drop(); });
        if (proxy.blackhole) {
            pair.frozen = true;
            client.on('data', () => {});
            return;
        }
        const up = net.connect(target, '127.0.0.1');
        pair.upstream = up;
        up.on('error', drop);
        up.on('close', () => { if (!pair.frozen) drop(); });
        client.on('data', (d) => { if (!pair.frozen) up.write(d); });
        up.on('data', (d) => { if (!pair.frozen) client.write(d); });
    });
    await new Promise((r) => server.listen(proxy.port, '127.0.0.1', r));
    proxy.freeze = () => {
        for (const p of pairs) {
            p.frozen = true;
        }
    };
    proxy.frozenCount = () => [...pairs].filter((p) => p.frozen).length;
    proxy.close = () => new Promise((r) => {
        for (const p of pairs) {
            p.client.destroy();
            if (p.upstream) {
                p.upstream.destroy();
            }
        }
        pairs.clear();
        server.close(() => r());
    });
    return proxy;
}

// HTTP request to nginx; resolves {status, body, json}.
export async function http(port, method, pathname, body, headers = {}) {
    const res = await fetch(`http://127.0.0.1:${port}${pathname}`,
                            { method, body, headers });
    const text = await res.text();
    let json;
    try {
        json = JSON.parse(text);
    } catch (e) {
        json = undefined;
    }
    return { status: res.status, body: text, json, headers: res.headers };
}

// conf/goim-embedded.conf as conf/run-embedded.sh fills it in, but on the
// given ports, logging to logs/error.log, plus `extra` main-context lines.
// `accessLog: false` turns the shipped access log off.
export function renderEmbedded(ports, { workers = 1, extra = '',
                                        level = 'info',
                                        accessLog = true } = {}) {
    let t = fs.readFileSync(path.join(repo, 'conf/goim-embedded.conf'),
                            'utf8');
    t = t.replace(/load_module @STREAM_MODULE@;/, `load_module ${streamModule};`)
         .replace(/load_module @GOIM_MODULE@;/, `load_module ${goimModule};`)
         .replace(/@LISTEN@:3101\b/g, `127.0.0.1:${ports.tcp}`)
         .replace(/@LISTEN@:3102\b/g, `127.0.0.1:${ports.ws}`)
         .replace(/@LISTEN@:3111\b/g, `127.0.0.1:${ports.api}`)
         .replace(/@LISTEN@/g, '127.0.0.1')
         .replace(/@ROOT@/g, repo)
         .replace(/@WORKERS@/g, String(workers))
         .replace(/error_log stderr @LOG_LEVEL@;/,
                  `error_log logs/error.log ${level};`);
    if (!accessLog) {
        t = t.replace(/^(\s*)access_log logs\/access\.log;/m,
                      '$1access_log off;');
    }
    if (/^[^#]*@[A-Z_]+@/m.test(t)) {
        throw new Error(`placeholder left in the config: ${t.match(/@[A-Z_]+@/)}`);
    }
    // the same directive twice is a configuration error: replace it
    for (const line of extra.split('\n')) {
        const m = /^\s*(goim_\w+)\s/.exec(line);
        if (m && new RegExp(`^${m[1]}\\s.*$`, 'm').test(t)) {
            t = t.replace(new RegExp(`^${m[1]}\\s.*$`, 'm'), line.trim());
        } else if (line.trim()) {
            t = t.replace(/^events \{/m, `${line.trim()}\n\nevents {`);
        }
    }
    return t;
}
