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
import type { ClusterQueueConfig, NamespaceConfig } from '../config/config.js';

/** Props of {@link PipelineQueues}. */
export interface PipelineQueuesProps {
  /** ClusterQueues with their quota (every resource a run requests must be covered). */
  readonly clusterQueues: readonly ClusterQueueConfig[];
  /** Namespaces and the LocalQueues in each. */
  readonly namespaces: readonly NamespaceConfig[];
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
      const users = props.namespaces.filter((ns) => ns.queues.some((q) => q.clusterQueue === queue.name)).map((ns) => ns.name);
      if (users.length === 0) {
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
          // Only the namespaces whose LocalQueues point here may use this quota.
          namespaceSelector: {
            matchExpressions: [
              { key: 'kubernetes.io/metadata.name', operator: 'In', values: users },
            ],
          },
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
