/**
 * Checks a cluster against a bundle folder and says what to fix: the engines and their versions, the
 * bundle's objects, its RBAC aggregated into Kyverno's roles, every policy Ready, the engines'
 * webhooks, and the Kueue and Tekton settings that would undo the gate.
 */
import type { KubernetesObject, KubernetesObjectApi } from '@kubernetes/client-node';
import YAML from 'yaml';
import { CUSTOM_RUN, groupOf, MULTIKUEUE_CONTROLLER, PIPELINE_RUN, QUEUE_LABEL, TASK_RUN, WORKLOAD } from '../gate/names.js';
import { ENGINES, missingGrants, rolesToAggregate, unreadyPolicies } from './apply.js';
import { type Component, describe, MIN_VERSION_ANNOTATION } from './bundle-dir.js';
import { type Cluster, type LabelSelector, readIfAny, reasonOf, selects } from './cluster.js';

export type Severity = 'ok' | 'problem' | 'note';

export interface Finding {
  readonly severity: Severity;
  /** What was checked: an engine, the bundle, a setting. */
  readonly subject: string;
  readonly message: string;
  /** What to do about a problem. */
  readonly fix?: string;
}

/** The oldest release of each engine the gate is tested with (README, first paragraph). */
export const MIN_VERSIONS: Readonly<Record<Engine, string>> = { Kyverno: '1.19.0', Kueue: '0.19.0', Tekton: '1.15.0' };
type Engine = 'Kyverno' | 'Kueue' | 'Tekton';
const ENGINE_ORDER: readonly Engine[] = ['Kyverno', 'Kueue', 'Tekton'];

/** Where each engine's release says its version: a Deployment's image tag, or Tekton's own ConfigMap. */
const VERSION_SOURCES: Readonly<Record<Engine, { readonly apiVersion: string; readonly kind: string; readonly namespace: string; readonly name: string; readonly version: (live: Live) => string | undefined }>> = {
  Kyverno: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'kyverno', name: 'kyverno-admission-controller', version: imageOf },
  Kueue: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'kueue-system', name: 'kueue-controller-manager', version: imageOf },
  Tekton: { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'tekton-pipelines', name: 'pipelines-info', version: (live) => live.data?.version },
};

function imageOf(deployment: Live): string | undefined {
  return deployment.spec?.template?.spec?.containers?.[0]?.image;
}

/** Kueue's configuration as its release keeps it. */
const KUEUE_CONFIG = { namespace: 'kueue-system', name: 'kueue-manager-config', key: 'controller_manager_config.yaml' } as const;
/** PipelineRuns as an external framework of MultiKueue, as Kueue's configuration names them. */
export const MULTIKUEUE_PIPELINE_RUN = 'PipelineRun.v1.tekton.dev';
/** Kueue's WaitForPodsReady timeout when its configuration names none. */
const KUEUE_DEFAULT_PODS_READY_TIMEOUT = '30m';
/** The policy that marks a started run's Workload PodsReady, so Kueue's WaitForPodsReady spares it. */
const READY_POLICY = 'ready-workload';
/** The policy that releases runs held pending: without it the bundle gates inline specs only. */
const PENDING_RELEASE_POLICY = 'admit-pipelinerun';
/** The kinds of the flow the bundle does not make but reads and writes. */
const FLOW_KINDS = [PIPELINE_RUN, TASK_RUN, CUSTOM_RUN, WORKLOAD];

type Live = KubernetesObject & { readonly metadata: { readonly name: string; readonly labels?: Record<string, string> }; readonly [field: string]: any };

export async function diagnose(cluster: Cluster, components: readonly Component[]): Promise<Finding[]> {
  const { api } = cluster;
  const component = (name: string): Component => components.find((c) => c.name === name) ?? { name, entries: [] };
  const policies = component('policies');
  let unready: Awaited<ReturnType<typeof unreadyPolicies>>;
  try {
    unready = await unreadyPolicies(api, policies);
  } catch (err) {
    // The first request: a cluster that cannot be read at all is one problem, not one per check.
    return [{ severity: 'problem', subject: 'cluster', message: `cannot be read: ${reasonOf(err)}`, fix: 'check --kubeconfig and --context, and that the API server is up' }];
  }
  const policyReady = (name: string) => policies.entries.some((e) => e.object.metadata.name === name) && !unready.some((p) => p.name === name);
  return [
    ...[...(await engineApis(api, components)), ...(await engineVersions(api, minimumVersions(policies)))].sort((a, b) => ENGINE_ORDER.indexOf(a.subject as Engine) - ENGINE_ORDER.indexOf(b.subject as Engine)),
    ...(await bundleObjects(api, components.filter((c) => c.name !== 'policies'))),
    ...(await aggregation(api, component('rbac'))),
    ...(unready.length > 0
      ? unready.map(({ problem }) => ({ severity: 'problem' as const, subject: 'policies', message: problem, fix: 'run `tekton-kueue-policies apply` for a missing policy; `kubectl describe` one not Ready for Kyverno\'s own message' }))
      : [{ severity: 'ok' as const, subject: 'policies', message: `${policies.entries.length} policies Ready` }]),
    ...(await webhooks(api)),
    ...(await kueueConfiguration(api, component('namespaces'), policyReady(READY_POLICY), dispatches(component('kueue')))),
    ...(await tektonFlags(api, policies.entries.some((e) => e.object.metadata.name === PENDING_RELEASE_POLICY))),
  ];
}

/** A check that could not read what it needs says so, rather than failing the others. */
async function guarded(subject: string, check: () => Promise<Finding[]>): Promise<Finding[]> {
  try {
    return await check();
  } catch (err) {
    return [{ severity: 'problem', subject, message: `could not be checked: ${reasonOf(err)}`, fix: 'run doctor as a user who may read it' }];
  }
}

function engineApis(api: KubernetesObjectApi, components: readonly Component[]): Promise<Finding[]> {
  return guarded('engines', async () => {
    const crds = (await api.list<Live>('apiextensions.k8s.io/v1', 'CustomResourceDefinition')).items;
    const wanted = [...FLOW_KINDS, ...components.flatMap((c) => c.entries.map((e) => e.object))];
    const byEngine = new Map<string, { release: string; served: Set<string>; missing: Set<string> }>();
    for (const { apiVersion, kind } of wanted) {
      const release = ENGINES[groupOf({ apiVersion, kind })];
      if (!release) continue;
      // "Kueue" of "Kueue 0.19 or later"
      const engine = release.split(' ')[0]!;
      const version = apiVersion.split('/')[1];
      const served = crds.some((crd) => crd.spec?.group === groupOf({ apiVersion, kind }) && crd.spec?.names?.kind === kind && crd.spec?.versions?.some((v: { name: string; served: boolean }) => v.name === version && v.served));
      const entry = byEngine.get(engine) ?? { release, served: new Set(), missing: new Set() };
      entry[served ? 'served' : 'missing'].add(`${kind} (${apiVersion})`);
      byEngine.set(engine, entry);
    }
    return [...byEngine].map(([engine, { release, served, missing }]) =>
      missing.size > 0
        ? { severity: 'problem', subject: engine, message: `the cluster does not serve ${[...missing].join(', ')}`, fix: `install ${release}` }
        : { severity: 'ok', subject: engine, message: `serves ${[...served].join(', ')}` },
    );
  });
}

/** `1.19.0` of `v1.19.0`, `ghcr.io/kyverno/kyverno:v1.19.0` or `v1.19.0-rc.1`; undefined when there is none. */
export function versionOf(text: string): [number, number, number] | undefined {
  const match = /v?(\d+)\.(\d+)\.(\d+)(?:[-+@][^:/]*)?$/.exec(text);
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : undefined;
}

function olderThan(version: readonly number[], minimum: readonly number[]): boolean {
  const i = version.findIndex((part, j) => part !== minimum[j]);
  return i >= 0 && version[i]! < minimum[i]!;
}

/** An engine's oldest release the bundle works on, and why that one. */
export interface Minimum {
  readonly version: string;
  readonly why: string;
}

/** The gate's oldest releases, but for Kyverno a newer one a policy of the bundle names. */
export function minimumVersions(policies: Component): Record<Engine, Minimum> {
  const gate = (engine: Engine): Minimum => ({ version: MIN_VERSIONS[engine], why: 'the oldest the gate is tested with' });
  const kyverno = policies.entries
    .map(({ object }): Minimum => ({ version: object.metadata.annotations?.[MIN_VERSION_ANNOTATION] ?? '', why: `the oldest ${describe(object)} works on` }))
    .filter(({ version }) => versionOf(version))
    .reduce((needed, policy) => (olderThan(versionOf(needed.version)!, versionOf(policy.version)!) ? policy : needed), gate('Kyverno'));
  return { Kyverno: kyverno, Kueue: gate('Kueue'), Tekton: gate('Tekton') };
}

function engineVersions(api: KubernetesObjectApi, minimums: Readonly<Record<Engine, Minimum>>): Promise<Finding[]> {
  return Promise.all(
    (Object.keys(VERSION_SOURCES) as Engine[]).map((engine) =>
      guarded(engine, async () => {
        const source = VERSION_SOURCES[engine];
        const where = `${source.kind} ${source.namespace}/${source.name}`;
        const live = await readIfAny<Live>(api, { apiVersion: source.apiVersion, kind: source.kind, metadata: source });
        const found = live && source.version(live);
        const version = found ? versionOf(found) : undefined;
        const { version: oldest, why } = minimums[engine];
        if (!version) return [{ severity: 'note', subject: engine, message: `version unknown (${found ? `"${found}" in` : live ? 'none in' : 'no'} ${where}); the bundle needs ${oldest} or later (${why})` }];
        return olderThan(version, versionOf(oldest)!)
          ? [{ severity: 'problem', subject: engine, message: `version ${version.join('.')} (${where}) is older than ${oldest}, ${why}`, fix: `upgrade ${engine}` }]
          : [{ severity: 'ok', subject: engine, message: `version ${version.join('.')}` }];
      }),
    ),
  ).then((findings) => findings.flat());
}

function bundleObjects(api: KubernetesObjectApi, components: readonly Component[]): Promise<Finding[]> {
  return guarded('bundle', async () => {
    const missing: Finding[] = [];
    let present = 0;
    for (const { file, object } of components.flatMap((c) => c.entries)) {
      if (await readIfAny(api, object)) present++;
      else missing.push({ severity: 'problem', subject: 'bundle', message: `${describe(object)} (${file}) is missing`, fix: 'run `tekton-kueue-policies apply`' });
    }
    return missing.length > 0 ? missing : [{ severity: 'ok', subject: 'bundle', message: `${present} objects present (policies checked below)` }];
  });
}

function aggregation(api: KubernetesObjectApi, rbac: Component): Promise<Finding[]> {
  return guarded('rbac', async () => {
    const lacking = await missingGrants(api, rolesToAggregate(rbac));
    return lacking.length > 0
      ? lacking.map((message) => ({ severity: 'problem', subject: 'rbac', message, fix: "the cluster's clusterrole-aggregation controller (kube-controller-manager) fills Kyverno's roles; check it runs and Kyverno's roles select the bundle's labels" }))
      : [{ severity: 'ok', subject: 'rbac', message: "Kyverno's ClusterRoles have the bundle's permissions" }];
  });
}

interface WebhookRule {
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  readonly operations?: readonly string[];
}

/** Whether one of the configurations sends `operation` on `group`/`resource` to a webhook. */
function sendsTo(configs: readonly Live[], group: string, resource: string, operation: string): boolean {
  const has = (list: readonly string[] | undefined, value: string) => (list ?? []).some((item) => item === '*' || item === value);
  return configs.some((config) => (config.webhooks ?? []).some((webhook: { rules?: WebhookRule[] }) => (webhook.rules ?? []).some((rule) => has(rule.apiGroups, group) && has(rule.resources, resource) && has(rule.operations, operation))));
}

/** The webhooks the flow goes through: Kyverno's on PipelineRuns, Tekton's on its runs, Kueue's on Workloads. */
function webhooks(api: KubernetesObjectApi): Promise<Finding[]> {
  return guarded('webhooks', async () => {
    const list = async (kind: string) => (await api.list<Live>('admissionregistration.k8s.io/v1', kind)).items;
    const [mutating, validating] = await Promise.all([list('MutatingWebhookConfiguration'), list('ValidatingWebhookConfiguration')]);
    const of = (configs: readonly Live[], owner: (c: Live) => boolean) => configs.filter(owner);
    const kyverno = (c: Live) => c.metadata.labels?.['webhook.kyverno.io/managed-by'] === 'kyverno';
    const tekton = (c: Live) => c.metadata.labels?.['app.kubernetes.io/part-of'] === 'tekton-pipelines';
    const kueue = (c: Live) => c.metadata.name.startsWith('kueue-');
    const runs = groupOf(PIPELINE_RUN);
    const checks: [string, boolean, string][] = [
      ['Kyverno', sendsTo(of(mutating, kyverno), runs, 'pipelineruns', 'CREATE'), 'mutates PipelineRuns at creation (mutate-pipelinerun)'],
      ['Kyverno', sendsTo(of(validating, kyverno), runs, 'pipelineruns', 'CREATE'), 'validates PipelineRuns at creation (validate-pipelinerun)'],
      ['Tekton', sendsTo(of(mutating, tekton), runs, 'pipelineruns', 'CREATE'), 'defaults PipelineRuns'],
      ['Kueue', sendsTo(of(mutating, kueue), groupOf(WORKLOAD), 'workloads', 'CREATE'), 'defaults Workloads'],
    ];
    return checks.map(([engine, ok, what]): Finding =>
      ok
        ? { severity: 'ok', subject: 'webhooks', message: `${engine}'s webhook ${what}` }
        : { severity: 'problem', subject: 'webhooks', message: `no webhook of ${engine} that ${what}`, fix: `check ${engine} runs; ${engine === 'Kyverno' ? 'Kyverno registers it once the policy is Ready' : `reinstall ${engine}'s release`}` },
    );
  });
}

/** Kueue's own default of managedJobsNamespaceSelector: every namespace but its own and kube-system. */
const KUEUE_DEFAULT_NAMESPACE_SELECTOR: LabelSelector = { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', KUEUE_CONFIG.namespace] }] };

/** Whether the bundle dispatches runs to worker clusters: it has an AdmissionCheck of MultiKueue. */
function dispatches(kueue: Component): boolean {
  return kueue.entries.some((e) => e.object.kind === 'AdmissionCheck' && (e.object as Live).spec?.controllerName === MULTIKUEUE_CONTROLLER);
}

/**
 * Kueue settings that would undo the gate: WaitForPodsReady with nothing marking runs ready, the pod
 * integration in gated namespaces; on a MultiKueue manager, MultiKueue not knowing PipelineRuns.
 */
function kueueConfiguration(api: KubernetesObjectApi, namespaces: Component, readyPolicyReady: boolean, dispatching: boolean): Promise<Finding[]> {
  return guarded('Kueue configuration', async () => {
    const configMap = await readIfAny<Live>(api, { apiVersion: 'v1', kind: 'ConfigMap', metadata: KUEUE_CONFIG });
    const text: string | undefined = configMap?.data?.[KUEUE_CONFIG.key];
    if (text === undefined) return [{ severity: 'note', subject: 'Kueue configuration', message: `not found in ConfigMap ${KUEUE_CONFIG.namespace}/${KUEUE_CONFIG.name} (key ${KUEUE_CONFIG.key}): WaitForPodsReady and the pod integration were not checked` }];
    const config = (YAML.parse(text) ?? {}) as {
      waitForPodsReady?: { timeout?: string };
      integrations?: { frameworks?: string[] };
      manageJobsWithoutQueueName?: boolean;
      managedJobsNamespaceSelector?: LabelSelector;
      multiKueue?: { externalFrameworks?: { name?: string }[] };
    };
    const timeout = config.waitForPodsReady?.timeout ?? KUEUE_DEFAULT_PODS_READY_TIMEOUT;
    const findings: Finding[] = [
      readyPolicyReady
        ? { severity: 'ok', subject: 'Kueue configuration', message: `WaitForPodsReady (timeout ${timeout}) is met: ${READY_POLICY} marks a started run's Workload PodsReady` }
        : { severity: 'problem', subject: 'Kueue configuration', message: `WaitForPodsReady (always on in Kueue 0.19, timeout ${timeout}) evicts every admitted run not PodsReady within ${timeout}: policy ${READY_POLICY} is not Ready to mark started runs PodsReady`, fix: 'run `tekton-kueue-policies apply` with a bundle of this release' },
    ];
    if (dispatching) {
      findings.push(
        (config.multiKueue?.externalFrameworks ?? []).some((f) => f.name === MULTIKUEUE_PIPELINE_RUN)
          ? { severity: 'ok', subject: 'Kueue configuration', message: `MultiKueue dispatches PipelineRuns (external framework ${MULTIKUEUE_PIPELINE_RUN})` }
          : {
              severity: 'problem',
              subject: 'Kueue configuration',
              message: `the bundle dispatches runs to worker clusters, and MultiKueue does not know PipelineRuns: it rejects their Workloads ("No multikueue adapter found")`,
              fix: `add {name: ${MULTIKUEUE_PIPELINE_RUN}} to multiKueue.externalFrameworks of Kueue's configuration, and restart Kueue`,
            },
      );
    }
    if (!(config.integrations?.frameworks ?? []).includes('pod')) return [...findings, { severity: 'ok', subject: 'Kueue configuration', message: 'the pod integration is off: TaskRun pods are not queued a second time' }];
    const selector = config.managedJobsNamespaceSelector ?? KUEUE_DEFAULT_NAMESPACE_SELECTOR;
    const gated: string[] = [];
    for (const ns of namespaces.entries.map((e) => e.object).filter((o) => o.kind === 'Namespace')) {
      const live = await readIfAny<Live>(api, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns.metadata.name } });
      if (selects(selector, { 'kubernetes.io/metadata.name': ns.metadata.name, ...(live?.metadata.labels ?? ns.metadata.labels) })) gated.push(ns.metadata.name);
    }
    if (gated.length === 0) return [...findings, { severity: 'ok', subject: 'Kueue configuration', message: 'the pod integration leaves the gated namespaces alone (managedJobsNamespaceSelector)' }];
    const without = config.manageJobsWithoutQueueName ? ', and with manageJobsWithoutQueueName every other pod too' : '';
    return [
      ...findings,
      {
        severity: 'problem',
        subject: 'Kueue configuration',
        message: `the pod integration manages pods in ${gated.join(', ')}: Tekton copies a run's ${QUEUE_LABEL} label to its TaskRun pods${without}, so Kueue queues each pod again behind the run's own Workload`,
        fix: 'leave these namespaces out of managedJobsNamespaceSelector, or drop "pod" from integrations.frameworks',
      },
    ];
  });
}

/** Tekton feature flags the gate relies on: inline pipeline specs, where the bundle gates nothing else. */
function tektonFlags(api: KubernetesObjectApi, gatesPending: boolean): Promise<Finding[]> {
  return guarded('Tekton feature flags', async () => {
    const flags = await readIfAny<Live>(api, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'feature-flags', namespace: 'tekton-pipelines' } });
    const disabled = String(flags?.data?.['disable-inline-spec'] ?? '').split(',').map((s) => s.trim());
    if (!gatesPending && disabled.includes('pipelinerun')) {
      return [{
        severity: 'problem',
        subject: 'Tekton feature flags',
        message: 'disable-inline-spec has "pipelinerun": Tekton refuses inline pipelineSpec, the only runs a customrun bundle gates; every other run skips the queue',
        fix: 'synthesize the bundle with strategy auto or pending',
      }];
    }
    return [{ severity: 'ok', subject: 'Tekton feature flags', message: flags ? 'none turns off what the gate relies on' : 'Tekton defaults (no feature-flags ConfigMap)' }];
  });
}

/** Findings as lines for people, problems with their fix, and a last line with the count. */
export function formatFindings(findings: readonly Finding[]): string[] {
  const problems = findings.filter((f) => f.severity === 'problem').length;
  return [
    ...findings.flatMap((f) => [`${f.severity.padEnd(7)}  ${f.subject}: ${f.message}`, ...(f.fix ? [`${' '.repeat(9)}fix: ${f.fix}`] : [])]),
    problems === 0 ? 'healthy: no problem found' : `${problems} problem(s) found`,
  ];
}
