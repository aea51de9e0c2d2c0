// Benchmark of `npm run synth` (the precompiled path) against loading cdk8s alone and against
// `cdk8s synth` through ts-node, on the same app. The commands take turns, so drift in machine
// load hits them alike; wall time is the median of RUNS turns, memory the largest peak RSS seen
// (GNU time's %M). Usage: npm run bench:synth [-- RUNS]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const runs = Number(process.argv[2] ?? 7);
const out = mkdtempSync(join(tmpdir(), 'tkp-bench-'));
const compiledDir = join(root, 'node_modules', '.cache', 'tekton-kueue-policies');
if (!existsSync('/usr/bin/time')) throw new Error('needs GNU time at /usr/bin/time (Debian package "time")');

function once(command, args) {
  const run = spawnSync('/usr/bin/time', ['-f', '%e %M', command, ...args], { cwd: root, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${run.stderr}`);
  const [seconds, kib] = run.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { seconds, mib: kib / 1024 };
}

const node = process.execPath;
const cases = [
  { name: 'node -e "require(\'cdk8s\')"', command: node, args: ['-e', "require('cdk8s')"] },
  { name: 'npm run synth (warm, output up to date)', command: node, args: ['bin/tekton-kueue-policies.mjs', 'synth', '--out', join(out, 'warm')] },
  {
    name: 'npm run synth (warm, output rewritten)',
    command: node,
    args: ['bin/tekton-kueue-policies.mjs', 'synth', '--out', join(out, 'rewritten')],
    before: () => existsSync(join(out, 'rewritten')) && writeFileSync(join(out, 'rewritten', 'kustomization.yaml'), 'stale\n'),
  },
  {
    name: 'npm run synth (after a source change: esbuild + code cache)',
    command: node,
    args: ['bin/tekton-kueue-policies.mjs', 'synth', '--out', join(out, 'cold')],
    before: () => rmSync(compiledDir, { recursive: true, force: true }),
  },
  {
    name: 'cdk8s synth via ts-node',
    command: join(root, 'node_modules', '.bin', 'cdk8s'),
    args: ['synth', '--app', `${node} --loader ts-node/esm test/bench/ts-node-app.ts`, '--output', join(out, 'ts-node')],
  },
];
const samples = cases.map(() => []);
once(node, cases[1].args); // warm the precompiled bundle and its code cache
for (let i = 0; i < runs; i++) {
  cases.forEach((c, j) => {
    c.before?.();
    samples[j].push(once(c.command, c.args));
  });
}
const rows = cases.map((c, j) => {
  const sorted = samples[j].map((s) => s.seconds).sort((a, b) => a - b);
  return [c.name, { seconds: sorted[Math.floor(sorted.length / 2)], mib: Math.max(...samples[j].map((s) => s.mib)) }];
});
rmSync(out, { recursive: true, force: true });

const baseline = rows[0][1].seconds;
console.log(`${runs} runs each, ${execFileSync('nproc').toString().trim()} cores, node ${process.version}\n`);
console.log('| command | median wall | × require(cdk8s) | peak RSS |\n|---|---|---|---|');
for (const [name, { seconds, mib }] of rows) {
  console.log(`| ${name} | ${seconds.toFixed(2)} s | ${(seconds / baseline).toFixed(2)}× | ${mib.toFixed(0)} MiB |`);
}
