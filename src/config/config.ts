import type { FromSchema } from 'json-schema-to-ts';
import type { configSchema } from './schema.js';

type Fields = typeof configSchema.properties;

/** Resource name → quantity, as in a container's `resources.requests`. */
export type ResourceList = Readonly<Record<string, string>>;

/** A LocalQueue in a managed namespace and the ClusterQueue it feeds. */
export interface QueueConfig {
  readonly name: string;
  readonly clusterQueue: string;
}

/** A namespace whose PipelineRuns are gated. */
export interface NamespaceConfig {
  readonly name: string;
  readonly queues: readonly QueueConfig[];
  /** LocalQueue used when a run has no `kueue.x-k8s.io/queue-name` label. */
  readonly defaultQueue: string;
}

/**
 * Every namespace carrying all of `labels` is gated, and gets these LocalQueues while it carries
 * them: namespaces a CI service makes per team, too many to list.
 */
export interface TenantNamespacesConfig {
  readonly labels: Readonly<Record<string, string>>;
  readonly queues: readonly QueueConfig[];
  /** LocalQueue used when a run has no `kueue.x-k8s.io/queue-name` label. */
  readonly defaultQueue: string;
}

/** Kueue's `preemption.withinClusterQueue` policy. */
export type Preemption = FromSchema<Fields['clusterQueues']['items']['properties']['preemption']>;

/** How gated runs are held back until Kueue admits them. */
export type Strategy = FromSchema<Fields['strategy']>;

/** Kueue's `preemption.reclaimWithinCohort` policy. */
export type ReclaimWithinCohort = FromSchema<Fields['clusterQueues']['items']['properties']['reclaimWithinCohort']>;
/** Kueue's `preemption.borrowWithinCohort.policy`. */
export type BorrowWithinCohort = FromSchema<Fields['clusterQueues']['items']['properties']['borrowWithinCohort']>;
/** Kueue's `queueingStrategy`. */
export type QueueingStrategy = FromSchema<Fields['clusterQueues']['items']['properties']['queueingStrategy']>;

/** ClusterQueues of one cohort lend each other the quota they do not use. */
export interface CohortConfig {
  readonly name: string;
  /** Most this ClusterQueue may borrow above its quota, per resource; unlimited for resources not listed. */
  readonly borrowingLimit?: ResourceList;
  /** Most of its quota this ClusterQueue lends, per resource; all of it for resources not listed. */
  readonly lendingLimit?: ResourceList;
  /** Whether a run within its quota may preempt runs of other ClusterQueues that borrowed it. */
  readonly reclaimWithinCohort: ReclaimWithinCohort;
  /** Whether a run that must borrow may preempt lower-priority runs of other ClusterQueues. */
  readonly borrowWithinCohort: BorrowWithinCohort;
}

export interface ClusterQueueConfig {
  readonly name: string;
  /** Whether a queued run may preempt admitted runs of lower priority in this ClusterQueue. */
  readonly preemption: Preemption;
  /** Nominal quota of the bundle's ResourceFlavor. */
  readonly quota: ResourceList;
  /** Requests of a run queued here that carries no request annotations. */
  readonly defaultRequests: ResourceList;
  readonly queueingStrategy: QueueingStrategy;
  /** The cohort it shares quota in; none: it stands alone. */
  readonly cohort?: CohortConfig;
  /** Kueue's `fairSharing.weight` (used when Kueue's fair sharing is on). */
  readonly fairSharingWeight?: string;
}

/**
 * A routing rule: a run that matches gets the queue, priority class and requests it sets. The first
 * matching rule of the list is the run's; what the run asks for itself wins unless `enforce`.
 */
export interface RuleConfig {
  readonly name: string;
  /** What the run must be; each field given must hold (a list: any of its values). */
  readonly match: {
    readonly namespaces?: readonly string[];
    readonly labels?: Readonly<Record<string, readonly string[]>>;
    readonly annotations?: Readonly<Record<string, readonly string[]>>;
    readonly pipelineRef?: { readonly name?: string; readonly resolver?: string };
  };
  readonly set: { readonly queue?: string; readonly priorityClass?: string; readonly requests?: ResourceList };
  /** Overwrite the run's own queue label, priority label and request annotations. */
  readonly enforce: boolean;
}

export interface PriorityConfig {
  readonly name: string;
  readonly value: number;
  readonly description?: string;
}

/** An RBAC subject: a user, a group, or a service account of a namespace. */
export type Subject = Readonly<FromSchema<Fields['optOut']['properties']['subjects']['items']>>;

/** Who may start a run without waiting in the queue. */
export interface OptOutConfig {
  /** Runs labelled `<label>: "true"` are not gated, if their creator was granted the opt-out. */
  readonly label: string;
  /** Subjects granted the opt-out in every managed namespace (none by default). */
  readonly subjects: readonly Subject[];
}

/** Usernames, as the API server sees them, of the controllers the tenant guard trusts. */
export interface TrustedIdentities {
  /** The gate: Kyverno's background controller, which releases held runs and writes the gate's statuses. */
  readonly gate: readonly string[];
  /** Tekton's controller, which creates a PipelineRun's TaskRuns and CustomRuns. */
  readonly tekton: readonly string[];
}

/** Kyverno's policy language the gate is written in: `kyverno.io/v1` ClusterPolicy, or `policies.kyverno.io/v1` CEL policies. */
export type DialectName = FromSchema<Fields['dialect']>;

/** A worker cluster of a MultiKueue manager: its name, and the Secret in Kueue's namespace holding its kubeconfig (key `kubeconfig`). */
export interface WorkerClusterConfig {
  readonly name: string;
  readonly kubeconfigSecret: string;
}

/**
 * The cluster's part in Kueue's MultiKueue. A manager queues runs and has Kueue dispatch those of
 * its dispatching ClusterQueues to a worker cluster with room; a worker runs the copies it gets,
 * under the Workloads the manager's Kueue made for them.
 */
export type MultiKueueConfig =
  | {
      readonly role: 'manager';
      readonly workers: readonly WorkerClusterConfig[];
      /** ClusterQueues whose runs are dispatched to the workers. */
      readonly dispatching: readonly string[];
    }
  | {
      readonly role: 'worker';
      /** The ServiceAccount the manager's Kueue acts as on this cluster (its kubeconfig's token is one of it). */
      readonly manager: { readonly namespace: string; readonly name: string };
    };

/** The user config after defaults are applied and cross-references are checked. */
export interface Config {
  readonly strategy: Strategy;
  readonly dialect: DialectName;
  readonly optOut: OptOutConfig;
  readonly trustedIdentities: TrustedIdentities;
  readonly resourceFlavor: string;
  readonly requestAnnotationPrefix: string;
  /** Requests of a run in a LocalQueue the bundle does not manage. */
  readonly fallbackRequests: ResourceList;
  readonly clusterQueues: readonly ClusterQueueConfig[];
  /** Namespaces listed by name; the bundle creates them. */
  readonly namespaces: readonly NamespaceConfig[];
  /** Namespaces chosen by label; the listed ones get the labels too. */
  readonly tenants?: TenantNamespacesConfig;
  readonly priorities: readonly PriorityConfig[];
  readonly defaultPriority?: string;
  /** Routing rules, in order: the first that matches a run is its. */
  readonly rules: readonly RuleConfig[];
  /** The cluster's part in Kueue's MultiKueue; none: it runs what it queues. */
  readonly multiKueue?: MultiKueueConfig;
  /** Emit the sample PipelineRuns under `samples/`. */
  readonly samples: boolean;
}

/** The mechanisms a strategy uses: `auto` gates inline-spec runs with the gate task and the rest pending. */
export function mechanismsOf(strategy: Strategy): { readonly customRun: boolean; readonly pending: boolean } {
  return { customRun: strategy !== 'pending', pending: strategy !== 'customrun' };
}
