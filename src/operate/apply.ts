/**
 * Puts a bundle folder into a cluster in one call, in the order its parts depend on each other:
 * Kyverno refuses a policy until ClusterRole aggregation has given its controllers the permissions
 * the policy needs, and a policy gates nothing until Kyverno has made it Ready.
 */
import { ApiException, type KubernetesObject, type KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import { BUNDLE_LABEL, type BundleEntry, type BundleObject, type Component, describe, keyOf } from './bundle-dir.js';
import { groupOf } from '../gate/names.js';
import { ClusterError, isMissingApi, isNotFound, type LabelSelector, listObjects, readIfAny, reasonOf, selects } from './cluster.js';

/** The field manager of every write: `kubectl get --show-managed-fields` tells the bundle's fields by it. */
export const FIELD_MANAGER = 'tekton-kueue-policies';

/**
 * The kinds the bundle can make, in every config and dialect: prune looks for objects of these
 * only. Namespaces are not among them: deleting one deletes the runs in it.
 */
export const PRUNED_KINDS: readonly { readonly apiVersion: string; readonly kind: string }[] = [
  { apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'ResourceFlavor' },
  { apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'ClusterQueue' },
  { apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'LocalQueue' },
  { apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'WorkloadPriorityClass' },
  { apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'AdmissionCheck' },
  { apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'MultiKueueConfig' },
  { apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'MultiKueueCluster' },
  { apiVersion: 'v1', kind: 'ServiceAccount' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding' },
  { apiVersion: 'kyverno.io/v1', kind: 'ClusterPolicy' },
  { apiVersion: 'policies.kyverno.io/v1', kind: 'MutatingPolicy' },
  { apiVersion: 'policies.kyverno.io/v1', kind: 'ValidatingPolicy' },
  { apiVersion: 'policies.kyverno.io/v1', kind: 'GeneratingPolicy' },
  { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicy' },
  { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicyBinding' },
];

/** The order components go in; after `rbac` comes the wait for aggregation, after `policies` the wait for Ready. */
const ORDER = ['namespaces', 'rbac', 'kueue', 'policies', 'guard'];

export interface ApplyOptions {
  /** Have the API server (and its webhooks) check every write without storing it; nothing is waited for. */
  readonly dryRun: boolean;
  /** Delete the objects of `PRUNED_KINDS` with `BUNDLE_LABEL` that the bundle no longer has. */
  readonly prune: boolean;
  /** How long each wait (aggregation, policies Ready) may take before apply gives up. */
  readonly timeoutSeconds: number;
  /** Where progress lines go, one per step. */
  readonly log: (line: string) => void;
}

/** Which engine serves an API group: named when the cluster lacks the API. */
export const ENGINES: Readonly<Record<string, string>> = {
  'kyverno.io': 'Kyverno',
  'policies.kyverno.io': 'Kyverno 1.19 or later',
  'kueue.x-k8s.io': 'Kueue 0.19 or later',
  'tekton.dev': 'Tekton Pipelines',
};

/** The error of a failed request about `entry`, with what to do when the cause is a known one. */
export function requestError(entry: BundleEntry, err: unknown): ClusterError {
  const { object } = entry;
  const engine = ENGINES[groupOf(object)];
  const hint = isMissingApi(err) && engine ? `: the cluster has no ${object.kind} API (${object.apiVersion}); install ${engine}` : '';
  return new ClusterError(`${entry.file}: ${describe(object)}: ${reasonOf(err)}${hint}`);
}

/** The object of a bundle entry as the cluster has it, or undefined when it has none. */
export function liveObject<T extends KubernetesObject>(api: KubernetesObjectApi, entry: BundleEntry): Promise<T | undefined> {
  return readIfAny<T>(api, entry.object).catch((err: unknown) => {
    throw requestError(entry, err);
  });
}

/**
 * A failure that may not happen again: an error inside the API server, throttling, a webhook it
 * could not call (Kyverno's, while Kyverno starts or rolls out, refuses every policy), or a
 * connection that failed.
 */
function transient(err: unknown): boolean {
  if (err instanceof ApiException) return err.code >= 500 || err.code === 429;
  const system = err as { code?: unknown; cause?: { code?: unknown } };
  return typeof system.code === 'string' || typeof system.cause?.code === 'string';
}

/**
 * Server-side applies the object, tried again on a transient failure for `timeoutSeconds`; returns
 * the object as the API server stored it (or would have, in a dry run).
 */
export async function applyObject(api: KubernetesObjectApi, entry: BundleEntry, { dryRun, timeoutSeconds }: Pick<ApplyOptions, 'dryRun' | 'timeoutSeconds'>): Promise<KubernetesObject> {
  const start = Date.now();
  for (;;) {
    try {
      // force: the bundle owns its fields, also those an earlier `kubectl apply` of dist/ wrote.
      return await api.patch(entry.object as KubernetesObject, undefined, dryRun ? 'All' : undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    } catch (err) {
      if (!transient(err) || Date.now() - start > timeoutSeconds * 1000) throw requestError(entry, err);
    }
    await sleep(1000);
  }
}

/** What a progress line says of a dry run. */
function dryRunNote({ dryRun }: Pick<ApplyOptions, 'dryRun'>): string {
  return dryRun ? ' (server dry run)' : '';
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Components in apply order; components the order does not know go last, as listed. */
export function inApplyOrder(components: readonly Component[]): Component[] {
  const rank = (c: Component) => (ORDER.includes(c.name) ? ORDER.indexOf(c.name) : ORDER.length);
  return [...components].sort((a, b) => rank(a) - rank(b));
}

export async function applyBundle(api: KubernetesObjectApi, components: readonly Component[], options: ApplyOptions): Promise<void> {
  const { log, dryRun } = options;
  for (const component of inApplyOrder(components)) {
    for (const entry of component.entries) await applyObject(api, entry, options);
    log(`${component.name}: ${component.entries.length} objects applied${dryRunNote(options)}`);
    if (dryRun) continue;
    if (component.name === 'rbac') await waitForAggregation(api, component, options);
    if (component.name === 'policies') await waitForPoliciesReady(api, component, options);
  }
  if (options.prune) await prune(api, components, options);
}

// --- waits ----------------------------------------------------------------------------------------

interface PolicyRule {
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  readonly verbs: readonly string[];
}

interface ClusterRole extends KubernetesObject {
  readonly rules?: readonly PolicyRule[];
  readonly aggregationRule?: { readonly clusterRoleSelectors?: readonly LabelSelector[] };
}

const AGGREGATE_LABEL = /(^|\.|\/)aggregate-to-/;

/** Every (group, resource, verb) the rule grants. */
function grants(rule: PolicyRule): string[] {
  return (rule.apiGroups ?? ['']).flatMap((g) => (rule.resources ?? []).flatMap((r) => rule.verbs.map((v) => `${g} ${r} ${v}`)));
}

function covers(rules: readonly PolicyRule[], grant: string): boolean {
  const [group, resource, verb] = grant.split(' ');
  const any = (list: readonly string[] | undefined, value: string) => (list ?? ['']).some((item) => item === '*' || item === value);
  return rules.some((rule) => any(rule.apiGroups, group!) && any(rule.resources, resource!) && any(rule.verbs, verb!));
}

/** The bundle's ClusterRoles meant to be aggregated into Kyverno's. */
export function rolesToAggregate(component: Component): BundleObject[] {
  return component.entries.map((e) => e.object).filter((o) => o.kind === 'ClusterRole' && Object.keys(o.metadata.labels ?? {}).some((k) => AGGREGATE_LABEL.test(k)));
}

/** What the aggregated roles still lack of `roles`; empty when they have it all. */
export async function missingGrants(api: KubernetesObjectApi, roles: readonly BundleObject[]): Promise<string[]> {
  const all = (await api.list<ClusterRole>('rbac.authorization.k8s.io/v1', 'ClusterRole')).items;
  // An empty selector aggregates every ClusterRole: it says nothing of the bundle's.
  const names = (s: LabelSelector) => Object.keys(s.matchLabels ?? {}).length + (s.matchExpressions ?? []).length > 0;
  return roles.flatMap((role) => {
    const labels = role.metadata.labels ?? {};
    const aggregators = all.filter((r) => r.aggregationRule?.clusterRoleSelectors?.some((s) => names(s) && selects(s, labels)));
    const aggregateLabels = Object.keys(labels).filter((k) => AGGREGATE_LABEL.test(k));
    if (aggregators.length === 0) return [`no ClusterRole aggregates ClusterRole ${role.metadata.name} (label ${aggregateLabels.join(', ')}): is Kyverno installed?`];
    const wanted = ((role as { rules?: PolicyRule[] }).rules ?? []).flatMap(grants);
    return aggregators.flatMap((aggregator) => {
      const lacking = wanted.filter((grant) => !covers(aggregator.rules ?? [], grant));
      return lacking.length > 0 ? [`ClusterRole ${aggregator.metadata!.name} lacks ${lacking.join(', ')} of ClusterRole ${role.metadata.name}`] : [];
    });
  });
}

async function waitUntil(what: string, options: ApplyOptions, check: () => Promise<string[]>): Promise<number> {
  const start = Date.now();
  for (;;) {
    const problems = await check();
    if (problems.length === 0) return (Date.now() - start) / 1000;
    if (Date.now() - start > options.timeoutSeconds * 1000) {
      throw new ClusterError(`${what}: still not so after ${options.timeoutSeconds} s (--timeout):\n  ${problems.join('\n  ')}`);
    }
    await sleep(1000);
  }
}

async function waitForAggregation(api: KubernetesObjectApi, component: Component, options: ApplyOptions): Promise<void> {
  const roles = rolesToAggregate(component);
  if (roles.length === 0) return;
  const seconds = await waitUntil("Kyverno's ClusterRoles aggregating the bundle's permissions", options, () => missingGrants(api, roles));
  options.log(`rbac: the aggregated ClusterRoles have the bundle's permissions (${seconds.toFixed(0)} s)`);
}

interface PolicyStatus {
  readonly conditions?: readonly { readonly type: string; readonly status: string; readonly message?: string }[];
  /** policies.kyverno.io */
  readonly conditionStatus?: { readonly ready?: boolean; readonly message?: string; readonly conditions?: readonly { readonly type: string; readonly status: string; readonly message?: string }[] };
}

/** Why the policy is not Ready yet, or undefined when it is. */
export function notReady(policy: KubernetesObject & { status?: PolicyStatus }): string | undefined {
  const { status } = policy;
  const ready = policy.apiVersion === 'kyverno.io/v1' ? status?.conditions?.find((c) => c.type === 'Ready') : undefined;
  if (ready?.status === 'True' || status?.conditionStatus?.ready === true) return undefined;
  // Kyverno leaves a CEL policy's own message empty, and says why in its conditions.
  const message = ready?.message || status?.conditionStatus?.message || status?.conditionStatus?.conditions?.find((c) => c.status !== 'True')?.message;
  return `${policy.kind} ${policy.metadata!.name} is not Ready${message ? `: ${message}` : ' (Kyverno has not reported on it yet)'}`;
}

/** Each policy of the component that is missing or not Ready, and why; empty when every one is Ready. */
export async function unreadyPolicies(api: KubernetesObjectApi, component: Component): Promise<{ readonly name: string; readonly problem: string }[]> {
  const problems: { name: string; problem: string }[] = [];
  for (const entry of component.entries) {
    const live = await liveObject<KubernetesObject & { status?: PolicyStatus }>(api, entry);
    const problem = live ? notReady(live) : `${describe(entry.object)} is missing`;
    if (problem) problems.push({ name: entry.object.metadata.name, problem });
  }
  return problems;
}

async function waitForPoliciesReady(api: KubernetesObjectApi, component: Component, options: ApplyOptions): Promise<void> {
  const seconds = await waitUntil('every policy Ready', options, async () => (await unreadyPolicies(api, component)).map((p) => p.problem));
  options.log(`policies: ${component.entries.length} Ready (${seconds.toFixed(0)} s)`);
}

// --- prune ----------------------------------------------------------------------------------------

/** The objects the bundle made earlier that it no longer has: labelled so, of a kind it makes, absent from `components`. */
export async function staleObjects(api: KubernetesObjectApi, components: readonly Component[]): Promise<KubernetesObject[]> {
  const current = new Set(components.flatMap((c) => c.entries.map((e) => keyOf(e.object))));
  const stale: KubernetesObject[] = [];
  for (const kind of PRUNED_KINDS) {
    let items: KubernetesObject[];
    try {
      items = await listObjects(api, kind, { labelSelector: `${BUNDLE_LABEL.key}=${BUNDLE_LABEL.value}` });
    } catch (err) {
      // A cluster without the API has no such object to prune.
      if (isMissingApi(err)) continue;
      throw new ClusterError(`listing ${kind.kind} (${kind.apiVersion}) to prune: ${reasonOf(err)}`);
    }
    stale.push(...items.filter((item) => !current.has(keyOf(item as BundleObject))));
  }
  return stale;
}

async function prune(api: KubernetesObjectApi, components: readonly Component[], options: ApplyOptions): Promise<void> {
  const stale = await staleObjects(api, components);
  for (const object of stale) {
    try {
      await api.delete(object, undefined, options.dryRun ? 'All' : undefined);
    } catch (err) {
      if (!isNotFound(err)) throw new ClusterError(`pruning ${describe(object as BundleObject)}: ${reasonOf(err)}`);
    }
    options.log(`prune: deleted ${describe(object as BundleObject)}${dryRunNote(options)}`);
  }
  if (stale.length === 0) options.log('prune: nothing to delete');
}
