import type { Config } from '../../src/config/config.js';
import type { PolicyDefinition } from '../../src/gate/model.js';
import { GATE_TASK, PIPELINE_RUN } from '../../src/gate/names.js';
import { mechanismsIn, statusUpdatesOf, workloadOfRun } from '../triggers.js';

/**
 * Step 4 of the flow: once a gated PipelineRun has started — Tekton made a TaskRun or CustomRun
 * for one of its own tasks — tell Kueue its Workload is running (`PodsReady=True`). The gate's
 * Workloads have no pods, so without this Kueue's WaitForPodsReady (on by default since 0.19)
 * evicts every run still going when its timeout passes.
 */
export function readyWorkload(config: Config): PolicyDefinition {
  return {
    name: 'ready-workload',
    title: 'Tell Kueue that a gated PipelineRun has started',
    description:
      'When a gated PipelineRun has a child for one of its own tasks (not the kueue-gate CustomRun), sets PodsReady=True ' +
      "on its Workload, so Kueue's WaitForPodsReady timeout does not evict a run that is running.",
    // Fail open, as for every status step: re-applied by policy updates and background scans.
    failurePolicy: 'Ignore',
    steps: mechanismsIn(config).map((mechanism) => ({
      type: 'set-condition',
      rule: `ready-${mechanism}-workload`,
      trigger: statusUpdatesOf(PIPELINE_RUN, config, mechanism),
      when: { started: { gateTask: GATE_TASK } },
      target: workloadOfRun(mechanism),
      set: {
        type: 'PodsReady',
        status: 'True',
        reasons: { True: 'Started' },
        message: 'The PipelineRun started its first task',
        // The run's Succeeded condition changes as Tekton starts the task.
        at: { lastChangeOf: 'Succeeded' },
        unlessTargetHas: ['True'],
      },
    })),
  };
}
