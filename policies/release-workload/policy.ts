import { type Config, mechanismsOf } from '../../src/config/config.js';
import type { GateStep, PolicyDefinition, SetConditionStep } from '../../src/gate/model.js';
import { PIPELINE_RUN, PIPELINE_RUN_LABEL, WORKLOAD } from '../../src/gate/names.js';
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
  // Seen from the Workload: one that holds quota for a run that has ended. Tekton may end a run
  // cancelled as Kueue admits it with no child recorded (the step above then finds no Workload), and
  // a Workload may be made after its run ended; Kyverno's re-apply also looks at the Workloads that
  // hold quota only, not at every run that ever ended.
  const ofEndedRun = (mechanism: 'customrun' | 'pending') =>
    ({
      ...finished,
      rule: `finish-${mechanism === 'customrun' ? 'customrun' : 'pipelinerun'}-workload-of-ended-run`,
      trigger: statusUpdatesOf(WORKLOAD, config, mechanism),
      when: { condition: 'QuotaReserved', statuses: ['True'] },
      target: { kind: WORKLOAD, name: { from: 'self' } },
      read: { kind: PIPELINE_RUN, name: { from: 'label', key: PIPELINE_RUN_LABEL }, condition: 'Succeeded', statuses: ['True', 'False'] },
      set: { ...finished.set, at: 'read-completion' },
    }) as const satisfies SetConditionStep;
  const steps: GateStep[] = [];
  if (customRun) {
    steps.push({
      ...finished,
      // On the run's end, at once; Kyverno's re-apply leaves the history of ended runs alone and
      // looks at the Workloads that hold quota (below).
      reapplied: false,
      rule: 'finish-customrun-workload',
      trigger: statusUpdatesOf(PIPELINE_RUN, config, 'customrun'),
      target: workloadOfRun('customrun'),
    });
    steps.push(ofEndedRun('customrun'));
  }
  if (pending) {
    steps.push({
      ...finished,
      reapplied: false,
      rule: 'finish-pipelinerun-workload',
      trigger: statusUpdatesOf(PIPELINE_RUN, config, 'pending'),
      target: workloadOfRun('pending'),
    });
    steps.push(ofEndedRun('pending'));
  }
  return {
    name: 'release-workload',
    title: 'Give the quota of a finished PipelineRun back to Kueue',
    description:
      'When a gated PipelineRun ends (Succeeded becomes True or False: success, failure, cancellation, timeout), adds ' +
      'Finished=True to the status of its Workload, so Kueue releases the quota at once; also seen from a Workload that ' +
      'holds quota for a run that has ended.',
    // Fail open: a blocking webhook on pipelineruns/status or workloads/status would stall Tekton
    // or Kueue. A missed release is made by Kyverno's periodic re-apply.
    failurePolicy: 'Ignore',
    steps,
  };
}
