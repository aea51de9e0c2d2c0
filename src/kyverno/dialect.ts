/**
 * The policy languages of Kyverno the gate can be written in. A dialect renders each policy of the
 * gate (`PolicyDefinition`) as the objects Kyverno runs; the steps, their rule names and RBAC stay
 * the model's, so both dialects gate the same runs the same way.
 */
import type { ClusterPolicySpec } from '../../imports/kyverno-kyverno.io.js';
import type { DialectName } from '../config/config.js';
import type { PolicyDefinition } from '../gate/model.js';
import { type CelPolicy, renderCelPolicies } from './cel-policy-dialect.js';
import { renderClusterPolicySpec } from './cluster-policy-dialect.js';

/** A Kyverno policy of the gate, by name. */
export type RenderedPolicy = { readonly name: string; readonly kind: 'ClusterPolicy'; readonly spec: ClusterPolicySpec } | CelPolicy;

/** Renders a policy of the gate in one of Kyverno's policy languages. */
export type Dialect = (definition: PolicyDefinition) => RenderedPolicy[];

const clusterPolicy: Dialect = (definition) => [{ name: definition.name, kind: 'ClusterPolicy', spec: renderClusterPolicySpec(definition) }];

/**
 * `policies.kyverno.io/v1`. The steps at a run's admission are a MutatingPolicy and
 * ValidatingPolicies, the status steps MutatingPolicies, the Workloads and the tenant queues
 * GeneratingPolicies.
 */
const cel: Dialect = renderCelPolicies;

export const DIALECTS: Readonly<Record<DialectName, Dialect>> = { clusterpolicy: clusterPolicy, cel };
