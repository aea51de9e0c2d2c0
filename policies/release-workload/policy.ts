import { type Config, mechanismsOf } from '../../src/config/config.js';
import type { GateStep, PolicyDefinition, SetConditionStep } from '../../src/gate/model.js';
import { PIPELINE_RUN } from '../../src/gate/names.js';
import { statusUpdatesOf, workloadOfRun } from '../triggers.js';

/**
 * Step 4 of the flow. When a gated PipelineRun finishes — success, failure, cancellation or
 * timeout all end with `Succeeded` True or False — mark its Workload `Finished=True`, so Kueue
 * frees the quota at once instead of when the run is deleted.
 */
export function releaseWorkload(config: Config): PolicyDefinition {
  const { customRun, pending } = mechanismsOf(config.strategy);
  const finished = {
    type: 'set-condition',
    when: { condition: 'Succeeded', statuses: ['True', 'False'] },
    set: {
      type: 'Finished',
      status: 'True',
      reasons: { True: 'Succeeded', False: 'Failed' },
      message: 'PipelineRun finished',
      at: 'trigger-completion',
      unlessTargetHas: ['True', 'False'],
    },
  } as const satisfies Partial<SetConditionStep>;
  const steps: GateStep[] = [];
  if (customRun) {
    steps.push({
      ...finished,
      rule: 'finish-customrun-workload',
      trigger: statusUpdatesOf(PIPELINE_RUN, config, 'customrun'),
      target: workloadOfRun('customrun'),
    });
  }
  if (pending) {
    steps.push({
      ...finished,
      rule: 'finish-pipelinerun-workload',
      trigger: statusUpdatesOf(PIPELINE_RUN, config, 'pending'),
      target: workloadOfRun('pending'),
    });
  }
  return {
    name: 'release-workload',
    title: 'Give the quota of a finished PipelineRun back to Kueue',
    description:
      'When a gated PipelineRun ends (Succeeded becomes True or False: success, failure, cancellation, timeout), adds ' +
      'Finished=True to the status of its Workload, so Kueue releases the quota at once.',
    // Fail open: a blocking webhook on pipelineruns/status would stall Tekton. A missed release is
    // re-applied when the policy is (re)applied and by Kyverno's background scan.
    failurePolicy: 'Ignore',
    steps,
  };
}
