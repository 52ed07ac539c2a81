// A node:test reporter for prove: flat TAP, one line per test (and one
// per failed suite or file, so that a failed hook or a crashed file
// counts), diagnostics as comments.  Node's own TAP reporter writes YAML
// blocks that prove's parser rejects when an error message holds a
// "Call log:" line (playwright's errors do).

function comment(text) {
    return String(text).split('\n').filter((l) => l.length)
        .map((l) => `# ${l}\n`).join('');
}

export default async function* tapFlat(source) {
    let n = 0;
    const path = [];
    yield 'TAP version 13\n';
    for await (const ev of source) {
        const d = ev.data || {};
        if (ev.type === 'test:start') {
            path[d.nesting] = d.name;
            path.length = d.nesting + 1;
        } else if (ev.type === 'test:pass' || ev.type === 'test:fail') {
            const suite = d.details && d.details.type === 'suite';
            const ok = ev.type === 'test:pass';
            // suites and files that passed are their tests' sum
            if (suite && ok) {
                continue;
            }
            if (!suite && ok && d.nesting === 0 && d.file
                && d.name === d.file) {
                continue;
            }
            const name = [...path.slice(0, d.nesting), d.name]
                .filter((x) => x && !x.startsWith('/'))
                .join(' > ').replace(/#/g, '\\#') || d.name;
            const ms = d.details ? Math.round(d.details.duration_ms) : 0;
            const skip = d.skip ? ` # SKIP ${d.skip === true ? '' : d.skip}`
                       : d.todo ? ` # TODO ${d.todo === true ? '' : d.todo}`
                       : '';
            yield `${ok ? 'ok' : 'not ok'} ${++n} - ${name} (${ms} ms)${skip}\n`;
            if (!ok && d.details && d.details.error) {
                const e = d.details.error;
                const cause = e.cause || e;
                yield comment(cause.stack || cause.message || cause);
            }
        } else if (ev.type === 'test:diagnostic') {
            yield comment(d.message);
        } else if (ev.type === 'test:stderr' || ev.type === 'test:stdout') {
            yield comment(d.message);
        }
    }
    yield `1..${n}\n`;
}
