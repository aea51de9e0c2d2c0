import { ApiResource, ClusterRole, ClusterRoleBinding, ServiceAccount } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { type ApiKind, groupOf, resourceOf } from '../gate/names.js';

/** Props of {@link MultiKueueWorkerAccess}. */
export interface MultiKueueWorkerAccessProps {
  /** The ServiceAccount the manager's Kueue acts as here: its namespace (Kueue's) and name. */
  readonly serviceAccount: { readonly namespace: string; readonly name: string };
  /** The job kind MultiKueue copies here (its status read back), beside the Workloads. */
  readonly job: ApiKind;
  /** Kueue's Workload kind, which MultiKueue copies here first and watches. */
  readonly workload: ApiKind;
  /**
   * Kinds the manager's Kueue watches on every worker whether or not it dispatches them: those of
   * the job integrations it has on (Kueue's default: batch/Job). Without the watch, the manager
   * takes the worker for unreachable.
   * @default - none
   */
  readonly watched?: readonly ApiKind[];
  /**
   * Labels of every object.
   * @default - none
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * The identity a MultiKueue manager acts as on a worker cluster, and what it may do there: create,
 * watch and delete the Workloads and the copies of the jobs it dispatches, update a Workload's
 * status, read a job's, and watch the kinds of Kueue's other job integrations. A token of this
 * ServiceAccount goes in the kubeconfig of the manager's Secret.
 */
export class MultiKueueWorkerAccess extends Construct {
  readonly serviceAccount: ServiceAccount;
  readonly role: ClusterRole;

  constructor(scope: Construct, id: string, props: MultiKueueWorkerAccessProps) {
    super(scope, id);
    const { name, namespace } = props.serviceAccount;
    const labels = { ...props.labels };
    this.serviceAccount = new ServiceAccount(this, 'service-account', { metadata: { name, namespace, labels }, automountToken: false });
    this.role = new ClusterRole(this, 'role', { metadata: { name, labels } });
    const resource = (kind: ApiKind, subresource = '') => ApiResource.custom({ apiGroup: groupOf(kind), resourceType: `${resourceOf(kind)}${subresource}` });
    const objects = ['create', 'delete', 'get', 'list', 'watch'];
    this.role.allow([...objects, 'patch', 'update'], resource(props.workload));
    this.role.allow(['get', 'patch', 'update'], resource(props.workload, '/status'));
    this.role.allow(objects, resource(props.job));
    this.role.allow(['get'], resource(props.job, '/status'));
    for (const kind of props.watched ?? []) this.role.allow(['list', 'watch'], resource(kind));
    new ClusterRoleBinding(this, 'binding', { metadata: { name, labels }, role: this.role }).addSubjects(this.serviceAccount);
  }
}
