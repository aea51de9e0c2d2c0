import { Namespace } from 'cdk8s-plus-28';
import { Construct } from 'constructs';

/** Props of {@link ManagedNamespaces}. */
export interface ManagedNamespacesProps {
  /** Names of the namespaces whose PipelineRuns are gated. */
  readonly names: readonly string[];
  /**
   * Labels added to every namespace.
   * @default - none
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/** The namespaces the gate manages, created so their LocalQueues have somewhere to live. */
export class ManagedNamespaces extends Construct {
  readonly namespaces: Namespace[];

  constructor(scope: Construct, id: string, props: ManagedNamespacesProps) {
    super(scope, id);
    this.namespaces = props.names.map((name) => new Namespace(this, name, { metadata: { name, labels: { ...props.labels } } }));
  }
}
