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

/** Kueue's `preemption.withinClusterQueue` policy. */
export type Preemption = FromSchema<Fields['clusterQueues']['items']['properties']['preemption']>;

/** How gated runs are held back until Kueue admits them. */
export type Strategy = FromSchema<Fields['strategy']>;

export interface ClusterQueueConfig {
  readonly name: string;
  /** Whether a queued run may preempt admitted runs of lower priority in this ClusterQueue. */
  readonly preemption: Preemption;
  /** Nominal quota of the bundle's ResourceFlavor. */
  readonly quota: ResourceList;
  /** Requests of a run queued here that carries no request annotations. */
  readonly defaultRequests: ResourceList;
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
  readonly namespaces: readonly NamespaceConfig[];
  readonly priorities: readonly PriorityConfig[];
  readonly defaultPriority?: string;
  /** Emit the sample PipelineRuns under `samples/`. */
  readonly samples: boolean;
}

/** The mechanisms a strategy uses: `auto` gates inline-spec runs with the gate task and the rest pending. */
export function mechanismsOf(strategy: Strategy): { readonly customRun: boolean; readonly pending: boolean } {
  return { customRun: strategy !== 'pending', pending: strategy !== 'customrun' };
}
