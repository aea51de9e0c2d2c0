import type { Config } from '../../src/config/config.js';
import type { PolicyDefinition } from '../../src/gate/model.js';
import { GATE_TASK, GATED_LABEL, PIPELINE_RUN, WORKLOAD } from '../../src/gate/names.js';

/**
 * Step 4 of the flow. When a gated PipelineRun finishes — success, failure, cancellation or
 * timeout all end with `Succeeded` True or False — mark its Workload `Finished=True`, so Kueue
 * frees the quota at once instead of when the run is deleted.
 */
export function releaseWorkload(config: Config): PolicyDefinition {
  return {
    name: 'release-workload',
    title: 'Give the quota of a finished PipelineRun back to Kueue',
    description:
      'When a gated PipelineRun ends (Succeeded becomes True or False: success, failure, cancellation, timeout), adds ' +
      'Finished=True to the status of its Workload, named in the run status childReferences, so Kueue releases the quota.',
    // Fail open: a blocking webhook on pipelineruns/status would stall Tekton. A missed release is
    // re-applied when the policy is (re)applied and by Kyverno's background scan.
    failurePolicy: 'Ignore',
    step: {
      type: 'set-condition',
      trigger: { kind: PIPELINE_RUN, subresource: 'status', operations: ['UPDATE'], namespaces: config.namespaces.map((ns) => ns.name) },
      triggerLabels: { [GATED_LABEL]: config.strategy },
      when: { condition: 'Succeeded', statuses: ['True', 'False'] },
      // The Workload is named after the CustomRun, whose name Tekton may have shortened: read it.
      target: { kind: WORKLOAD, name: { from: 'child', pipelineTask: GATE_TASK } },
      set: {
        type: 'Finished',
        status: 'True',
        reasons: { True: 'Succeeded', False: 'Failed' },
        message: 'PipelineRun finished',
        mode: 'append',
      },
    },
  };
}
