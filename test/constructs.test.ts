/** The constructs of src/constructs on their own: what they emit and the input they refuse. */
import { Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { GatePolicy } from '../src/constructs/gate-policy.js';
import { OptOutRole } from '../src/constructs/opt-out-role.js';
import { PipelineQueues } from '../src/constructs/pipeline-queues.js';
import { StatusKept } from '../src/constructs/status-kept.js';
import { TenantGuard } from '../src/constructs/tenant-guard.js';
import { gatePolicies } from '../policies/bundle.js';
import { workloadStatusKept } from '../policies/workload-status-kept/policy.js';
import { tenantGuard } from '../policies/tenant-guard/policy.js';
import { mutatePipelineRun } from '../policies/mutate-pipelinerun/policy.js';
import { defaultConfig } from './helpers.js';

const permission = { group: 'tekton-kueue-policies.dev', resource: 'pipelineruns', verb: 'opt-out' };

describe('TenantGuard', () => {
  it('emits a ValidatingAdmissionPolicy and a binding for each kind of request it guards', () => {
    const chart = Testing.chart();
    new TenantGuard(chart, 'guard', { guard: tenantGuard(defaultConfig()), labels: { team: 'platform' } });
    const objects = Testing.synth(chart) as { kind: string; metadata: { labels: Record<string, string> } }[];
    expect(objects.map((o) => o.kind)).toEqual(Array.from({ length: 3 }, () => ['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']).flat());
    for (const o of objects) expect(o.metadata.labels).toEqual({ team: 'platform' });
  });

  it('refuses a name Kubernetes would refuse, and a guard that trusts nobody to release runs', () => {
    const guard = tenantGuard(defaultConfig());
    expect(() => new TenantGuard(Testing.chart(), 'g', { guard: { ...guard, name: 'Guard_1' } })).toThrow(/"Guard_1" is not a valid Kubernetes name/);
    expect(() => new TenantGuard(Testing.chart(), 'g', { guard: { ...guard, identities: { ...guard.identities, gate: [] } } })).toThrow(/trust at least one identity for the gate/);
  });
});

describe('StatusKept', () => {
  const kept = workloadStatusKept(defaultConfig(), gatePolicies(defaultConfig()));

  it('lets the gate write the conditions its steps set, and give back an evicted Workload\'s reservation', () => {
    expect(kept.writes).toEqual({
      conditions: ['Finished', 'PodsReady'],
      inState: [{ condition: 'Evicted', statuses: ['True'], conditions: ['QuotaReserved', 'Admitted', 'Requeued'], removes: ['admission'] }],
    });
  });

  it('checks the gate\'s writes of the status of the gate\'s objects, refusing with one message', () => {
    const chart = Testing.chart();
    new StatusKept(chart, 'kept', { kept, labels: { team: 'platform' } });
    const [policy, binding] = Testing.synth(chart) as any[];
    expect([policy.kind, binding.kind]).toEqual(['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
    expect(policy.spec.matchConstraints.resourceRules).toEqual([{ apiGroups: ['kueue.x-k8s.io'], apiVersions: ['v1beta2'], operations: ['UPDATE'], resources: ['workloads/status'] }]);
    expect(policy.spec.matchConditions).toEqual([{ name: 'the-gate', expression: 'request.userInfo.username in ["system:serviceaccount:kyverno:kyverno-background-controller"]' }]);
    expect(policy.spec.validations).toHaveLength(1);
    expect(binding.spec.matchResources).toEqual({ objectSelector: { matchExpressions: [{ key: 'tekton-kueue-policies.dev/gate', operator: 'Exists' }] } });
    expect(binding.metadata.labels).toEqual({ team: 'platform' });
  });

  it('refuses a check of nobody\'s writes, or of every object of the kind', () => {
    expect(() => new StatusKept(Testing.chart(), 'k', { kept: { ...kept, gate: [] } })).toThrow(/name at least one identity of the gate/);
    expect(() => new StatusKept(Testing.chart(), 'k', { kept: { ...kept, labelKeys: [] } })).toThrow(/or the policy would check every Workload/);
  });
});

describe('OptOutRole', () => {
  it('grants the verb and nothing else, bound to nobody unless subjects are given', () => {
    const chart = Testing.chart();
    new OptOutRole(chart, 'opt-out', { permission, name: 'opt-out' });
    const objects = Testing.synth(chart) as { kind: string; rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }[];
    expect(objects.map((o) => o.kind)).toEqual(['ClusterRole']);
    expect(objects[0]!.rules).toEqual([{ apiGroups: ['tekton-kueue-policies.dev'], resourceNames: [], resources: ['pipelineruns'], verbs: ['opt-out'] }]);
  });

  it('binds users, groups and service accounts', () => {
    const chart = Testing.chart();
    new OptOutRole(chart, 'opt-out', { permission, name: 'opt-out', subjects: [{ kind: 'User', name: 'alice' }, { kind: 'ServiceAccount', name: 'bot', namespace: 'ci' }] });
    const binding = (Testing.synth(chart) as { kind: string; subjects?: unknown[] }[]).find((o) => o.kind === 'ClusterRoleBinding')!;
    expect(binding.subjects).toEqual([
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'alice' },
      { apiGroup: '', kind: 'ServiceAccount', name: 'bot', namespace: 'ci' },
    ]);
  });
});

describe('GatePolicy', () => {
  it('refuses a policy name Kubernetes would refuse', () => {
    expect(() => new GatePolicy(Testing.chart(), 'p', { definition: { ...mutatePipelineRun(defaultConfig()), name: 'Mutate' } })).toThrow(/"Mutate" is not a valid Kubernetes name/);
  });
});

describe('PipelineQueues', () => {
  it('puts ClusterQueues in their cohort with its limits and preemption, and leaves the others alone', () => {
    const chart = Testing.chart();
    const quota = { cpu: '4', 'tekton.dev/pipelineruns': '2' };
    new PipelineQueues(chart, 'queues', {
      clusterQueues: [
        {
          name: 'a',
          quota,
          defaultRequests: {},
          preemption: 'Never',
          queueingStrategy: 'StrictFIFO',
          fairSharingWeight: '2',
          cohort: { name: 'ci', lendingLimit: { 'tekton.dev/pipelineruns': '1' }, borrowingLimit: { cpu: '2' }, reclaimWithinCohort: 'Any', borrowWithinCohort: 'LowerPriority' },
        },
        { name: 'b', quota, defaultRequests: {}, preemption: 'LowerPriority', queueingStrategy: 'BestEffortFIFO' },
      ],
      namespaces: [{ name: 'ns', queues: [{ name: 'a', clusterQueue: 'a' }, { name: 'b', clusterQueue: 'b' }], defaultQueue: 'a' }],
    });
    const [a, b] = (Testing.synth(chart) as { kind: string; spec: Record<string, any> }[]).filter((o) => o.kind === 'ClusterQueue');
    expect(a!.spec).toMatchObject({
      cohortName: 'ci',
      fairSharing: { weight: '2' },
      queueingStrategy: 'StrictFIFO',
      preemption: { withinClusterQueue: 'Never', reclaimWithinCohort: 'Any', borrowWithinCohort: { policy: 'LowerPriority' } },
    });
    expect(a!.spec.resourceGroups[0].flavors[0].resources).toEqual([
      { name: 'cpu', nominalQuota: '4', borrowingLimit: '2' },
      { name: 'tekton.dev/pipelineruns', nominalQuota: '2', lendingLimit: '1' },
    ]);
    expect(b!.spec.cohortName).toBeUndefined();
    expect(b!.spec.fairSharing).toBeUndefined();
    expect(b!.spec.preemption).toEqual({ withinClusterQueue: 'LowerPriority' });
    expect(b!.spec.resourceGroups[0].flavors[0].resources).toEqual([
      { name: 'cpu', nominalQuota: '4' },
      { name: 'tekton.dev/pipelineruns', nominalQuota: '2' },
    ]);
  });
});
