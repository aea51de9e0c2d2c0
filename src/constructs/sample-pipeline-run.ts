import { Construct } from 'constructs';
import { PipelineRun } from '../../imports/tekton-tekton.dev.js';
import type { ResourceList } from '../config/config.js';
import { PRIORITY_LABEL, QUEUE_LABEL } from '../gate/names.js';

/** Props of {@link SamplePipelineRun}. */
export interface SamplePipelineRunProps {
  readonly name: string;
  readonly namespace: string;
  /**
   * LocalQueue to wait in (`kueue.x-k8s.io/queue-name` label).
   * @default - the namespace's default queue
   */
  readonly queue?: string;
  /**
   * WorkloadPriorityClass (`kueue.x-k8s.io/priority-class` label).
   * @default - the configured default priority
   */
  readonly priority?: string;
  /**
   * Requests, written as `<annotationPrefix><resource>` annotations.
   * @default - the queue's default requests
   */
  readonly requests?: ResourceList;
  /**
   * Annotation prefix of requests; required with `requests`.
   * @default - none
   */
  readonly annotationPrefix?: string;
  /**
   * How long each task sleeps, so queueing is visible.
   * @default 20
   */
  readonly sleepSeconds?: number;
  /**
   * Labels added to the run.
   * @default - none
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * An inline-spec PipelineRun (two dependent tasks and a finally task) that the gate will queue.
 * Steps carry an explicit `script`, so they run with any image entrypoint.
 */
export class SamplePipelineRun extends Construct {
  readonly run: PipelineRun;

  constructor(scope: Construct, id: string, props: SamplePipelineRunProps) {
    super(scope, id);
    if (props.requests && !props.annotationPrefix) {
      throw new Error(`SamplePipelineRun ${props.name}: requests need annotationPrefix to be written as annotations`);
    }
    const sleep = props.sleepSeconds ?? 20;
    const step = (what: string) => ({
      name: what,
      image: 'docker.io/library/busybox:1.36',
      script: `#!/bin/sh\necho "${what} of $(context.pipelineRun.name)"\nsleep ${sleep}\n`,
    });
    this.run = new PipelineRun(this, 'Resource', {
      metadata: {
        name: props.name,
        namespace: props.namespace,
        labels: {
          ...props.labels,
          ...(props.queue ? { [QUEUE_LABEL]: props.queue } : {}),
          ...(props.priority ? { [PRIORITY_LABEL]: props.priority } : {}),
        },
        annotations: Object.fromEntries(Object.entries(props.requests ?? {}).map(([r, q]) => [`${props.annotationPrefix}${r}`, q])),
      },
      spec: {
        pipelineSpec: {
          tasks: [
            { name: 'build', taskSpec: { steps: [step('build')] } },
            { name: 'test', runAfter: ['build'], taskSpec: { steps: [step('test')] } },
          ],
          finally: [{ name: 'report', taskSpec: { steps: [{ ...step('report'), script: '#!/bin/sh\necho "$(tasks.status)"\n' }] } }],
        },
      },
    });
  }
}
