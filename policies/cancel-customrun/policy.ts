import type { Config } from '../../src/config/config.js';
import type { PolicyDefinition } from '../../src/gate/model.js';
import { CUSTOM_RUN, GATE_TASK, PIPELINE_TASK_LABEL } from '../../src/gate/names.js';
import { creationOf } from '../triggers.js';

/** Tekton's `spec.status` of a CustomRun it asks to stop (on cancellation or timeout of its run). */
const CANCEL_STATUS = 'RunCancelled';

/**
 * Strategy customrun, a run cancelled while it waits: Tekton asks the gate CustomRun to stop and,
 * for CancelledRunFinally, waits for it to end, which is a custom task controller's work. The gate
 * ends it (`Succeeded=False`), so the run ends, and its finally tasks, which run only after a gate
 * that succeeded, do not run.
 */
export function cancelCustomRun(config: Config): PolicyDefinition {
  return {
    name: 'cancel-customrun',
    title: 'Close the gate of a PipelineRun cancelled while it waits',
    description:
      `When Tekton sets spec.status ${CANCEL_STATUS} on a kueue-gate CustomRun that has not succeeded (its PipelineRun was cancelled or timed out ` +
      'while it waited in the queue), sets Succeeded=False on it, as a custom task controller would, so the run ends without running its finally tasks.',
    // Fail open, as for every status step: re-applied by policy updates and background scans.
    failurePolicy: 'Ignore',
    steps: [
      {
        type: 'set-condition',
        rule: 'close-cancelled-gate',
        // Tekton patches spec.status of the CustomRun itself, not its status.
        trigger: { ...creationOf(CUSTOM_RUN, config, { [PIPELINE_TASK_LABEL]: GATE_TASK }), operations: ['UPDATE'] },
        when: { specStatus: CANCEL_STATUS },
        target: { kind: CUSTOM_RUN, name: { from: 'self' } },
        set: {
          type: 'Succeeded',
          status: 'False',
          reasons: { False: 'CustomRunCancelled' },
          message: 'Cancelled while waiting in the Kueue queue',
          // A CustomRun records no time for its cancellation.
          at: 'now',
          unlessTargetHas: ['True', 'False'],
        },
      },
    ],
  };
}
