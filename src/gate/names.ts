import { ClusterQueue, LocalQueue } from '../../imports/kueue-kueue.x-k8s.io.js';
import { CustomRun, PipelineRun } from '../../imports/tekton-tekton.dev.js';
import type { Dispatch, Namespaces, When } from './model.js';

/** An API kind as `apiVersion` + `kind`, the way manifests and Kyverno targets name it. */
export interface ApiKind {
  readonly apiVersion: string;
  readonly kind: string;
}

export const PIPELINE_RUN: ApiKind = PipelineRun.GVK;
export const CUSTOM_RUN: ApiKind = CustomRun.GVK;
export const TASK_RUN: ApiKind = { apiVersion: PipelineRun.GVK.apiVersion, kind: 'TaskRun' };
export const WORKLOAD: ApiKind = { apiVersion: ClusterQueue.GVK.apiVersion, kind: 'Workload' };
export const LOCAL_QUEUE: ApiKind = LocalQueue.GVK;
export const CLUSTER_QUEUE: ApiKind = ClusterQueue.GVK;
export const NAMESPACE: ApiKind = { apiVersion: 'v1', kind: 'Namespace' };

/** Name of the pipeline task the gate inserts; also the CustomRun's `tekton.dev/pipelineTask` label. */
export const GATE_TASK = 'kueue-gate';
/** Kueue's own label naming a workload's LocalQueue. */
export const QUEUE_LABEL = 'kueue.x-k8s.io/queue-name';
/** Label naming the WorkloadPriorityClass of a run. */
export const PRIORITY_LABEL = 'kueue.x-k8s.io/priority-class';
/** Kueue's own label giving a job's maximum execution time in seconds. */
export const MAX_EXEC_TIME_LABEL = 'kueue.x-k8s.io/max-exec-time-seconds';
/** Extended resource every gated run requests once, so a ClusterQueue can cap concurrent runs. */
export const PIPELINERUN_RESOURCE = 'tekton.dev/pipelineruns';
/** Label Tekton puts on a PipelineRun's children naming the pipeline task. */
export const PIPELINE_TASK_LABEL = 'tekton.dev/pipelineTask';
/** Label Tekton puts on a PipelineRun's children naming the run. */
export const PIPELINE_RUN_LABEL = 'tekton.dev/pipelineRun';
/** `spec.status` of a PipelineRun that must not start yet (TEP-0015). */
export const PENDING_STATUS = 'PipelineRunPending';
/** `spec.status` that stops a running PipelineRun but still runs its finally tasks. */
export const STOP_STATUS = 'StoppedRunFinally';
/**
 * MultiKueue's label on the copy of a job it made on a worker cluster, naming the manager it came
 * from (the Workload the copy runs under is in an annotation since Kueue 0.18).
 */
export const MULTIKUEUE_ORIGIN_LABEL = 'kueue.x-k8s.io/multikueue-origin';
/** The AdmissionCheck (and MultiKueueConfig) of a MultiKueue manager's dispatching ClusterQueues. */
export const MULTIKUEUE_CHECK = 'tekton-kueue-policies-multikueue';
/** MultiKueue's controller name: of the AdmissionChecks it decides, and `spec.managedBy` of a job it dispatches to a worker cluster. */
export const MULTIKUEUE_CONTROLLER = 'kueue.x-k8s.io/multikueue';
/**
 * The condition a manager's run marked for MultiKueue shows while it waits: Tekton's reason for a
 * pending run, which Tekton writes for the runs it manages only.
 */
export const DISPATCHED_RUN_PENDING = { reason: PENDING_STATUS, message: 'Queued in Kueue: it runs on a worker cluster once MultiKueue dispatches it' } as const;
/** Annotation saying the gate, not the user, made a run pending. */
export const HELD_BY_GATE = { key: 'tekton-kueue-policies.dev/pending-set-by-gate', value: 'true' } as const;
/** Annotation naming the routing rule that routed a run. */
export const ROUTED_BY = 'tekton-kueue-policies.dev/route';
/** The conditions a Workload's reservation given back changes, besides `status.admission`, which goes. */
export const UNRESERVED_CONDITIONS = ['QuotaReserved', 'Admitted', 'Requeued'] as const;
/**
 * The fields of a Workload's status besides its conditions (`kueue.x-k8s.io/v1beta2`, Kueue 0.19),
 * all Kueue's: of them the gate only removes `admission`, giving a reservation back.
 */
export const WORKLOAD_STATUS_FIELDS = [
  'accumulatedPastExecutionTimeSeconds',
  'admission',
  'admissionChecks',
  'clusterName',
  'nominatedClusterNames',
  'preemptionGates',
  'reclaimablePods',
  'requeueState',
  'resourceRequests',
  'schedulingStats',
  'unhealthyNodes',
] as const;
/** Kueue's eviction reasons after which a job integration requeues a Workload at once. */
export const REQUEUE_AT_ONCE = ['Preempted', 'NodeFailures'] as const;

/**
 * The condition an object of the flow shows once it has ended (a Workload finished, a run or
 * CustomRun done). A step on anything else is past for such an object.
 */
export function endedConditionOf(kind: ApiKind): { readonly condition: string; readonly statuses: readonly ('True' | 'False')[] } | undefined {
  const same = (other: ApiKind) => other.apiVersion === kind.apiVersion && other.kind === kind.kind;
  if (same(WORKLOAD)) return { condition: 'Finished', statuses: ['True'] };
  if (same(PIPELINE_RUN) || same(CUSTOM_RUN)) return { condition: 'Succeeded', statuses: ['True', 'False'] };
  return undefined;
}

/** The condition that shows `kind` has ended, unless reaching it is what a step waits for (`when`). */
export function endedUnlessReached(when: When, kind: ApiKind): ReturnType<typeof endedConditionOf> {
  const ended = endedConditionOf(kind);
  return ended && !('condition' in when && when.condition === ended.condition) ? ended : undefined;
}

/** Label the gate puts on every run it gated and every Workload it made; its value names the strategy. */
export const GATED_LABEL = 'tekton-kueue-policies.dev/gate';

/** One string per kind, to tell kinds apart. */
export function kindKey(kind: ApiKind): string {
  return `${kind.apiVersion}/${kind.kind}`;
}

/** Lower-case plural resource name of a kind, as RBAC and the API paths spell it. */
export function resourceOf(kind: ApiKind): string {
  return `${kind.kind.toLowerCase()}s`;
}

/** API group of a kind (`tekton.dev` of `tekton.dev/v1`). */
export function groupOf(kind: ApiKind): string {
  return kind.apiVersion.includes('/') ? kind.apiVersion.split('/')[0]! : '';
}

/** Path of the objects of `kind` on the API server, in a namespace or (cluster-scoped kinds) all. */
export function apiPathOfAll(kind: ApiKind, namespace?: string): string {
  const prefix = groupOf(kind) ? `/apis/${kind.apiVersion}` : `/api/${kind.apiVersion}`;
  return `${prefix}${namespace === undefined ? '' : `/namespaces/${namespace}`}/${resourceOf(kind)}`;
}

/** Path of an object of a namespaced `kind` on the API server. */
export function apiPath(kind: ApiKind, namespace: string, name: string): string {
  return `${apiPathOfAll(kind, namespace)}/${name}`;
}

/** A Kubernetes label selector of namespaces: by name (the label every namespace has), or by their labels. */
export type NamespaceSelector =
  | { readonly matchExpressions: { readonly key: string; readonly operator: 'In'; readonly values: readonly string[] }[] }
  | { readonly matchLabels: Readonly<Record<string, string>> };

export function namespaceSelectorOf(namespaces: Namespaces): NamespaceSelector {
  return 'names' in namespaces
    ? { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: namespaces.names }] }
    : { matchLabels: namespaces.labels };
}

/**
 * The LocalQueues whose runs are dispatched, each keyed as both dialects key a run's queue:
 * `namespace/queue` in a listed namespace, `/queue` in a namespace chosen by label.
 */
export function dispatchingQueueKeys(dispatch: Dispatch): string[] {
  return [...dispatch.queues.map((q) => `${q.namespace}/${q.queue}`), ...dispatch.tenantQueues.map((q) => `/${q}`)];
}
