import { Construct } from 'constructs';
import { WorkloadPriorityClass } from '../../imports/kueue-kueue.x-k8s.io.js';
import type { PriorityConfig } from '../config/config.js';

/** Props of {@link PriorityClasses}. */
export interface PriorityClassesProps {
  /** Classes a run can name with its `kueue.x-k8s.io/priority-class` label. */
  readonly priorities: readonly PriorityConfig[];
  /**
   * Labels added to every object.
   * @default - none
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/** Kueue WorkloadPriorityClasses: the higher the value, the earlier a queued run is admitted. */
export class PriorityClasses extends Construct {
  readonly classes: WorkloadPriorityClass[];

  constructor(scope: Construct, id: string, props: PriorityClassesProps) {
    super(scope, id);
    this.classes = props.priorities.map(
      (p) =>
        new WorkloadPriorityClass(this, p.name, {
          metadata: { name: p.name, labels: { ...props.labels } },
          value: p.value,
          ...(p.description ? { description: p.description } : {}),
        }),
    );
  }
}
