import type { Config } from '../../src/config/config.js';
import type { PolicyDefinition } from '../../src/gate/model.js';
import { HELD_BY_GATE, PENDING_STATUS, PIPELINE_RUN, WORKLOAD } from '../../src/gate/names.js';
import { ADMITTED_STILL, statusUpdatesOf } from '../triggers.js';

/**
 * Step 3 of the flow, strategy pending: when Kueue admits the Workload of a pending run, clear the
 * run's `spec.status` — only if the gate made it pending and it still is. Its timeout starts now.
 */
export function admitPipelineRun(config: Config): PolicyDefinition {
  return {
    name: 'admit-pipelinerun',
    title: 'Release an admitted pending PipelineRun',
    description:
      `When Kueue sets Admitted=True on the Workload of a PipelineRun held pending by the gate, removes spec.status ${PENDING_STATUS} ` +
      `from that run, so Tekton starts it. Runs without the ${HELD_BY_GATE.key} annotation (created pending by their user) are never released. ` +
      'The Workload is read again first: one that Kueue evicted or that finished meanwhile releases nothing.',
    // Fail open, as for every status step: re-applied by policy updates and background scans.
    failurePolicy: 'Ignore',
    steps: [
      {
        type: 'set-run-status',
        rule: 'release-pending-run',
        trigger: statusUpdatesOf(WORKLOAD, config, 'pending'),
        when: ADMITTED_STILL,
        target: { kind: PIPELINE_RUN, name: { from: 'owner' } },
        change: { type: 'release', pendingStatus: PENDING_STATUS, heldBy: HELD_BY_GATE },
      },
    ],
  };
}
