import type { Config } from '../../src/config/config.js';
import type { PolicyDefinition } from '../../src/gate/model.js';
import { LOCAL_QUEUE, MAX_EXEC_TIME_LABEL, PRIORITY_LABEL, QUEUE_LABEL, CLUSTER_QUEUE } from '../../src/gate/names.js';
import { sizingOf } from '../sizing.js';
import { runCreation } from '../triggers.js';

/**
 * Step 1 of the flow, after the run is held back: refuse at creation a run the gate could not
 * queue — it would wait forever — saying which label or annotation is wrong, its value and what
 * would do. A priority class the bundle does not know only warns: the run gets the default class.
 */
export function validatePipelineRun(config: Config): PolicyDefinition {
  return {
    name: 'validate-pipelinerun',
    title: 'Refuse a PipelineRun the gate could not queue',
    description:
      `Refuses at creation a PipelineRun whose ${QUEUE_LABEL} names no LocalQueue of its namespace, whose ${config.requestAnnotationPrefix}<resource> ` +
      `annotations are not quantities or ask for a resource the queue's ClusterQueue does not cover, or whose ${MAX_EXEC_TIME_LABEL} is not a ` +
      `number of seconds; warns when ${PRIORITY_LABEL} names a class the bundle does not have.`,
    // Fail closed, as the creation of a run is.
    failurePolicy: 'Fail',
    steps: [
      {
        type: 'validate-run',
        rule: 'validate-run',
        trigger: runCreation(config),
        localQueue: LOCAL_QUEUE,
        clusterQueue: CLUSTER_QUEUE,
        rules: {
          knownQueue: 'known-queue',
          requestQuantities: 'request-quantities',
          coveredRequests: 'covered-requests',
          maxExecutionTime: 'max-execution-time',
          knownPriority: 'known-priority',
        },
        ...sizingOf(config),
      },
    ],
  };
}
