import type { Config } from '../../src/config/config.js';
import type { PolicyDefinition } from '../../src/gate/model.js';
import { CUSTOM_RUN, GATE_TASK, PIPELINE_TASK_LABEL, WORKLOAD } from '../../src/gate/names.js';
import { ADMITTED_STILL, statusUpdatesOf } from '../triggers.js';

/**
 * Step 3 of the flow, strategy customrun: when Kueue admits a gate Workload (`Admitted=True`),
 * mark the CustomRun that owns it `Succeeded=True`: Tekton then starts the run's real tasks.
 */
export function admitCustomRun(config: Config): PolicyDefinition {
  return {
    name: 'admit-customrun',
    title: 'Open the gate of an admitted PipelineRun',
    description:
      'When Kueue sets Admitted=True on a Workload created for a kueue-gate CustomRun, sets Succeeded=True on the status of ' +
      'that CustomRun, so Tekton starts the tasks that run after the gate. The Workload is read again first: one that Kueue ' +
      'evicted or that finished meanwhile does not open the gate.',
    // Fail open: a webhook on workloads/status that blocks would stall Kueue itself. A missed
    // update is re-applied when the policy is (re)applied and by Kyverno's background scan.
    failurePolicy: 'Ignore',
    steps: [
      {
        type: 'set-condition',
        rule: 'set-customrun-succeeded',
        trigger: statusUpdatesOf(WORKLOAD, config, 'customrun'),
        when: ADMITTED_STILL,
        // The Workload is named after its gate CustomRun, which Tekton labels with the gate's task.
        target: { kind: CUSTOM_RUN, name: { from: 'owner' }, fromTarget: { triggerName: { from: 'self' }, labels: { [PIPELINE_TASK_LABEL]: GATE_TASK } } },
        set: {
          type: 'Succeeded',
          status: 'True',
          reasons: { True: 'Admitted' },
          message: 'Admitted by Kueue',
          at: { lastChangeOf: 'Admitted' },
          // A gate CustomRun that failed (timed out, cancelled) stays failed.
          unlessTargetHas: ['True', 'False'],
        },
      },
    ],
  };
}
