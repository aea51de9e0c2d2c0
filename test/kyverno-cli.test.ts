/**
 * Tier 1 proof: the real Kyverno engine (CLI v1.19.0) runs every rule of the synthesized policies
 * against the suites beside them (policies/<step>/kyverno-test.yaml).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import YAML from 'yaml';

const policiesDir = join(import.meta.dirname, '..', 'policies');
const suites = readdirSync(policiesDir, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .filter((name) => readdirSync(join(policiesDir, name)).includes('kyverno-test.yaml'));

function kyverno(...args: string[]) {
  const run = spawnSync(inject('kyvernoCli'), args, { encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('Kyverno CLI suites', () => {
  it('covers every step of the flow', () => {
    expect(suites.sort()).toEqual(['admit-customrun', 'admit-pipelinerun', 'evict-pipelinerun', 'generate-workload', 'mutate-pipelinerun', 'release-workload']);
  });

  it.each(suites)('%s: every expected result holds', (suite) => {
    const test = YAML.parse(readFileSync(join(policiesDir, suite, 'kyverno-test.yaml'), 'utf8')) as { results: { resources: string[] }[] };
    const expected = test.results.reduce((n, r) => n + r.resources.length, 0);
    const { status, output } = kyverno('test', join(policiesDir, suite));
    // The CLI passes silently over a result it cannot pair with a resource: count them too.
    expect(output, output).toContain(`Test Summary: ${expected} tests passed and 0 tests failed`);
    expect(status, output).toBe(0);
  });

  it('mutate-pipelinerun gates a generateName run and keeps text that looks like a variable', () => {
    const dir = join(policiesDir, 'mutate-pipelinerun', 'test');
    const out = join(mkdtempSync(join(tmpdir(), 'tkp-mutate-')), 'out.yaml');
    const { status, output } = kyverno('apply', join(policiesDir, '..', 'dist', 'policies', 'mutate-pipelinerun.yaml'), '--resource', join(dir, 'generate-name.yaml'), '-o', out);
    expect(status, output).toBe(0);
    const mutated = YAML.parseAllDocuments(readFileSync(out, 'utf8')).map((d) => d.toJS()).filter(Boolean);
    expect(mutated).toEqual([YAML.parse(readFileSync(join(dir, 'patched-generate-name.yaml'), 'utf8'))]);
  });

  it('generate-workload makes a Workload for gate CustomRuns and gated PipelineRuns only', () => {
    const out = mkdtempSync(join(tmpdir(), 'tkp-generate-'));
    const dir = join(policiesDir, 'generate-workload');
    const { status, output } = kyverno('apply', join(policiesDir, '..', 'dist', 'policies', 'generate-workload.yaml'), '--resource', join(dir, 'test', 'resources.yaml'), '--resource', join(dir, 'test', 'pipelineruns.yaml'), '-o', out);
    expect(status, output).toBe(0);
    const generated = readdirSync(out).flatMap((f) => YAML.parseAllDocuments(readFileSync(join(out, f), 'utf8')).map((d) => d.toJS()).filter(Boolean));
    expect(generated.map((w: { metadata: { name: string } }) => w.metadata.name).sort()).toEqual([
      'build-7xk2p-kueue-gate',
      'deploy-q8z4m',
      'nightly-kueue-gate',
      'release-v1-kueue-gate',
    ]);
  });
});
