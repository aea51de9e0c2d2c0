/**
 * The operator commands' parts that need no cluster: reading a bundle folder, the apply order, the
 * kinds prune looks at, and what diff reports. On a cluster they are tested by test/e2e/operate.e2e.ts.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiObject } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { APPLIED_COMPONENTS, buildBundle } from '../policies/bundle.js';
import { parseConfig } from '../src/config/load.js';
import { inApplyOrder, PRUNED_KINDS } from '../src/operate/apply.js';
import { BUNDLE_LABEL, readBundle } from '../src/operate/bundle-dir.js';
import { changedFields, formatDifferences } from '../src/operate/diff.js';
import { cli, copyOfDist, defaultConfigObject, root } from './helpers.js';

describe('readBundle', () => {
  it('reads dist/ in the order of its root kustomization', () => {
    const components = readBundle(join(root, 'dist'));
    expect(components.map((c) => c.name)).toEqual([...APPLIED_COMPONENTS]);
    expect(components.find((c) => c.name === 'policies')!.entries.map((e) => e.file)).toContain('policies/mutate-pipelinerun.yaml');
  });

  it('names the file and the fix when the folder is no bundle or a file is missing', () => {
    const dist = copyOfDist();
    rmSync(join(dist, 'kueue', 'queues.yaml'));
    expect(() => readBundle(dist)).toThrow(`${join(dist, 'kueue', 'queues.yaml')}: listed in ${join(dist, 'kueue')}/kustomization.yaml but missing; run \`npm run synth\` again`);
    rmSync(join(dist, 'kustomization.yaml'));
    expect(() => readBundle(dist)).toThrow(`${dist}/kustomization.yaml: not found; pass the folder \`npm run synth\` wrote (dist/ by default)`);
  });

  it('refuses a document without a kind, naming the file and the document', () => {
    const dist = copyOfDist();
    writeFileSync(join(dist, 'kueue', 'queues.yaml'), 'apiVersion: v1\nmetadata: {name: x}\n');
    expect(() => readBundle(dist)).toThrow(`${join(dist, 'kueue', 'queues.yaml')}: document 1 has no apiVersion, kind or metadata.name`);
  });
});

it('applies RBAC before the policies and the policies before the guard, whatever the folder order', () => {
  const components = ['guard', 'policies', 'extra', 'kueue', 'rbac', 'namespaces'].map((name) => ({ name, entries: [] }));
  expect(inApplyOrder(components).map((c) => c.name)).toEqual(['namespaces', 'rbac', 'kueue', 'policies', 'guard', 'extra']);
});

it('prune looks at every kind the bundle makes, in both dialects, and never at namespaces', () => {
  const config = { ...defaultConfigObject(), optOut: { subjects: [{ kind: 'Group', name: 'release-bots' }] } };
  const kinds = new Set<string>();
  for (const dialect of ['clusterpolicy', 'cel']) {
    const app = buildBundle(parseConfig({ ...config, dialect }, 'config.yaml'));
    for (const chart of app.charts.filter((c) => (APPLIED_COMPONENTS as readonly string[]).includes(c.node.id))) {
      for (const object of chart.node.findAll().filter((c): c is ApiObject => c instanceof ApiObject)) {
        expect(object.metadata.getLabel(BUNDLE_LABEL.key), `${object.kind} ${object.name}`).toBe(BUNDLE_LABEL.value);
        kinds.add(`${object.apiVersion} ${object.kind}`);
      }
    }
  }
  const pruned = PRUNED_KINDS.map((k) => `${k.apiVersion} ${k.kind}`);
  expect([...kinds].filter((k) => !pruned.includes(k))).toEqual(['v1 Namespace']);
});

describe('diff', () => {
  it('reports the fields that differ, leaving out status and what the API server keeps', () => {
    const live = { apiVersion: 'v1', kind: 'X', metadata: { name: 'a', resourceVersion: '1', managedFields: [{}] }, spec: { a: 1, list: ['x'] }, status: { b: 1 } };
    const applied = { apiVersion: 'v1', kind: 'X', metadata: { name: 'a', resourceVersion: '2', managedFields: [{}, {}] }, spec: { a: 2, list: ['x', 'y'] }, status: { b: 2 } };
    expect(changedFields(live, applied)).toEqual(['spec.a: 1 → 2', 'spec.list[1]: (none) → "y"']);
    expect(changedFields(live, live)).toEqual([]);
  });

  it('prints + for a new object, ~ with its fields for a changed one, - for one to prune', () => {
    expect(
      formatDifferences([
        { change: 'create', object: 'LocalQueue ns/q', file: 'kueue/queues.yaml', fields: [] },
        { change: 'update', object: 'ClusterPolicy p', file: 'policies/p.yaml', fields: ['spec.x: 1 → 2'] },
        { change: 'delete', object: 'ClusterPolicy old', fields: [] },
      ]),
    ).toEqual(['+ LocalQueue ns/q (kueue/queues.yaml)', '~ ClusterPolicy p (policies/p.yaml)', '    spec.x: 1 → 2', '- ClusterPolicy old']);
  });
});

describe('CLI', () => {
  it('apply of a folder that is no bundle exits 2 before it talks to a cluster', () => {
    const { status, stderr } = cli(['apply', join(root, 'policies')]);
    expect(status).toBe(2);
    expect(stderr).toContain('policies/kustomization.yaml: not found');
  });

  it('apply --dry-run with a mode other than server exits 2, naming the modes', () => {
    const { status, stderr } = cli(['apply', '--dry-run=client']);
    expect(status).toBe(2);
    expect(stderr).toContain('--dry-run client: the only mode is "server"');
  });

  it('a kubeconfig without the context asked for exits 1 for apply and 2 for diff', () => {
    const kubeconfig = join(copyOfDist(), '..', 'kubeconfig');
    writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\ncontexts: [{name: here, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\ncurrent-context: here\n');
    for (const [command, code] of [['apply', 1], ['diff', 2]] as const) {
      const { status, stderr } = cli([command, '--kubeconfig', kubeconfig, '--context', 'there']);
      expect(status, stderr).toBe(code);
      expect(stderr).toContain('--context there: no such context in the kubeconfig; its contexts: here');
    }
  });
});
