import type { Config } from '../../src/config/config.js';
import type { GateStep, PolicyDefinition } from '../../src/gate/model.js';
import { DISPATCHED_RUN_PENDING, HELD_BY_GATE, MULTIKUEUE_CHECK, PENDING_STATUS, WORKLOAD } from '../../src/gate/names.js';
import { ADMITTED_STILL, runOfWorkload, statusUpdatesOf } from '../triggers.js';

/**
 * Step 3 of the flow, strategy pending: when Kueue admits the Workload of a pending run, clear the
 * run's `spec.status` — only if the gate made it pending and it still is. Its timeout starts now.
 * On a MultiKueue manager, a run Kueue dispatches says it is pending until then, as Tekton says of
 * the runs it manages.
 */
export function admitPipelineRun(config: Config): PolicyDefinition {
  const workloadStatus = statusUpdatesOf(WORKLOAD, config, 'pending');
  const steps: GateStep[] = [
    {
      type: 'set-run-status',
      rule: 'release-pending-run',
      trigger: workloadStatus,
      when: ADMITTED_STILL,
      target: runOfWorkload('pending', { from: 'owner' }),
      change: { type: 'release', pendingStatus: PENDING_STATUS, heldBy: HELD_BY_GATE },
    },
  ];
  const manager = config.multiKueue?.role === 'manager';
  if (manager) {
    // On the Workload's status updates: Kueue writes them once the run is stored (an event on the
    // run's creation finds no run yet as often as not), and nothing else writes the run's.
    steps.push({
      type: 'set-condition',
      rule: 'show-dispatched-run-pending',
      trigger: { ...workloadStatus, admissionCheck: MULTIKUEUE_CHECK },
      when: { condition: 'QuotaReserved', statuses: ['True', 'False'], recheck: { unlessTrue: ['Admitted', 'Finished'] } },
      target: runOfWorkload('pending', { from: 'owner' }),
      set: {
        type: 'Succeeded',
        status: 'Unknown',
        reasons: { True: DISPATCHED_RUN_PENDING.reason, False: DISPATCHED_RUN_PENDING.reason },
        message: DISPATCHED_RUN_PENDING.message,
        at: { lastChangeOf: 'QuotaReserved' },
        // Once MultiKueue has copied the worker's status over it, that status is the run's.
        unlessTargetHas: ['True', 'False', 'Unknown'],
      },
    });
  }
  return {
    name: 'admit-pipelinerun',
    title: 'Release an admitted pending PipelineRun',
    description:
      `When Kueue sets Admitted=True on the Workload of a PipelineRun held pending by the gate, removes spec.status ${PENDING_STATUS} ` +
      `from that run, so Tekton starts it. Runs without the ${HELD_BY_GATE.key} annotation (created pending by their user) are never released. ` +
      'The Workload is read again first: one that Kueue evicted or that finished meanwhile releases nothing.' +
      (manager
        ? ` Until then, a run whose Workload waits for AdmissionCheck ${MULTIKUEUE_CHECK} (MultiKueue; Tekton leaves the run alone here) shows Succeeded=Unknown ${DISPATCHED_RUN_PENDING.reason}, until MultiKueue copies the worker's status over it.`
        : ''),
    // Fail open, as for every status step: re-applied by policy updates and background scans.
    failurePolicy: 'Ignore',
    steps,
  };
}
