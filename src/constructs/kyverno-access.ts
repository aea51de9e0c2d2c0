import { ApiResource, ClusterRole } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { AccessRule, KyvernoController } from '../gate/access.js';

/** Props of {@link KyvernoAccess}. */
export interface KyvernoAccessProps {
  /** Rules each Kyverno controller needs, as derived from the gate steps (see `requiredAccess`). */
  readonly access: ReadonlyMap<KyvernoController, readonly AccessRule[]>;
  /**
   * Prefix of the ClusterRole names; each role is `<prefix>:<controller>`.
   * @default 'tekton-kueue-policies'
   */
  readonly namePrefix?: string;
  /**
   * Labels added to every ClusterRole besides the aggregation label.
   * @default - none
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * ClusterRoles that Kyverno aggregates into its controllers' roles (label
 * `rbac.kyverno.io/aggregate-to-<controller>: "true"`), one per controller that needs access.
 * Exactly the listed verbs on the listed resources: no wildcards.
 */
export class KyvernoAccess extends Construct {
  readonly roles: ClusterRole[] = [];

  constructor(scope: Construct, id: string, props: KyvernoAccessProps) {
    super(scope, id);
    const prefix = props.namePrefix ?? 'tekton-kueue-policies';
    for (const [controller, rules] of props.access) {
      const role = new ClusterRole(this, controller, {
        metadata: {
          name: `${prefix}:${controller}`,
          labels: { ...props.labels, [`rbac.kyverno.io/aggregate-to-${controller}`]: 'true' },
        },
      });
      for (const rule of rules) {
        if (rule.verbs.some((v) => v.includes('*')) || rule.resource.includes('*')) {
          throw new Error(`KyvernoAccess: ${controller} rule on ${rule.resource} uses a wildcard; list verbs and resources`);
        }
        role.allow([...rule.verbs], ApiResource.custom({ apiGroup: rule.apiGroup, resourceType: rule.resource }));
      }
      this.roles.push(role);
    }
  }
}
