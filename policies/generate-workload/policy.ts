import type { Config } from '../../src/config/config.js';
import type { PolicyDefinition } from '../../src/gate/model.js';
import {
  CUSTOM_RUN, GATE_TASK, GATED_LABEL, PIPELINE_RUN_LABEL, PIPELINE_TASK_LABEL, PIPELINERUN_RESOURCE, PRIORITY_LABEL, QUEUE_LABEL, WORKLOAD,
} from '../../src/gate/names.js';

/**
 * Step 2 of the flow. When Tekton creates the gate's CustomRun, create a Kueue Workload of the same
 * name, owned by the CustomRun (so deleting the PipelineRun deletes it), in the run's LocalQueue
 * with the run's priority and requests.
 */
export function generateWorkload(config: Config): PolicyDefinition {
  const defaultsOf = new Map(config.clusterQueues.map((cq) => [cq.name, cq.defaultRequests]));
  const defaultPriority = config.defaultPriority;
  return {
    name: 'generate-workload',
    title: 'Create the Kueue Workload of a gated PipelineRun',
    description:
      `Creates a kueue.x-k8s.io/v1beta2 Workload for each kueue-gate CustomRun, owned by it. Queue from the run's ${QUEUE_LABEL} label ` +
      `or the namespace's default LocalQueue; priority from ${PRIORITY_LABEL}; requests from ${config.requestAnnotationPrefix}<resource> ` +
      `annotations over the queue's defaults, plus ${PIPELINERUN_RESOURCE}: 1.`,
    // Fail closed: Tekton retries a CustomRun it could not create, while a CustomRun without a
    // Workload would wait forever.
    failurePolicy: 'Fail',
    step: {
      type: 'generate-workload',
      trigger: { kind: CUSTOM_RUN, operations: ['CREATE'], namespaces: config.namespaces.map((ns) => ns.name) },
      triggerLabels: { [PIPELINE_TASK_LABEL]: GATE_TASK },
      customTask: WORKLOAD,
      workload: WORKLOAD,
      // Not app.kubernetes.io/managed-by: Kyverno overwrites that label on what it generates.
      labels: { [GATED_LABEL]: config.strategy },
      copiedLabels: [PIPELINE_RUN_LABEL],
      queue: {
        label: QUEUE_LABEL,
        defaults: config.namespaces.map((ns) => ({ namespace: ns.name, queue: ns.defaultQueue })),
      },
      priority: {
        label: PRIORITY_LABEL,
        classes: config.priorities.map((p) => ({ name: p.name, value: p.value })),
        ...(defaultPriority ? { default: defaultPriority } : {}),
      },
      requests: {
        annotationPrefix: config.requestAnnotationPrefix,
        defaults: config.namespaces.flatMap((ns) =>
          ns.queues.map((q) => ({ namespace: ns.name, queue: q.name, value: defaultsOf.get(q.clusterQueue)! })),
        ),
        fallback: config.fallbackRequests,
        fixed: { [PIPELINERUN_RESOURCE]: '1' },
      },
    },
  };
}
