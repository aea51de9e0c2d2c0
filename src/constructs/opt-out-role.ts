import { ApiResource, ClusterRole, ClusterRoleBinding, Group, ServiceAccount, User } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { Subject } from '../config/config.js';
import type { Permission } from '../guard/model.js';

/** Props of {@link OptOutRole}. */
export interface OptOutRoleProps {
  /** The verb on a resource the tenant guard checks before it lets a run skip the queue. */
  readonly permission: Permission;
  /** Name of the ClusterRole granting it. */
  readonly name: string;
  /**
   * Subjects granted it in every namespace.
   * @default - none: admins bind the ClusterRole where they want
   */
  readonly subjects?: readonly Subject[];
  /**
   * Labels of the ClusterRole and its binding.
   * @default - none
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/** The ClusterRole that lets a subject opt runs out of the queue, and its binding when subjects are given. */
export class OptOutRole extends Construct {
  readonly role: ClusterRole;
  readonly binding?: ClusterRoleBinding;

  constructor(scope: Construct, id: string, props: OptOutRoleProps) {
    super(scope, id);
    const { permission } = props;
    this.role = new ClusterRole(this, 'role', { metadata: { name: props.name, labels: { ...props.labels } } });
    this.role.allow([permission.verb], ApiResource.custom({ apiGroup: permission.group, resourceType: permission.resource }));
    const subjects = props.subjects ?? [];
    if (subjects.length > 0) {
      const binding = new ClusterRoleBinding(this, 'binding', { metadata: { name: props.name, labels: { ...props.labels } }, role: this.role });
      subjects.forEach((subject, i) => {
        const id = `subject-${i}`;
        binding.addSubjects(
          subject.kind === 'ServiceAccount'
            ? ServiceAccount.fromServiceAccountName(this, id, subject.name, { namespaceName: subject.namespace })
            : subject.kind === 'Group'
              ? Group.fromName(this, id, subject.name)
              : User.fromName(this, id, subject.name),
        );
      });
      this.binding = binding;
    }
  }
}
