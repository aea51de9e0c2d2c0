import { type Config, mechanismsOf } from '../../src/config/config.js';
import type { GateStep, PolicyDefinition } from '../../src/gate/model.js';
import { CUSTOM_RUN, GATE_TASK, GATED_LABEL, MAX_EXEC_TIME_LABEL, PIPELINE_RUN_LABEL, PIPELINE_TASK_LABEL, PIPELINERUN_RESOURCE, PRIORITY_LABEL, QUEUE_LABEL, WORKLOAD } from '../../src/gate/names.js';
import { sizingOf } from '../sizing.js';
import { creationOf, heldRun, waitingRunStatus, workloadOfRun } from '../triggers.js';

/**
 * Step 2 of the flow: create the Kueue Workload that stands for a gated run, owned by the gate's
 * CustomRun (customrun) or by the PipelineRun itself (pending), so deleting the run deletes it,
 * in the run's LocalQueue with the run's priority and requests.
 *
 * Kyverno makes it in the background, and gives up within milliseconds when it cannot find the
 * object that triggered it, which the API server may store only after a slower webhook has
 * answered. So the next status update of a run still waiting makes a Workload it lacks.
 */
export function generateWorkload(config: Config): PolicyDefinition {
  const { customRun, pending } = mechanismsOf(config.strategy);
  const sizing = { workload: WORKLOAD, ...sizingOf(config) };
  const steps: GateStep[] = [];
  if (customRun) {
    // Not app.kubernetes.io/managed-by: Kyverno overwrites that label on what it generates.
    const customRunStep = { type: 'generate-workload', customTask: WORKLOAD, labels: { [GATED_LABEL]: 'customrun' }, ...sizing } as const;
    steps.push(
      {
        ...customRunStep,
        rule: 'workload-for-customrun',
        trigger: creationOf(CUSTOM_RUN, config, { [PIPELINE_TASK_LABEL]: GATE_TASK }),
        runLabel: { key: PIPELINE_RUN_LABEL, from: 'trigger-label' },
      },
      {
        ...customRunStep,
        rule: 'missed-workload-for-customrun',
        trigger: waitingRunStatus(config, 'customrun'),
        owner: { kind: CUSTOM_RUN, name: workloadOfRun('customrun').name },
        runLabel: { key: PIPELINE_RUN_LABEL, from: 'trigger-name' },
      },
    );
  }
  if (pending) {
    const pendingStep = { type: 'generate-workload', labels: { [GATED_LABEL]: 'pending' }, runLabel: { key: PIPELINE_RUN_LABEL, from: 'trigger-name' }, ...sizing } as const;
    steps.push(
      { ...pendingStep, rule: 'workload-for-pipelinerun', trigger: heldRun(config) },
      { ...pendingStep, rule: 'missed-workload-for-pipelinerun', trigger: waitingRunStatus(config, 'pending') },
    );
  }
  return {
    name: 'generate-workload',
    title: 'Create the Kueue Workload of a gated PipelineRun',
    description:
      `Creates a kueue.x-k8s.io/v1beta2 Workload for each gated run${customRun ? ' (from its kueue-gate CustomRun, owned by it)' : ''}` +
      `${pending ? `${customRun ? ' or' : ''} (from a PipelineRun the gate holds pending, at creation or when its user releases it, owned by it)` : ''}; ` +
      'a Workload whose creation was missed is made at the next status update of its run, while the run still waits. ' +
      `Queue from the run's ${QUEUE_LABEL} label ` +
      `or the namespace's default LocalQueue; priority from ${PRIORITY_LABEL}; requests from ${config.requestAnnotationPrefix}<resource> ` +
      `annotations over the queue's defaults, plus ${PIPELINERUN_RESOURCE}: 1; maximum execution time from ${MAX_EXEC_TIME_LABEL}.`,
    // Fail closed: Tekton retries a CustomRun it could not create, while a gated run without a
    // Workload would wait forever. So Tekton's status updates of a waiting run are refused too while
    // Kyverno is down, and retried: nothing lost, for such a run waits for Kyverno anyway.
    failurePolicy: 'Fail',
    steps,
  };
}
