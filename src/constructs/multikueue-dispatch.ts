import { Construct } from 'constructs';
import { AdmissionCheck, MultiKueueCluster, MultiKueueClusterSpecClusterSourceKubeConfigLocationType, MultiKueueConfig } from '../../imports/kueue-kueue.x-k8s.io.js';
import type { WorkerClusterConfig } from '../config/config.js';
import { MULTIKUEUE_CONTROLLER } from '../gate/names.js';

/** Props of {@link MultiKueueDispatch}. */
export interface MultiKueueDispatchProps {
  /** Name of the AdmissionCheck (the dispatching ClusterQueues name it) and of its MultiKueueConfig. */
  readonly name: string;
  /** The worker clusters, each with the Secret in Kueue's namespace that holds its kubeconfig. */
  readonly workers: readonly WorkerClusterConfig[];
  /**
   * Labels added to every object.
   * @default - none
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * The manager side of Kueue's MultiKueue: an AdmissionCheck that MultiKueue decides by finding a
 * worker cluster whose Kueue admits a copy of the Workload, the MultiKueueConfig listing the
 * workers, and a MultiKueueCluster per worker, reached with the kubeconfig of its Secret.
 */
export class MultiKueueDispatch extends Construct {
  readonly admissionCheck: AdmissionCheck;
  readonly config: MultiKueueConfig;
  readonly clusters: MultiKueueCluster[];

  constructor(scope: Construct, id: string, props: MultiKueueDispatchProps) {
    super(scope, id);
    if (props.workers.length === 0) throw new Error('MultiKueueDispatch: no worker cluster to dispatch to');
    const metadata = (name: string) => ({ name, labels: { ...props.labels } });
    this.clusters = props.workers.map(
      (worker) =>
        new MultiKueueCluster(this, `cluster-${worker.name}`, {
          metadata: metadata(worker.name),
          spec: { clusterSource: { kubeConfig: { locationType: MultiKueueClusterSpecClusterSourceKubeConfigLocationType.SECRET, location: worker.kubeconfigSecret } } },
        }),
    );
    this.config = new MultiKueueConfig(this, 'config', { metadata: metadata(props.name), spec: { clusters: props.workers.map((w) => w.name) } });
    this.admissionCheck = new AdmissionCheck(this, 'admission-check', {
      metadata: metadata(props.name),
      spec: { controllerName: MULTIKUEUE_CONTROLLER, parameters: { apiGroup: 'kueue.x-k8s.io', kind: 'MultiKueueConfig', name: props.name } },
    });
  }
}
