import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { Ajv } from 'ajv';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { configSchema } from '../src/config/schema.js';
import { cli, copyOfDist, defaultConfigObject, readTree, tempDir } from './helpers.js';

function problem(change: (c: Record<string, any>) => void): ConfigError {
  const config = defaultConfigObject();
  change(config);
  try {
    parseConfig(config, 'my.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('the config was accepted');
}

const tenants = { namespaceSelector: { matchLabels: { 'ci.example.com/tenant': 'true' } }, queues: [{ name: 'pipelines', clusterQueue: 'pipelines' }] };
/** A worker cluster of a MultiKueue manager. */
const worker = { name: 'worker-1', kubeconfigSecret: 'worker-1-kubeconfig' };

describe('config', () => {
  it('has a schema that is valid JSON Schema', () => {
    const ajv = new Ajv({ strict: true });
    expect(ajv.validateSchema(configSchema), JSON.stringify(ajv.errors)).toBe(true);
    expect(() => ajv.compile(configSchema)).not.toThrow();
  });

  it('applies defaults', () => {
    const config = parseConfig({ clusterQueues: [{ name: 'cq', quota: { cpu: 4, memory: '8Gi', 'tekton.dev/pipelineruns': 3 } }], namespaces: [{ name: 'ns', queues: [{ name: 'q', clusterQueue: 'cq' }] }] }, 'c.yaml');
    expect(config.strategy).toBe('auto');
    expect(config.dialect).toBe('cel');
    expect(config.clusterQueues[0]!.preemption).toBe('Never');
    expect(config.requestAnnotationPrefix).toBe('kueue.konflux-ci.dev/requests-');
    expect(config.namespaces[0]!.defaultQueue).toBe('q');
    expect(config.clusterQueues[0]!.defaultRequests).toEqual({ cpu: '1', memory: '1Gi' });
    expect(config.clusterQueues[0]!.quota.cpu).toBe('4');
    expect(config.optOut).toEqual({ label: 'tekton-kueue-policies.dev/opt-out', subjects: [] });
    expect(config.trustedIdentities).toEqual({
      gate: ['system:serviceaccount:kyverno:kyverno-background-controller'],
      tekton: ['system:serviceaccount:tekton-pipelines:tekton-pipelines-controller'],
    });
  });

  it('reads routing rules and cohorts', () => {
    const config = parseConfig(
      {
        clusterQueues: [
          { name: 'a', cohort: 'ci', quota: { cpu: 4, 'tekton.dev/pipelineruns': 2 }, lendingLimit: { cpu: '1500m' }, borrowingLimit: { 'tekton.dev/pipelineruns': 1 }, reclaimWithinCohort: 'Any', fairSharing: { weight: 2 } },
          { name: 'b', quota: { cpu: 4, 'tekton.dev/pipelineruns': 2 }, queueingStrategy: 'StrictFIFO' },
        ],
        requests: { defaults: { cpu: '1' } },
        namespaces: [{ name: 'ns', queues: [{ name: 'q', clusterQueue: 'a' }, { name: 'r', clusterQueue: 'b' }] }],
        priorities: [{ name: 'low', value: 1 }],
        rules: [{ name: 'pr', match: { labels: { event: 'pull_request' }, annotations: { tier: ['1', '2'] }, pipelineRef: { resolver: 'git' } }, set: { queue: 'r', priorityClass: 'low', requests: { cpu: 2 } } }],
      },
      'c.yaml',
    );
    expect(config.clusterQueues[0]).toMatchObject({
      queueingStrategy: 'BestEffortFIFO',
      fairSharingWeight: '2',
      cohort: { name: 'ci', lendingLimit: { cpu: '1500m' }, borrowingLimit: { 'tekton.dev/pipelineruns': '1' }, reclaimWithinCohort: 'Any', borrowWithinCohort: 'Never' },
    });
    expect(config.clusterQueues[1]).toMatchObject({ queueingStrategy: 'StrictFIFO' });
    expect(config.clusterQueues[1]!.cohort).toBeUndefined();
    expect(config.rules).toEqual([
      { name: 'pr', match: { labels: { event: ['pull_request'] }, annotations: { tier: ['1', '2'] }, pipelineRef: { resolver: 'git' } }, set: { queue: 'r', priorityClass: 'low', requests: { cpu: '2' } }, enforce: false },
    ]);
  });

  it('reads tenant namespaces, with their first queue as the default; a config may list no namespace then', () => {
    const config = parseConfig({ ...defaultConfigObject(), namespaces: undefined, rules: undefined, clusterQueues: [(defaultConfigObject() as any).clusterQueues[0]], tenantNamespaces: tenants }, 'c.yaml');
    expect(config.namespaces).toEqual([]);
    expect(config.tenants).toEqual({ labels: { 'ci.example.com/tenant': 'true' }, queues: [{ name: 'pipelines', clusterQueue: 'pipelines' }], defaultQueue: 'pipelines' });
  });

  it.each([
    ['unknown field', (c: any) => (c.namespace = []), '(top level)', 'unknown field "namespace"'],
    ['bad quantity', (c: any) => (c.clusterQueues[0].quota.cpu = 'lots'), 'clusterQueues[0].quota.cpu', 'not a resource quantity'],
    ['bad name', (c: any) => (c.namespaces[0].name = 'Team_A'), 'namespaces[0].name', 'not a valid name'],
    ['missing field', (c: any) => delete c.clusterQueues, '(top level)', 'missing required field "clusterQueues"'],
    ['no namespaces', (c: any) => delete c.namespaces, 'namespaces', 'no namespace is managed'],
    ['unknown ClusterQueue', (c: any) => (c.namespaces[1].queues[0].clusterQueue = 'nope'), 'namespaces[1].queues[0].clusterQueue', 'no ClusterQueue named "nope"'],
    ['quota without pipelineruns', (c: any) => delete c.clusterQueues[1].quota['tekton.dev/pipelineruns'], 'clusterQueues[1].quota', 'does not cover "tekton.dev/pipelineruns"'],
    ['quota without a default request', (c: any) => delete c.clusterQueues[0].quota.memory, 'clusterQueues[0].quota', 'does not cover "memory"'],
    ['default queue not in namespace', (c: any) => (c.namespaces[1].defaultQueue = 'releases'), 'namespaces[1].defaultQueue', 'not one of this namespace'],
    ['unknown default priority', (c: any) => (c.defaultPriority = 'urgent'), 'defaultPriority', 'no priority named "urgent"'],
    ['duplicate namespace', (c: any) => (c.namespaces[1].name = 'ci-team-a'), 'namespaces[1].name', 'listed twice'],
    ['unknown strategy', (c: any) => (c.strategy = 'magic'), 'strategy', 'must be one of'],
    ['unknown dialect', (c: any) => (c.dialect = 'rego'), 'dialect', 'must be one of'],
    ['opt-out for a service account without namespace', (c: any) => (c.optOut.subjects = [{ kind: 'ServiceAccount', name: 'bot' }]), 'optOut.subjects[0]', 'has no namespace'],
    ['opt-out for a group with a namespace', (c: any) => (c.optOut.subjects = [{ kind: 'Group', name: 'admins', namespace: 'ci-team-a' }]), 'optOut.subjects[0]', 'a Group has no namespace'],
    ['opt-out for an unknown kind of subject', (c: any) => (c.optOut.subjects = [{ kind: 'Robot', name: 'r2' }]), 'optOut.subjects[0].kind', 'must be one of'],
    ['a guard that trusts nobody', (c: any) => (c.trustedIdentities = { gate: [] }), 'trustedIdentities.gate', 'must NOT have fewer than 1 items'],
    ['unused ClusterQueue', (c: any) => c.clusterQueues.push({ name: 'spare', quota: { cpu: 1, memory: '1Gi', 'tekton.dev/pipelineruns': 1 } }), 'clusterQueues[2]', 'used by no namespace queue'],
    // Routing rules (the shipped config has three: pull-requests, pushes, releases).
    ['a rule that sets nothing', (c: any) => (c.rules[0].set = {}), 'rules[0].set', 'is empty'],
    ['a rule in a namespace the bundle does not manage', (c: any) => (c.rules[2].match.namespaces = ['ci-team-z']), 'rules[2].match.namespaces[0]', '"ci-team-z" is not a managed namespace'],
    ['a rule sending runs to a queue some of its namespaces lack', (c: any) => delete c.rules[2].match.namespaces, 'rules[2].set.queue', '"releases" is no queue of namespace ci-team-b'],
    ['a rule naming an unknown priority', (c: any) => (c.rules[1].set.priorityClass = 'urgent'), 'rules[1].set.priorityClass', 'no priority named "urgent"'],
    ['a rule asking for a resource its queue does not cover', (c: any) => (c.rules[2].set.requests.gpu = 1), 'rules[2].set.requests.gpu', 'not covered by ClusterQueue releases'],
    ['a rule asking for a resource with a domain', (c: any) => (c.rules[2].set.requests['nvidia.com/gpu'] = 1), 'rules[2].set.requests.nvidia.com/gpu', 'an annotation key holds one "/"'],
    ['a rule matching a wildcard', (c: any) => (c.rules[1].match.labels['pipelinesascode.tekton.dev/event-type'] = 'pu*'), 'rules[1].match.labels.pipelinesascode.tekton.dev/event-type', 'has a wildcard'],
    ['a rule matching an empty value', (c: any) => (c.rules[0].match.labels['pipelinesascode.tekton.dev/event-type'] = ['pull_request', '']), 'rules[0].match.labels.pipelinesascode.tekton.dev/event-type[1]', 'is empty'],
    ['a rule matching a number', (c: any) => (c.rules[1].match.annotations = { 'team.example/tier': 1 }), 'rules[1].match.annotations.team.example/tier', 'must be a string or a list of strings'],
    ['two rules of one name', (c: any) => (c.rules[1].name = 'pull-requests'), 'rules[1].name', 'listed twice'],
    // Tenant namespaces.
    ['a tenant selector with expressions', (c: any) => (c.tenantNamespaces = { ...tenants, namespaceSelector: { matchLabels: { t: 'x' }, matchExpressions: [] } }), 'tenantNamespaces.namespaceSelector', 'only matchLabels is supported'],
    ['an unquoted tenant label value', (c: any) => (c.tenantNamespaces = { ...tenants, namespaceSelector: { matchLabels: { 'ci.example.com/tenant': true } } }), 'tenantNamespaces.namespaceSelector.matchLabels.ci.example.com/tenant', 'must be a string'],
    ['a tenant label value that is none', (c: any) => (c.tenantNamespaces = { ...tenants, namespaceSelector: { matchLabels: { t: 'a b' } } }), 'tenantNamespaces.namespaceSelector.matchLabels.t', '"a b" is not a label value'],
    ['a tenant selector that selects all', (c: any) => (c.tenantNamespaces = { ...tenants, namespaceSelector: { matchLabels: {} } }), 'tenantNamespaces.namespaceSelector.matchLabels', 'would select every namespace'],
    ['a tenant selector without labels', (c: any) => (c.tenantNamespaces = { ...tenants, namespaceSelector: {} }), 'tenantNamespaces.namespaceSelector', 'missing required field "matchLabels"'],
    ['a tenant queue of an unknown ClusterQueue', (c: any) => (c.tenantNamespaces = { ...tenants, queues: [{ name: 'pipelines', clusterQueue: 'nope' }] }), 'tenantNamespaces.queues[0].clusterQueue', 'no ClusterQueue named "nope"'],
    ['a tenant default queue they lack', (c: any) => (c.tenantNamespaces = { ...tenants, defaultQueue: 'nightly' }), 'tenantNamespaces.defaultQueue', 'not one of the tenant queues'],
    ['a rule sending runs to a queue the tenants lack', (c: any) => (c.tenantNamespaces = tenants) && (c.rules[2].match = {}) && (c.namespaces[1].queues.push({ name: 'releases', clusterQueue: 'releases' })), 'rules[2].set.queue', '"releases" is no queue of the tenant namespaces'],
    // Cohorts.
    ['a borrowing limit outside a cohort', (c: any) => (c.clusterQueues[0].borrowingLimit = { cpu: 2 }), 'clusterQueues[0].borrowingLimit', 'in a cohort, and this one has none'],
    ['reclaiming outside a cohort', (c: any) => (c.clusterQueues[0].reclaimWithinCohort = 'Any'), 'clusterQueues[0].reclaimWithinCohort', 'in a cohort, and this one has none'],
    ['a limit on a resource without quota', (c: any) => Object.assign(c.clusterQueues[0], { cohort: 'ci', lendingLimit: { gpu: 1 } }), 'clusterQueues[0].lendingLimit.gpu', 'is no resource of the quota'],
    ['lending more than the quota', (c: any) => Object.assign(c.clusterQueues[0], { cohort: 'ci', lendingLimit: { memory: '17Gi' } }), 'clusterQueues[0].lendingLimit.memory', 'lends 17Gi, more than the quota of 16Gi'],
    ['preempting to borrow without reclaiming', (c: any) => Object.assign(c.clusterQueues[0], { cohort: 'ci', borrowWithinCohort: 'LowerPriority' }), 'clusterQueues[0].borrowWithinCohort', 'which Kueue refuses'],
    ['an unknown queueing strategy', (c: any) => (c.clusterQueues[0].queueingStrategy = 'LIFO'), 'clusterQueues[0].queueingStrategy', 'must be one of'],
    // MultiKueue.
    ['a MultiKueue role that is none', (c: any) => (c.multiKueue = { role: 'hub' }), 'multiKueue.role', 'must be one of'],
    ['a manager without workers', (c: any) => Object.assign(c, { strategy: 'pending', multiKueue: { role: 'manager' } }), 'multiKueue.workers', 'no worker to dispatch to'],
    ['a manager that gates with a gate task', (c: any) => (c.multiKueue = { role: 'manager', workers: [worker] }), 'strategy', 'a gate task would travel with the run'],
    ['a worker that gates only with a gate task', (c: any) => Object.assign(c, { strategy: 'customrun', multiKueue: { role: 'worker' } }), 'strategy', 'needs the steps of strategy pending'],
    ['a worker with workers', (c: any) => (c.multiKueue = { role: 'worker', workers: [worker] }), 'multiKueue.workers', 'is for a manager'],
    ['a dispatching ClusterQueue that does not exist', (c: any) => Object.assign(c, { strategy: 'pending', multiKueue: { role: 'manager', workers: [worker], clusterQueues: ['nope'] } }), 'multiKueue.clusterQueues[0]', 'no ClusterQueue named "nope"'],
    ['two workers of one name', (c: any) => Object.assign(c, { strategy: 'pending', multiKueue: { role: 'manager', workers: [worker, worker] } }), 'multiKueue.workers[1].name', 'listed twice'],
    ['a worker without its Secret', (c: any) => Object.assign(c, { strategy: 'pending', multiKueue: { role: 'manager', workers: [{ name: 'w1' }] } }), 'multiKueue.workers[0]', 'missing required field "kubeconfigSecret"'],
  ])('names file, field and fix: %s', (_, change, field, text) => {
    const err = problem(change);
    expect(err.file).toBe('my.yaml');
    expect(err.field).toBe(field === '(top level)' ? '' : field);
    expect(err.problem).toContain(text);
    expect(err.fix.length).toBeGreaterThan(5);
    expect(err.message).toContain(`my.yaml: ${field}`);
  });
});

describe('synth CLI on bad input', () => {
  it('exits 2, says what to fix and leaves the output folder untouched', () => {
    const dist = copyOfDist();
    const before = readTree(dist);
    const bad = join(tempDir('config'), 'bad.yaml');
    const config = defaultConfigObject() as any;
    config.clusterQueues[0].quota.cpu = 'lots';
    writeFileSync(bad, YAML.stringify(config));
    const run = cli(['synth', '--config', bad, '--out', dist]);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('bad.yaml: clusterQueues[0].quota.cpu: "lots" is not a resource quantity');
    expect(run.stderr).toContain('fix: write a quantity such as 2, 500m or 4Gi');
    expect(readTree(dist)).toEqual(before);
  });

  it('exits 2 on YAML syntax errors and missing files', () => {
    const bad = join(tempDir('config'), 'broken.yaml');
    writeFileSync(bad, 'namespaces: [\n');
    const broken = cli(['synth', '--config', bad, '--out', join(tempDir('out'), 'dist')]);
    expect(broken.status).toBe(2);
    expect(broken.stderr).toContain('broken.yaml: (top level): not valid YAML');
    const missing = cli(['synth', '--config', '/nonexistent/config.yaml']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('cannot read the file (ENOENT)');
  });

  it('exits 2 on unknown commands and options, 0 on --help', () => {
    expect(cli(['frobnicate']).status).toBe(2);
    expect(cli(['synth', '--bogus']).status).toBe(2);
    const help = cli(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('synth');
    expect(help.stdout).toContain('validate');
  });

  it('writes a full bundle to a new folder', () => {
    const out = join(tempDir('out'), 'dist');
    const run = cli(['synth', '--out', out]);
    expect(run.status, run.stderr).toBe(0);
    const written = readTree(out);
    expect([...written.keys()]).toContain('policies/mutate-pipelinerun.yaml');
    const again = cli(['synth', '--out', out]);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toContain(`is up to date (${written.size} files)`);
  });
});
