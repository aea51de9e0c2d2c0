/**
 * The operator commands' parts that need no cluster: reading a bundle folder, the apply order, the
 * kinds prune looks at, what diff reports, how status reads a run and a ClusterQueue, and doctor's
 * version and selector checks. On a cluster they are tested by test/e2e/operate.e2e.ts.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiObject } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { APPLIED_COMPONENTS, buildBundle } from '../policies/bundle.js';
import { parseConfig } from '../src/config/load.js';
import { inApplyOrder, missingGrants, notReady, PRUNED_KINDS } from '../src/operate/apply.js';
import { BUNDLE_LABEL, readBundle } from '../src/operate/bundle-dir.js';
import { changedFields, formatDifferences } from '../src/operate/diff.js';
import { selects } from '../src/operate/cluster.js';
import { formatFindings, minimumVersions, versionOf } from '../src/operate/doctor.js';
import { clusterQueueStatus, formatSeconds, formatStatus, type PipelineRunObject, runStatus, type WorkloadObject } from '../src/operate/status.js';
import { cli, copyOfDist, defaultConfigObject, exampleConfig, root, tempDir } from './helpers.js';

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

it("says why a policy is not Ready: a ClusterPolicy's Ready condition, or the first failed condition of a CEL policy, whose own message Kyverno leaves empty", () => {
  const metadata = { name: 'generate-workload' };
  const cel = (conditions: object[]) => notReady({ apiVersion: 'policies.kyverno.io/v1', kind: 'GeneratingPolicy', metadata, status: { conditionStatus: { message: '', ready: false, conditions } } } as never);
  expect(cel([{ type: 'WebhookConfigured', status: 'True', message: 'Webhook configured.' }, { type: 'RBACPermissionsGranted', status: 'False', message: 'missing permissions: get pipelineruns/status' }])).toBe(
    'GeneratingPolicy generate-workload is not Ready: missing permissions: get pipelineruns/status',
  );
  expect(notReady({ apiVersion: 'policies.kyverno.io/v1', kind: 'GeneratingPolicy', metadata, status: { conditionStatus: { ready: true } } } as never)).toBeUndefined();
  expect(notReady({ apiVersion: 'kyverno.io/v1', kind: 'ClusterPolicy', metadata } as never)).toBe('ClusterPolicy generate-workload is not Ready (Kyverno has not reported on it yet)');
});

it('prune looks at every kind the bundle makes, in both dialects and every example, and never at namespaces', () => {
  const examples = ['multi-team-ci', 'multikueue-manager', 'multikueue-worker'].map((name) => YAML.parse(readFileSync(join(root, 'policies', 'examples', `${name}.yaml`), 'utf8')));
  const configs = [{ ...defaultConfigObject(), optOut: { subjects: [{ kind: 'Group', name: 'release-bots' }] } }, ...examples];
  const kinds = new Set<string>();
  for (const [config, dialect] of configs.flatMap((config) => ['clusterpolicy', 'cel'].map((dialect) => [config, dialect] as const))) {
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

it("finds what Kyverno's aggregating ClusterRoles lack of the bundle's, whichever way their selectors pick it", async () => {
  const role = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'gate:background', labels: { 'rbac.kyverno.io/aggregate-to-background-controller': 'true' } }, rules: [{ apiGroups: ['kueue.x-k8s.io'], resources: ['workloads'], verbs: ['get', 'create'] }] };
  const aggregator = (name: string, selector: object, verbs: string[]) => ({ metadata: { name }, aggregationRule: { clusterRoleSelectors: [selector] }, rules: [{ apiGroups: ['kueue.x-k8s.io'], resources: ['workloads'], verbs }] });
  const lacking = (...roles: object[]) => missingGrants({ list: async () => ({ items: roles }) } as never, [role as never]);
  const byLabels = { matchLabels: { 'rbac.kyverno.io/aggregate-to-background-controller': 'true' } };
  const byExpression = { matchExpressions: [{ key: 'rbac.kyverno.io/aggregate-to-background-controller', operator: 'Exists' }] };
  expect(await lacking(aggregator('kyverno:background', byLabels, ['get', 'create']))).toEqual([]);
  expect(await lacking(aggregator('kyverno:background', byExpression, ['get']))).toEqual(['ClusterRole kyverno:background lacks kueue.x-k8s.io workloads create of ClusterRole gate:background']);
  // An empty selector picks every ClusterRole: it is no sign that Kyverno aggregates the bundle's.
  expect(await lacking(aggregator('everything', {}, ['*']))).toEqual(['no ClusterRole aggregates ClusterRole gate:background (label rbac.kyverno.io/aggregate-to-background-controller): is Kyverno installed?']);
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

describe('status', () => {
  const created = '2026-01-01T00:00:00Z';
  const now = Date.parse('2026-01-01T00:05:00Z');
  const run = (extra: Partial<PipelineRunObject> = {}): PipelineRunObject => ({ apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name: 'r', namespace: 'ns', creationTimestamp: new Date(created), labels: { 'kueue.x-k8s.io/priority-class': 'high' } }, ...extra });
  const workload = (conditions: object[], spec: object = {}): WorkloadObject => ({ apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'Workload', metadata: { name: 'r-kueue-gate' }, spec: { queueName: 'q', priority: 1000, priorityClassRef: { name: 'high' }, ...spec }, status: { conditions } as never });

  it('a waiting run: its place, Kueue\'s reason, how long it has waited', () => {
    const pending = workload([{ type: 'QuotaReserved', status: 'False', message: 'insufficient unused quota for cpu' }]);
    expect(runStatus(run(), pending, { localQueue: 1, clusterQueue: 3 }, now)).toEqual({
      namespace: 'ns', name: 'r', queue: 'q', priority: 'high (1000)', state: 'waiting', position: { localQueue: 1, clusterQueue: 3 }, message: 'insufficient unused quota for cpu', waitedSeconds: 300,
    });
    expect(runStatus(run(), workload([]), { localQueue: 2, clusterQueue: 4 }, now).message).toBe('queued behind 3 in its ClusterQueue');
    expect(runStatus(run(), workload([], { active: false }), undefined, now).message).toBe('deactivated (spec.active: false)');
  });

  it('admitted, running once Tekton made a child of its own, finished: waited until admission', () => {
    const admitted = workload([{ type: 'Admitted', status: 'True', lastTransitionTime: '2026-01-01T00:01:10Z' }]);
    expect(runStatus(run(), admitted, undefined, now)).toMatchObject({ state: 'admitted', waitedSeconds: 70 });
    const started = run({ status: { childReferences: [{ pipelineTaskName: 'kueue-gate' }, { pipelineTaskName: 'build' }] } });
    expect(runStatus(started, admitted, undefined, now)).toMatchObject({ state: 'running', waitedSeconds: 70 });
    const ended = run({ status: { conditions: [{ type: 'Succeeded', status: 'False', reason: 'Cancelled' }] } });
    expect(runStatus(ended, admitted, undefined, now)).toMatchObject({ state: 'finished', message: 'Cancelled', waitedSeconds: 70 });
    expect(runStatus(ended, workload([]), undefined, now)).toMatchObject({ state: 'finished', message: 'Cancelled (never admitted)', waitedSeconds: undefined });
  });

  it('a run its user holds is held, not waiting; a run without a Workload says so', () => {
    expect(runStatus(run({ spec: { status: 'PipelineRunPending' } }), undefined, undefined, now)).toMatchObject({ state: 'held', queue: undefined, priority: 'high' });
    expect(runStatus(run(), undefined, undefined, now)).toMatchObject({ state: 'waiting', message: expect.stringMatching(/^no Workload yet/) });
  });

  it('a ClusterQueue: usage against nominal quota, per resource', () => {
    const queue = {
      apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'ClusterQueue', metadata: { name: 'cq' },
      spec: { resourceGroups: [{ flavors: [{ name: 'f', resources: [{ name: 'cpu', nominalQuota: '4' }, { name: 'tekton.dev/pipelineruns', nominalQuota: 2 }] }] }] },
      status: { pendingWorkloads: 3, admittedWorkloads: 2, flavorsUsage: [{ name: 'f', resources: [{ name: 'cpu', total: '200m' }] }] },
    };
    expect(clusterQueueStatus(queue)).toEqual({ name: 'cq', pending: 3, admitted: 2, resources: [{ name: 'cpu', used: '200m', quota: '4' }, { name: 'tekton.dev/pipelineruns', used: '0', quota: '2' }] });
  });

  it('prints a table of runs, one of ClusterQueues, then warnings', () => {
    const lines = formatStatus({
      runs: [{ namespace: 'ns', name: 'r', queue: 'q', state: 'waiting', position: { localQueue: 1, clusterQueue: 2 }, waitedSeconds: 75, message: 'why' }],
      clusterQueues: [{ name: 'cq', pending: 1, admitted: 0, resources: [{ name: 'cpu', used: '0', quota: '4' }] }],
      warnings: ['no queue positions'],
    });
    expect(lines).toEqual([
      'NAMESPACE  PIPELINERUN  QUEUE  PRIORITY  STATE    POSITION  WAITED  MESSAGE',
      'ns         r            q      -         waiting  1 (cq 2)  1m15s   why',
      '',
      'CLUSTERQUEUE  PENDING  ADMITTED  USAGE (used/quota)',
      'cq            1        0         cpu 0/4',
      'warning: no queue positions',
    ]);
    expect([formatSeconds(59), formatSeconds(3600 + 5 * 60 + 9), formatSeconds(undefined)]).toEqual(['59s', '1h05m', '-']);
  });
});

describe('doctor', () => {
  it('reads a version from an image tag or a release name', () => {
    expect(versionOf('ghcr.io/kyverno/kyverno:v1.19.0')).toEqual([1, 19, 0]);
    expect(versionOf('registry.k8s.io/kueue/kueue:v0.19.2@sha256')).toEqual([0, 19, 2]);
    expect(versionOf('v1.15.0')).toEqual([1, 15, 0]);
    expect(versionOf('devel')).toBeUndefined();
  });

  it("asks for the Kyverno release the bundle's newest policy needs: a GeneratingPolicy needs 1.19.1", () => {
    const policiesOf = (dialect: string) => {
      const dir = tempDir('doctor');
      const { status, stderr } = cli(['synth', '--config', exampleConfig('multi-team-ci.yaml', dialect), '--out', join(dir, 'dist')]);
      expect(status, stderr).toBe(0);
      return readBundle(join(dir, 'dist')).find((c) => c.name === 'policies')!;
    };
    expect(minimumVersions(policiesOf('clusterpolicy')).Kyverno).toEqual({ version: '1.19.0', why: 'the oldest the gate is tested with' });
    expect(minimumVersions(policiesOf('cel')).Kyverno).toEqual({ version: '1.19.1', why: 'the oldest GeneratingPolicy generate-localqueues works on' });
  });

  it('evaluates label selectors as Kubernetes does', () => {
    const labels = { 'kubernetes.io/metadata.name': 'ci', team: 'a' };
    expect(selects({ matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system'] }] }, labels)).toBe(true);
    expect(selects({ matchLabels: { team: 'b' } }, labels)).toBe(false);
    expect(selects({ matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] }, labels)).toBe(false);
    expect(selects({ matchExpressions: [{ key: 'gated', operator: 'Exists' }] }, labels)).toBe(false);
  });

  it('prints each finding, a problem with its fix, and the count', () => {
    expect(formatFindings([{ severity: 'ok', subject: 'rbac', message: 'fine' }, { severity: 'problem', subject: 'policies', message: 'gone', fix: 'apply' }])).toEqual([
      'ok       rbac: fine',
      'problem  policies: gone',
      '         fix: apply',
      '1 problem(s) found',
    ]);
  });
});

/** A kubeconfig of one context, `here`, whose API server nothing answers. */
function unreachableKubeconfig(): string {
  const kubeconfig = join(copyOfDist(), '..', 'kubeconfig');
  writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\ncontexts: [{name: here, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\ncurrent-context: here\n');
  return kubeconfig;
}

describe('CLI', () => {
  it('status -o with a format other than table or json exits 2, naming the formats', () => {
    const { status, stderr } = cli(['status', '-o', 'yaml']);
    expect(status).toBe(2);
    expect(stderr).toContain('-o yaml: give "table" or "json"');
  });

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

  it('status and doctor on a cluster that cannot be reached exit 1, naming the cause', () => {
    const kubeconfig = unreachableKubeconfig();
    const status = cli(['status', '--kubeconfig', kubeconfig]);
    expect(status.status).toBe(1);
    expect(status.stderr).toMatch(/^error: listing PipelineRuns: .*ECONNREFUSED/m);
    const doctor = cli(['doctor', '--kubeconfig', kubeconfig]);
    expect(doctor.status).toBe(1);
    expect(doctor.stdout).toMatch(/^problem +cluster: cannot be read: .*ECONNREFUSED/m);
  });

  it('a kubeconfig without the context asked for exits 1 for apply and 2 for diff', () => {
    const kubeconfig = unreachableKubeconfig();
    for (const [command, code] of [['apply', 1], ['diff', 2]] as const) {
      const { status, stderr } = cli([command, '--kubeconfig', kubeconfig, '--context', 'there']);
      expect(status, stderr).toBe(code);
      expect(stderr).toContain('--context there: no such context in the kubeconfig; its contexts: here');
    }
  });
});
