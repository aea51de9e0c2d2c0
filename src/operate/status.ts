/**
 * Where each gated run stands: waiting (with its place in Kueue's queue and Kueue's reason), admitted,
 * running or finished, how long it waited, and what each ClusterQueue has in use. Read from the runs,
 * their Workloads (labelled with the run's name), the queues, and Kueue's visibility API for positions.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { CLUSTER_QUEUE, GATE_TASK, GATED_LABEL, HELD_BY_GATE, LOCAL_QUEUE, PENDING_STATUS, PIPELINE_RUN, PIPELINE_RUN_LABEL, PRIORITY_LABEL, QUEUE_LABEL, WORKLOAD } from '../gate/names.js';
import { type Cluster, ClusterError, listObjects, reasonOf } from './cluster.js';

export type RunState = 'held' | 'waiting' | 'admitted' | 'running' | 'finished';

export interface RunStatus {
  readonly namespace: string;
  readonly name: string;
  readonly queue?: string;
  readonly priority?: string;
  readonly state: RunState;
  /** 1-based places in its LocalQueue and ClusterQueue, while it waits (from Kueue's visibility API). */
  readonly position?: { readonly localQueue: number; readonly clusterQueue: number };
  /** Why it waits (Kueue's own words when it has them), or how it ended. */
  readonly message?: string;
  /** From its creation until Kueue admitted it, or until now while it waits. */
  readonly waitedSeconds?: number;
}

export interface ResourceUsage {
  readonly name: string;
  readonly used: string;
  readonly quota: string;
}

export interface ClusterQueueStatus {
  readonly name: string;
  readonly pending: number;
  readonly admitted: number;
  readonly resources: readonly ResourceUsage[];
}

export interface StatusReport {
  readonly runs: readonly RunStatus[];
  readonly clusterQueues: readonly ClusterQueueStatus[];
  /** What could not be read (a forbidden list, the visibility API missing): the rest is shown without it. */
  readonly warnings: readonly string[];
}

interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
  readonly lastTransitionTime?: string;
}

type Live<Spec = Record<string, unknown>, Status = Record<string, unknown>> = KubernetesObject & {
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly creationTimestamp?: string | Date; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  readonly spec?: Spec;
  readonly status?: Status & { readonly conditions?: readonly Condition[] };
};

export type PipelineRunObject = Live<{ readonly status?: string }, { readonly childReferences?: readonly { readonly pipelineTaskName?: string }[] }>;
export type WorkloadObject = Live<{ readonly active?: boolean; readonly queueName?: string; readonly priority?: number; readonly priorityClassRef?: { readonly name?: string } }>;
type LocalQueueObject = Live<{ readonly clusterQueue?: string }, { readonly pendingWorkloads?: number }>;
type ClusterQueueObject = Live<
  { readonly resourceGroups?: readonly { readonly flavors?: readonly { readonly name: string; readonly resources?: readonly { readonly name: string; readonly nominalQuota: string | number }[] }[] }[] },
  { readonly pendingWorkloads?: number; readonly admittedWorkloads?: number; readonly flavorsUsage?: readonly { readonly name: string; readonly resources?: readonly { readonly name: string; readonly total?: string | number }[] }[] }
>;

interface PendingWorkloads {
  readonly items?: readonly { readonly metadata: { readonly name: string }; readonly positionInLocalQueue: number; readonly positionInClusterQueue: number }[];
}

const VISIBILITY_API = 'visibility.kueue.x-k8s.io/v1beta2';

function conditionOf(object: Live, type: string): Condition | undefined {
  return object.status?.conditions?.find((c) => c.type === type);
}

const isTrue = (condition: Condition | undefined) => condition?.status === 'True';

function secondsBetween(from: string | Date | undefined, to: string | Date | number): number | undefined {
  return from === undefined ? undefined : Math.max(0, Math.round((new Date(to).getTime() - new Date(from).getTime()) / 1000));
}

/** Where one run stands, from the run and its Workload (none yet, or none ever for a run its user holds). */
export function runStatus(run: PipelineRunObject, workload: WorkloadObject | undefined, position: RunStatus['position'], now: number): RunStatus {
  const { name, namespace = '', creationTimestamp, labels = {}, annotations = {} } = run.metadata;
  const className = workload?.spec?.priorityClassRef?.name ?? labels[PRIORITY_LABEL];
  const base = {
    namespace,
    name,
    queue: workload?.spec?.queueName ?? labels[QUEUE_LABEL],
    priority: className && workload?.spec?.priority !== undefined ? `${className} (${workload.spec.priority})` : className,
  };
  const admitted = workload && conditionOf(workload, 'Admitted');
  const waitedUntilAdmitted = isTrue(admitted) ? secondsBetween(creationTimestamp, admitted!.lastTransitionTime ?? now) : undefined;
  const ended = conditionOf(run, 'Succeeded');
  if (ended && ended.status !== 'Unknown') {
    return { ...base, state: 'finished', message: `${ended.reason ?? ended.status}${isTrue(admitted) || !workload ? '' : ' (never admitted)'}`, waitedSeconds: waitedUntilAdmitted };
  }
  if (!workload) {
    const heldByUser = run.spec?.status === PENDING_STATUS && annotations[HELD_BY_GATE.key] !== HELD_BY_GATE.value;
    return heldByUser
      ? { ...base, state: 'held', message: `its user holds it (spec.status: ${PENDING_STATUS}); it joins the queue once released` }
      : { ...base, state: 'waiting', message: 'no Workload yet: Kyverno has not made it (tekton-kueue-policies doctor checks the gate)', waitedSeconds: secondsBetween(creationTimestamp, now) };
  }
  if (isTrue(admitted)) {
    const started = run.status?.childReferences?.some((child) => child.pipelineTaskName !== GATE_TASK) ?? false;
    const evicted = conditionOf(workload, 'Evicted');
    return { ...base, state: started ? 'running' : 'admitted', message: isTrue(evicted) ? `evicted: ${evicted!.message ?? evicted!.reason}` : undefined, waitedSeconds: waitedUntilAdmitted };
  }
  return { ...base, state: 'waiting', position, message: whyWaiting(workload, position), waitedSeconds: secondsBetween(creationTimestamp, now) };
}

/** Kueue's own reason a Workload is not admitted, from its conditions; else how many wait before it. */
function whyWaiting(workload: WorkloadObject, position: RunStatus['position']): string {
  if (workload.spec?.active === false) return 'deactivated (spec.active: false)';
  const evicted = conditionOf(workload, 'Evicted');
  const reserved = conditionOf(workload, 'QuotaReserved');
  if (isTrue(reserved)) {
    const checks = conditionOf(workload, 'Admitted')?.message;
    return `quota reserved, waiting for its admission checks${checks ? `: ${checks}` : ''}`;
  }
  const reason = reserved?.message ?? (isTrue(evicted) ? `evicted: ${evicted!.message ?? evicted!.reason}` : undefined);
  // Kueue tries the head of a ClusterQueue; the Workloads behind it carry no reason of their own.
  return reason ?? (position ? `queued behind ${position.clusterQueue - 1} in its ClusterQueue` : 'queued; Kueue has not tried to admit it yet');
}

/** What a ClusterQueue has in use against its nominal quota, per resource (summed over flavors). */
export function clusterQueueStatus(queue: ClusterQueueObject): ClusterQueueStatus {
  const quota = new Map<string, string>();
  for (const group of queue.spec?.resourceGroups ?? []) {
    for (const flavor of group.flavors ?? []) for (const resource of flavor.resources ?? []) quota.set(`${flavor.name}/${resource.name}`, String(resource.nominalQuota));
  }
  const used = new Map<string, string>();
  for (const flavor of queue.status?.flavorsUsage ?? []) for (const resource of flavor.resources ?? []) used.set(`${flavor.name}/${resource.name}`, String(resource.total ?? 0));
  const flavors = new Set([...quota.keys()].map((key) => key.split('/')[0]));
  const resources = [...quota.keys()].map((key) => ({
    // A resource is named with its flavor only when the queue has several flavors.
    name: flavors.size > 1 ? key : key.slice(key.indexOf('/') + 1),
    used: used.get(key) ?? '0',
    quota: quota.get(key)!,
  }));
  return { name: queue.metadata.name, pending: queue.status?.pendingWorkloads ?? 0, admitted: queue.status?.admittedWorkloads ?? 0, resources };
}

const STATE_ORDER: readonly RunState[] = ['running', 'admitted', 'waiting', 'held', 'finished'];

/** Every gated run in `namespace` (all namespaces when undefined), the ClusterQueues their LocalQueues feed, and what could not be read. */
export async function gatherStatus(cluster: Cluster, namespace: string | undefined, now = Date.now()): Promise<StatusReport> {
  const { api } = cluster;
  const warnings: string[] = [];
  const list = async <T extends KubernetesObject>(kind: { apiVersion: string; kind: string }, options: Parameters<typeof listObjects>[2]): Promise<T[]> => {
    try {
      return await listObjects<T>(api, kind, options);
    } catch (err) {
      warnings.push(`${kind.kind} (${kind.apiVersion}) could not be listed: ${reasonOf(err)}`);
      return [];
    }
  };
  const [runs, workloads, localQueues] = await Promise.all([
    // Without the runs there is nothing to show: that failure is the command's.
    listObjects<PipelineRunObject>(api, PIPELINE_RUN, { namespace, labelSelector: GATED_LABEL }).catch(
      (err: unknown) => {
        throw new ClusterError(`listing PipelineRuns: ${reasonOf(err)}`);
      },
    ),
    list<WorkloadObject>(WORKLOAD, { namespace, labelSelector: GATED_LABEL }),
    list<LocalQueueObject>(LOCAL_QUEUE, { namespace }),
  ]);
  const key = (ns: string | undefined, name: string | undefined) => `${ns}/${name}`;
  const workloadOf = new Map(workloads.map((w) => [key(w.metadata.namespace, w.metadata.labels?.[PIPELINE_RUN_LABEL]), w]));
  const positions = await queuePositions(cluster, localQueues, warnings);

  const statuses = runs.map((run) => {
    const workload = workloadOf.get(key(run.metadata.namespace, run.metadata.name));
    return runStatus(run, workload, workload && positions.get(key(workload.metadata.namespace, workload.metadata.name)), now);
  });
  statuses.sort((a, b) => a.namespace.localeCompare(b.namespace) || STATE_ORDER.indexOf(a.state) - STATE_ORDER.indexOf(b.state) || (a.position?.localQueue ?? 0) - (b.position?.localQueue ?? 0) || a.name.localeCompare(b.name));

  // The ClusterQueues the listed LocalQueues feed: one list, cluster-wide as they are.
  const fed = new Set(localQueues.map((q) => q.spec?.clusterQueue).filter((n): n is string => !!n));
  let clusterQueues: ClusterQueueObject[] = [];
  if (fed.size > 0) {
    try {
      clusterQueues = (await listObjects<ClusterQueueObject>(api, CLUSTER_QUEUE)).filter((cq) => fed.has(cq.metadata.name));
      for (const name of fed) if (!clusterQueues.some((cq) => cq.metadata.name === name)) warnings.push(`ClusterQueue ${name}, which a LocalQueue feeds, does not exist`);
    } catch (err) {
      warnings.push(`ClusterQueues could not be listed: ${reasonOf(err)}`);
    }
  }
  clusterQueues.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  return { runs: statuses, clusterQueues: clusterQueues.map(clusterQueueStatus), warnings };
}

/** Places of the pending Workloads of each LocalQueue that has any, by `namespace/workload`. */
async function queuePositions(cluster: Cluster, localQueues: readonly LocalQueueObject[], warnings: string[]): Promise<Map<string, NonNullable<RunStatus['position']>>> {
  const positions = new Map<string, NonNullable<RunStatus['position']>>();
  for (const queue of localQueues.filter((q) => (q.status?.pendingWorkloads ?? 0) > 0)) {
    const { namespace, name } = queue.metadata;
    try {
      const pending = await cluster.getJson<PendingWorkloads>(`/apis/${VISIBILITY_API}/namespaces/${namespace}/localqueues/${name}/pendingworkloads`);
      for (const item of pending.items ?? []) positions.set(`${namespace}/${item.metadata.name}`, { localQueue: item.positionInLocalQueue + 1, clusterQueue: item.positionInClusterQueue + 1 });
    } catch (err) {
      warnings.push(`no queue positions: Kueue's visibility API (${VISIBILITY_API}) answered ${reasonOf(err)}; is its APIService Available?`);
      break;
    }
  }
  return positions;
}

/** A duration for people: 45s, 3m12s, 2h05m. */
export function formatSeconds(seconds: number | undefined): string {
  if (seconds === undefined) return '-';
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}

/** Rows as columns padded to their widest cell. */
function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** The report as tables for people: runs, then ClusterQueues, then what could not be read. */
export function formatStatus(report: StatusReport): string[] {
  const runs = report.runs.length === 0
    ? ['no gated PipelineRuns']
    : table([
        ['NAMESPACE', 'PIPELINERUN', 'QUEUE', 'PRIORITY', 'STATE', 'POSITION', 'WAITED', 'MESSAGE'],
        ...report.runs.map((r) => [r.namespace, r.name, r.queue ?? '-', r.priority ?? '-', r.state, r.position ? `${r.position.localQueue} (cq ${r.position.clusterQueue})` : '-', formatSeconds(r.waitedSeconds), r.message ?? '']),
      ]);
  const queues = report.clusterQueues.length === 0
    ? []
    : ['', ...table([['CLUSTERQUEUE', 'PENDING', 'ADMITTED', 'USAGE (used/quota)'], ...report.clusterQueues.map((q) => [q.name, String(q.pending), String(q.admitted), q.resources.map((r) => `${r.name} ${r.used}/${r.quota}`).join(', ')])])];
  return [...runs, ...queues, ...report.warnings.map((w) => `warning: ${w}`)];
}
