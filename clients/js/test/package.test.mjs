// The package: what `npm pack` puts in it, and that its types check.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

test('npm pack: the module, its types, its README and package.json',
     () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json',
                                     '--ignore-scripts'],
                             { cwd: dir, encoding: 'utf8' });
    const [info] = JSON.parse(out);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json')));
    assert.equal(info.name, pkg.name);
    assert.equal(info.version, pkg.version);
    assert.deepEqual(info.files.map((f) => f.path).sort(),
                     ['README.md', 'goim.d.ts', 'goim.js', 'package.json']);
    assert.deepEqual(Object.keys(pkg.dependencies || {}), [],
                     'no runtime dependencies');
    assert.ok(info.size < 40000, `packed size ${info.size}`);
});

test('the package imports by its name (exports)', async () => {
    const m = await import('goim-client');
    assert.equal(typeof m.GoimClient, 'function');
    assert.equal(m.default, m.GoimClient);
});

test('goim.d.ts: an application using every public name type-checks',
     () => {
    const tsc = path.join(dir, 'node_modules/typescript/bin/tsc');
    try {
        execFileSync(process.execPath, [tsc, '--noEmit', '--strict',
            '--target', 'es2022', '--module', 'nodenext',
            '--moduleResolution', 'nodenext', '--lib', 'es2022,dom',
            path.join(dir, 'test/types.ts')],
            { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
        assert.fail(`tsc: ${e.stdout}${e.stderr}`);
    }
});
