import type { Config } from '../../src/config/config.js';
import type { PolicyDefinition } from '../../src/gate/model.js';
import { GATED_LABEL, WORKLOAD, WORKLOAD_STATUS_FIELDS } from '../../src/gate/names.js';
import { statusWritesOn } from '../../src/gate/status-writes.js';
import type { StatusKept } from '../../src/guard/model.js';

/** Name of the policy and its binding; its refusals start with it. */
export const WORKLOAD_STATUS_KEPT = 'tekton-kueue-policies-workload-status';

/**
 * Kueue's part of the status of the gate's Workloads, kept from the gate's writes: ready-workload,
 * release-workload and requeue-workload write conditions there, as Kueue admits, evicts and requeues.
 */
export function workloadStatusKept(config: Config, policies: readonly PolicyDefinition[]): StatusKept {
  return {
    name: WORKLOAD_STATUS_KEPT,
    kind: WORKLOAD,
    owner: 'Kueue',
    gate: config.trustedIdentities.gate,
    labelKeys: [GATED_LABEL],
    fields: WORKLOAD_STATUS_FIELDS,
    writes: statusWritesOn(WORKLOAD, policies),
  };
}
