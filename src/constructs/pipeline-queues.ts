import { Construct } from 'constructs';
import {
  ClusterQueue,
  ClusterQueueSpecFairSharingWeight,
  ClusterQueueSpecPreemptionBorrowWithinCohortPolicy,
  ClusterQueueSpecPreemptionReclaimWithinCohort,
  ClusterQueueSpecPreemptionWithinClusterQueue,
  ClusterQueueSpecQueueingStrategy,
  ClusterQueueSpecResourceGroupsFlavorsResourcesBorrowingLimit as BorrowingLimit,
  ClusterQueueSpecResourceGroupsFlavorsResourcesLendingLimit as LendingLimit,
  ClusterQueueSpecResourceGroupsFlavorsResourcesNominalQuota as Quota,
  LocalQueue,
  ResourceFlavor,
} from '../../imports/kueue-kueue.x-k8s.io.js';
import type { ClusterQueueConfig, NamespaceConfig, TenantNamespacesConfig } from '../config/config.js';
import { namespaceSelectorOf } from '../gate/names.js';

/** Props of {@link PipelineQueues}. */
export interface PipelineQueuesProps {
  /** ClusterQueues with their quota (every resource a run requests must be covered). */
  readonly clusterQueues: readonly ClusterQueueConfig[];
  /** Namespaces and the LocalQueues in each. */
  readonly namespaces: readonly NamespaceConfig[];
  /**
   * Namespaces chosen by label, and the LocalQueues each gets (made for them by the gate's
   * generate-localqueues policy, not here). The listed namespaces must carry the labels too.
   * @default - no namespace is chosen by label
   */
  readonly tenants?: Pick<TenantNamespacesConfig, 'labels' | 'queues'>;
  /**
   * An AdmissionCheck that the Workloads of these ClusterQueues must pass before they are admitted
   * (MultiKueue's, which dispatches them to a worker cluster).
   * @default - no ClusterQueue has admission checks
   */
  readonly admissionCheck?: { readonly name: string; readonly clusterQueues: readonly string[] };
  /**
   * Name of the ResourceFlavor every ClusterQueue's quota is given in.
   * @default 'default-flavor'
   */
  readonly flavorName?: string;
  /**
   * Labels added to every object.
   * @default - none
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * The Kueue side of the gate: one ResourceFlavor, the ClusterQueues holding the quota (alone, or
 * lending unused quota to the others of their cohort), and a LocalQueue per (namespace, queue) that
 * gated runs are queued in.
 */
export class PipelineQueues extends Construct {
  readonly flavor: ResourceFlavor;
  readonly clusterQueues: ClusterQueue[];
  readonly localQueues: LocalQueue[];

  constructor(scope: Construct, id: string, props: PipelineQueuesProps) {
    super(scope, id);
    const flavorName = props.flavorName ?? 'default-flavor';
    const metadata = (name: string, namespace?: string) => ({ name, namespace, labels: { ...props.labels } });

    this.flavor = new ResourceFlavor(this, 'flavor', { metadata: metadata(flavorName) });

    this.clusterQueues = props.clusterQueues.map((queue) => {
      const feeds = (queues: readonly { clusterQueue: string }[]) => queues.some((q) => q.clusterQueue === queue.name);
      const users = props.namespaces.filter((ns) => feeds(ns.queues)).map((ns) => ns.name);
      const tenants = props.tenants && feeds(props.tenants.queues) ? props.tenants : undefined;
      if (users.length === 0 && !tenants) {
        throw new Error(`PipelineQueues: ClusterQueue "${queue.name}" is used by no namespace; remove it or point a queue at it`);
      }
      const resources = Object.keys(queue.quota).sort();
      const cohort = queue.cohort;
      return new ClusterQueue(this, `cq-${queue.name}`, {
        metadata: metadata(queue.name),
        spec: {
          ...(cohort ? { cohortName: cohort.name } : {}),
          ...(queue.fairSharingWeight ? { fairSharing: { weight: ClusterQueueSpecFairSharingWeight.fromString(queue.fairSharingWeight) } } : {}),
          queueingStrategy: queue.queueingStrategy as ClusterQueueSpecQueueingStrategy,
          ...(props.admissionCheck?.clusterQueues.includes(queue.name) ? { admissionChecksStrategy: { admissionChecks: [{ name: props.admissionCheck.name }] } } : {}),
          // Only the namespaces whose LocalQueues point here may use this quota.
          namespaceSelector: namespaceSelectorOf(tenants ? { labels: tenants.labels } : { names: users }) as never,
          preemption: {
            withinClusterQueue: queue.preemption as ClusterQueueSpecPreemptionWithinClusterQueue,
            ...(cohort
              ? {
                  reclaimWithinCohort: cohort.reclaimWithinCohort as ClusterQueueSpecPreemptionReclaimWithinCohort,
                  borrowWithinCohort: { policy: cohort.borrowWithinCohort as ClusterQueueSpecPreemptionBorrowWithinCohortPolicy },
                }
              : {}),
          },
          resourceGroups: [
            {
              coveredResources: resources,
              flavors: [
                {
                  name: flavorName,
                  resources: resources.map((name) => ({
                    name,
                    nominalQuota: Quota.fromString(queue.quota[name]!),
                    ...(cohort?.borrowingLimit?.[name] ? { borrowingLimit: BorrowingLimit.fromString(cohort.borrowingLimit[name]) } : {}),
                    ...(cohort?.lendingLimit?.[name] ? { lendingLimit: LendingLimit.fromString(cohort.lendingLimit[name]) } : {}),
                  })),
                },
              ],
            },
          ],
        },
      });
    });

    this.localQueues = props.namespaces.flatMap((ns) =>
      ns.queues.map(
        (queue) =>
          new LocalQueue(this, `lq-${ns.name}-${queue.name}`, {
            metadata: metadata(queue.name, ns.name),
            spec: { clusterQueue: queue.clusterQueue },
          }),
      ),
    );
  }
}
