/**
 * The policy languages of Kyverno the gate can be written in. A dialect renders each policy of the
 * gate (`PolicyDefinition`) as the object Kyverno runs; the steps, their rule names and RBAC stay
 * the model's, so both dialects gate the same runs the same way.
 */
import type { ClusterPolicySpec } from '../../imports/kyverno-kyverno.io.js';
import type { MutatingPolicySpec } from '../../imports/kyverno-policies.kyverno.io.js';
import type { DialectName } from '../config/config.js';
import type { PolicyDefinition } from '../gate/model.js';
import { renderMutatingPolicySpec, rendersAsMutatingPolicy } from './cel-policy-dialect.js';
import { renderClusterPolicySpec } from './cluster-policy-dialect.js';

/** One policy of the gate as Kyverno runs it. */
export type RenderedPolicy =
  | { readonly kind: 'ClusterPolicy'; readonly spec: ClusterPolicySpec }
  | { readonly kind: 'MutatingPolicy'; readonly spec: MutatingPolicySpec };

/** Renders a policy of the gate in one of Kyverno's policy languages. */
export type Dialect = (definition: PolicyDefinition) => RenderedPolicy;

const clusterPolicy: Dialect = (definition) => ({ kind: 'ClusterPolicy', spec: renderClusterPolicySpec(definition) });

/**
 * `policies.kyverno.io/v1`. The steps at a run's admission (mutate-pipelinerun) are a
 * MutatingPolicy; the policies of steps it does not render yet stay ClusterPolicies.
 */
const cel: Dialect = (definition) => (rendersAsMutatingPolicy(definition) ? { kind: 'MutatingPolicy', spec: renderMutatingPolicySpec(definition) } : clusterPolicy(definition));

export const DIALECTS: Readonly<Record<DialectName, Dialect>> = { clusterpolicy: clusterPolicy, cel };
