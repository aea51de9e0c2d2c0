import type { Config } from '../../src/config/config.js';
import type { PolicyDefinition } from '../../src/gate/model.js';
import { LOCAL_QUEUE, NAMESPACE } from '../../src/gate/names.js';
import { BUNDLE_LABEL } from '../../src/operate/bundle-dir.js';

/**
 * Step 0 of the flow, for tenant namespaces: a namespace that gets the tenant labels gets the
 * tenant LocalQueues, and loses them when it loses the labels (Kyverno's generate rules with
 * `synchronize`, so no controller of ours). The bundle's own namespaces carry the labels too, but
 * have their listed queues: they are left out by the bundle's label. The queues outlive the policy
 * (Kyverno does not delete them with it): a move to the other dialect prunes this policy while the
 * new one takes its queues over, Workloads and all.
 */
export function generateLocalQueues(config: Config): PolicyDefinition | undefined {
  const tenants = config.tenants;
  if (!tenants) return undefined;
  const selector = Object.entries(tenants.labels).map(([key, value]) => `${key}=${value}`).join(',');
  return {
    name: 'generate-localqueues',
    title: 'Give each tenant namespace its LocalQueues',
    description:
      `Creates the LocalQueues ${tenants.queues.map((q) => `${q.name} (ClusterQueue ${q.clusterQueue})`).join(', ')} in every namespace labelled ${selector}, ` +
      'also in those that were labelled before the policy, and deletes them when the namespace loses a label. ' +
      `Namespaces of the bundle itself (${BUNDLE_LABEL.key}=${BUNDLE_LABEL.value}) keep the queues listed for them.`,
    // Kyverno generates for existing namespaces only when the policy itself changes: a namespace
    // labelled while Kyverno is down would stay without queues. Refused, its creator tries again.
    failurePolicy: 'Fail',
    steps: [
      {
        type: 'generate-queues',
        rule: 'localqueue',
        trigger: { kind: NAMESPACE, operations: ['CREATE', 'UPDATE'], labels: tenants.labels, unlessLabels: { [BUNDLE_LABEL.key]: BUNDLE_LABEL.value } },
        localQueue: LOCAL_QUEUE,
        queues: tenants.queues,
      },
    ],
  };
}
