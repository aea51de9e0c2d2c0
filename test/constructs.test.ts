/** The constructs of src/constructs on their own: what they emit and the input they refuse. */
import { Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { GatePolicy } from '../src/constructs/gate-policy.js';
import { OptOutRole } from '../src/constructs/opt-out-role.js';
import { TenantGuard } from '../src/constructs/tenant-guard.js';
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
