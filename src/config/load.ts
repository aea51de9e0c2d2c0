import { readFileSync } from 'node:fs';
import type { ErrorObject } from 'ajv';
import type { FromSchema } from 'json-schema-to-ts';
import YAML from 'yaml';
import { PIPELINERUN_RESOURCE } from '../gate/names.js';
import type { ClusterQueueConfig, CohortConfig, Config, MultiKueueConfig, NamespaceConfig, PriorityConfig, QueueConfig, ResourceList, RuleConfig, Subject, TenantNamespacesConfig } from './config.js';
import { quantityValue } from './quantity.js';
import { configSchema } from './schema.js';
import { schemaValidator } from './validator.js';

/** A config problem, told as the file, the field, what is wrong and how to fix it. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    readonly problem: string,
    readonly fix: string,
  ) {
    super(`${file}: ${field || '(top level)'}: ${problem}\n  fix: ${fix}`);
    this.name = 'ConfigError';
  }
}

/** The config file as the schema describes it: no hand-kept twin that could drift from it. */
type RawConfig = FromSchema<typeof configSchema>;

/** Each field's default, as the schema declares it. */
const fields = configSchema.properties;

/**
 * Reads, schema-checks and cross-checks a config file; throws ConfigError on the first problem.
 * `cacheDir` keeps the generated schema validator between runs.
 */
export function loadConfig(file: string, cacheDir?: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '', `cannot read the file (${(err as NodeJS.ErrnoException).code})`, 'pass an existing file with --config');
  }
  const doc = YAML.parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(file, '', `not valid YAML: ${doc.errors[0]!.message}`, 'correct the YAML syntax at that line');
  }
  return parseConfig(doc.toJS(), file, cacheDir);
}

/** Checks an already parsed config object; `file` names it in errors. */
export function parseConfig(raw: unknown, file: string, cacheDir?: string): Config {
  const validateRaw = schemaValidator<RawConfig>(configSchema, cacheDir);
  if (!validateRaw(raw)) {
    const errors = validateRaw.errors!;
    // A failed oneOf is reported after the failures of each branch; it is the one a user can act on,
    // but for a rule's match value that is a string, yet not one it can match.
    const badMatchValue = errors.find((e) => /^\/rules\/\d+\/match\/(labels|annotations|pipelineRef)\//.test(e.instancePath) && (e.keyword === 'pattern' || e.keyword === 'minLength'));
    throw schemaError(file, badMatchValue ?? errors.find((e) => e.keyword === 'oneOf') ?? errors[0]!);
  }
  return crossCheck(raw, file);
}

function schemaError(file: string, error: ErrorObject): ConfigError {
  // A JSON pointer's segments, unescaped: keys such as label names hold "/" (written ~1).
  const segments = error.instancePath.split('/').slice(1).map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
  const field = segments.map((segment, i) => (/^\d+$/.test(segment) ? `[${segment}]` : `${i > 0 ? '.' : ''}${segment}`)).join('');
  const params = error.params as Record<string, unknown>;
  if (/^rules\[\d+\]\.match\.(labels|annotations|pipelineRef)\./.test(field)) return matchValueError(file, field, error);
  if (field.startsWith('tenantNamespaces.namespaceSelector') && ['additionalProperties', 'type', 'pattern', 'minProperties'].includes(error.keyword)) return selectorError(file, field, error);
  switch (error.keyword) {
    case 'additionalProperties':
      return new ConfigError(file, field, `unknown field "${String(params.additionalProperty)}"`, 'remove it or correct its spelling (see the config reference in README.md)');
    case 'required':
      return new ConfigError(file, field, `missing required field "${String(params.missingProperty)}"`, `add ${String(params.missingProperty)}`);
    case 'enum':
      return new ConfigError(file, field, `must be one of ${JSON.stringify(params.allowedValues)}`, 'use one of the listed values');
    case 'pattern':
      return field.endsWith('annotationPrefix')
        ? new ConfigError(file, field, `"${String(error.data)}" is not an annotation key prefix`, 'write a DNS prefix, a "/" and the start of a name, such as kueue.konflux-ci.dev/requests-')
        : new ConfigError(file, field, `"${String(error.data)}" is not a valid name here`, 'use lower-case letters, digits and "-" (a Kubernetes name)');
    case 'oneOf':
      return new ConfigError(file, field, `"${String(error.data)}" is not a resource quantity`, 'write a quantity such as 2, 500m or 4Gi');
    case 'minProperties':
      return new ConfigError(file, field, 'is empty', field.endsWith('.set') ? 'set at least one of queue, priorityClass and requests' : 'give it a value, or remove it');
    default:
      return new ConfigError(file, field, error.message ?? 'invalid value', 'see the config reference in README.md');
  }
}

/** A value a routing rule matches is a string, or a list of them, without wildcards. */
function matchValueError(file: string, field: string, error: ErrorObject): ConfigError {
  switch (error.keyword) {
    case 'pattern':
      return new ConfigError(file, field, `"${String(error.data)}" has a wildcard (* or ?)`, 'write the exact value; list several values to match any of them');
    case 'minLength':
      return new ConfigError(file, field, 'is empty', 'write the value to match');
    default:
      return new ConfigError(file, field, 'must be a string or a list of strings', 'write the value to match, or a list of values any of which matches');
  }
}

/** The tenant selector is labels a namespace must all carry, as Kubernetes writes label values. */
function selectorError(file: string, field: string, error: ErrorObject): ConfigError {
  switch (error.keyword) {
    case 'additionalProperties':
      return new ConfigError(file, field, `has "${String((error.params as Record<string, unknown>).additionalProperty)}", and only matchLabels is supported`, 'select the tenant namespaces by labels they all carry, under matchLabels');
    case 'type':
      return new ConfigError(file, field, 'must be a string', 'quote the label value, such as "true"');
    case 'pattern':
      return new ConfigError(file, field, `"${String(error.data)}" is not a label value`, 'use at most 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit');
    default:
      return new ConfigError(file, field, 'is empty, which would select every namespace', 'give the labels that mark a tenant namespace');
  }
}

function quantities(list: Readonly<Record<string, string | number>>): ResourceList {
  return Object.fromEntries(Object.entries(list).map(([name, value]) => [name, String(value)]));
}

function crossCheck(raw: RawConfig, file: string): Config {
  const fallbackRequests = quantities(raw.requests?.defaults ?? fields.requests.properties.defaults.default);
  const clusterQueues = raw.clusterQueues.map((queue, i) => {
    checkStandalone(queue, file, `clusterQueues[${i}]`);
    const defaultRequests = queue.defaultRequests ? quantities(queue.defaultRequests) : fallbackRequests;
    for (const resource of [...Object.keys(defaultRequests), PIPELINERUN_RESOURCE]) {
      if (!(resource in queue.quota)) {
        throw new ConfigError(file, `clusterQueues[${i}].quota`, `does not cover "${resource}", which every run queued here requests`, `add "${resource}" to the quota (Kueue never admits a Workload whose requests its ClusterQueue does not cover)`);
      }
    }
    const defaults = fields.clusterQueues.items.properties;
    return {
      name: queue.name,
      quota: quantities(queue.quota),
      defaultRequests,
      preemption: queue.preemption ?? defaults.preemption.default,
      queueingStrategy: queue.queueingStrategy ?? defaults.queueingStrategy.default,
      ...(queue.cohort === undefined ? {} : { cohort: cohortOf(queue, file, `clusterQueues[${i}]`) }),
      ...(queue.fairSharing === undefined ? {} : { fairSharingWeight: String(queue.fairSharing.weight) }),
    } satisfies ClusterQueueConfig;
  });
  unique(file, 'clusterQueues', clusterQueues.map((q) => q.name));

  if (raw.namespaces === undefined && raw.tenantNamespaces === undefined) {
    throw new ConfigError(file, 'namespaces', 'no namespace is managed', 'list namespaces under namespaces, or select them by label under tenantNamespaces');
  }
  const known = new Set(clusterQueues.map((q) => q.name));
  const queuesOf = (ns: { queues: readonly QueueConfig[]; defaultQueue?: string }, field: string) => {
    unique(file, `${field}.queues`, ns.queues.map((q) => q.name));
    ns.queues.forEach((queue, j) => {
      if (!known.has(queue.clusterQueue)) {
        throw new ConfigError(file, `${field}.queues[${j}].clusterQueue`, `no ClusterQueue named "${queue.clusterQueue}"`, `name one of ${JSON.stringify([...known])} or add it under clusterQueues`);
      }
    });
    const defaultQueue = ns.defaultQueue ?? ns.queues[0]!.name;
    if (!ns.queues.some((q) => q.name === defaultQueue)) {
      throw new ConfigError(file, `${field}.defaultQueue`, `"${defaultQueue}" is not one of ${field === 'tenantNamespaces' ? 'the tenant' : "this namespace's"} queues`, 'name one of its queues, or leave it out to use the first');
    }
    return { queues: ns.queues, defaultQueue };
  };
  const namespaces = (raw.namespaces ?? []).map((ns, i) => ({ name: ns.name, ...queuesOf(ns, `namespaces[${i}]`) }));
  unique(file, 'namespaces', namespaces.map((ns) => ns.name));
  const tenants = raw.tenantNamespaces && { labels: raw.tenantNamespaces.namespaceSelector.matchLabels, ...queuesOf(raw.tenantNamespaces, 'tenantNamespaces') };
  clusterQueues.forEach((queue, i) => {
    if (![...namespaces, ...(tenants ? [tenants] : [])].some((ns) => ns.queues.some((q) => q.clusterQueue === queue.name))) {
      throw new ConfigError(file, `clusterQueues[${i}]`, `ClusterQueue "${queue.name}" is used by no namespace queue`, 'point a namespaces[].queues[] or tenantNamespaces.queues[] entry at it, or remove it');
    }
  });

  const priorities = raw.priorities ?? [];
  unique(file, 'priorities', priorities.map((p) => p.name));
  if (raw.defaultPriority !== undefined && !priorities.some((p) => p.name === raw.defaultPriority)) {
    throw new ConfigError(file, 'defaultPriority', `no priority named "${raw.defaultPriority}"`, 'name one of the priorities, or leave it out');
  }

  const rules = (raw.rules ?? []).map((rule, i) => ruleOf(rule, `rules[${i}]`, file, { namespaces, tenants, clusterQueues, priorities }));
  unique(file, 'rules', rules.map((r) => r.name));

  const strategy = raw.strategy ?? fields.strategy.default;
  const multiKueue = raw.multiKueue && multiKueueOf(raw.multiKueue, strategy, clusterQueues, file);

  return {
    strategy,
    dialect: raw.dialect ?? fields.dialect.default,
    optOut: { label: raw.optOut?.label ?? fields.optOut.properties.label.default, subjects: optOutSubjects(raw.optOut?.subjects ?? [], file) },
    trustedIdentities: {
      gate: raw.trustedIdentities?.gate ?? fields.trustedIdentities.properties.gate.default,
      tekton: raw.trustedIdentities?.tekton ?? fields.trustedIdentities.properties.tekton.default,
    },
    resourceFlavor: raw.resourceFlavor ?? fields.resourceFlavor.default,
    requestAnnotationPrefix: raw.requests?.annotationPrefix ?? fields.requests.properties.annotationPrefix.default,
    fallbackRequests,
    clusterQueues,
    namespaces,
    ...(tenants ? { tenants } : {}),
    priorities,
    defaultPriority: raw.defaultPriority,
    rules,
    ...(multiKueue ? { multiKueue } : {}),
    samples: raw.samples ?? fields.samples.default,
  };
}

/** The ServiceAccount a worker's bundle makes for the manager's Kueue. */
export const MULTIKUEUE_SERVICE_ACCOUNT = 'tekton-kueue-policies-multikueue';

/**
 * A manager names its workers and may limit dispatch to some ClusterQueues; a worker names nothing.
 * A manager holds runs by `spec.status` only (a gate task would be copied to the worker with the
 * run, and gate it a second time there); a worker needs the steps of that strategy for the copies.
 */
function multiKueueOf(raw: NonNullable<RawConfig['multiKueue']>, strategy: Config['strategy'], clusterQueues: readonly ClusterQueueConfig[], file: string): MultiKueueConfig {
  if (raw.role === 'manager' && strategy !== 'pending') {
    throw new ConfigError(file, 'strategy', `is ${strategy}, and a MultiKueue manager holds the runs it dispatches by spec.status only: a gate task would travel with the run to the worker and gate it there again`, 'set strategy: pending');
  }
  if (raw.role === 'worker' && strategy === 'customrun') {
    throw new ConfigError(file, 'strategy', 'is customrun, and a MultiKueue worker needs the steps of strategy pending: the runs it gets were held by spec.status on their manager', 'set strategy: pending or auto');
  }
  if (raw.role === 'worker') {
    const managerOnly = (['workers', 'clusterQueues'] as const).find((field) => raw[field] !== undefined);
    if (managerOnly) {
      throw new ConfigError(file, `multiKueue.${managerOnly}`, 'is for a manager, and this cluster is a worker', `remove ${managerOnly}, or set role: manager`);
    }
    return { role: 'worker', manager: { namespace: raw.kueueNamespace ?? fields.multiKueue.properties.kueueNamespace.default, name: MULTIKUEUE_SERVICE_ACCOUNT } };
  }
  if (!raw.workers) {
    throw new ConfigError(file, 'multiKueue.workers', 'a manager has no worker to dispatch to', 'list the worker clusters: name and kubeconfigSecret, a Secret in Kueue\'s namespace holding the kubeconfig');
  }
  unique(file, 'multiKueue.workers', raw.workers.map((w) => w.name));
  const known = clusterQueues.map((q) => q.name);
  (raw.clusterQueues ?? []).forEach((name, i) => {
    if (!known.includes(name)) {
      throw new ConfigError(file, `multiKueue.clusterQueues[${i}]`, `no ClusterQueue named "${name}"`, `name one of ${JSON.stringify(known)}, or leave clusterQueues out to dispatch from all`);
    }
  });
  return { role: 'manager', workers: raw.workers, dispatching: raw.clusterQueues ?? known };
}

type RawClusterQueue = RawConfig['clusterQueues'][number];

/**
 * The cohort fields of a ClusterQueue, as Kueue's webhook would check them: limits on resources of
 * the quota, no more lent than the quota, no preempting to borrow without reclaiming.
 */
function cohortOf(queue: RawClusterQueue, file: string, field: string): CohortConfig {
  const defaults = fields.clusterQueues.items.properties;
  const limits = { borrowingLimit: queue.borrowingLimit, lendingLimit: queue.lendingLimit };
  for (const [name, limit] of Object.entries(limits)) {
    for (const [resource, value] of Object.entries(limit ?? {})) {
      if (!(resource in queue.quota)) {
        throw new ConfigError(file, `${field}.${name}.${resource}`, 'is no resource of the quota', `add "${resource}" to the quota, or remove it from ${name}`);
      }
      if (name === 'lendingLimit' && quantityValue(String(value)) > quantityValue(String(queue.quota[resource]))) {
        throw new ConfigError(file, `${field}.lendingLimit.${resource}`, `lends ${value}, more than the quota of ${queue.quota[resource]}`, 'lend at most the quota');
      }
    }
  }
  const reclaimWithinCohort = queue.reclaimWithinCohort ?? defaults.reclaimWithinCohort.default;
  const borrowWithinCohort = queue.borrowWithinCohort ?? defaults.borrowWithinCohort.default;
  if (borrowWithinCohort !== 'Never' && reclaimWithinCohort === 'Never') {
    throw new ConfigError(
      file,
      `${field}.borrowWithinCohort`,
      `is ${borrowWithinCohort} while reclaimWithinCohort is Never, which Kueue refuses: a ClusterQueue that preempts to borrow must let the others reclaim`,
      'set reclaimWithinCohort to LowerPriority or Any, or remove borrowWithinCohort',
    );
  }
  return {
    name: queue.cohort!,
    ...(limits.borrowingLimit ? { borrowingLimit: quantities(limits.borrowingLimit) } : {}),
    ...(limits.lendingLimit ? { lendingLimit: quantities(limits.lendingLimit) } : {}),
    reclaimWithinCohort,
    borrowWithinCohort,
  };
}

/** The cohort fields a ClusterQueue without a cohort sets: Kueue refuses limits outside a cohort, and the rest would do nothing. */
function checkStandalone(queue: RawClusterQueue, file: string, field: string): void {
  const cohortOnly = (['borrowingLimit', 'lendingLimit', 'reclaimWithinCohort', 'borrowWithinCohort'] as const).find((name) => queue[name] !== undefined && queue[name] !== 'Never');
  if (queue.cohort === undefined && cohortOnly) {
    throw new ConfigError(file, `${field}.${cohortOnly}`, 'applies to a ClusterQueue in a cohort, and this one has none', `add cohort: <name> to share quota with the other ClusterQueues of that cohort, or remove ${cohortOnly}`);
  }
}

type RawRule = NonNullable<RawConfig['rules']>[number];

/** A routing rule, checked against what it names: it must send the runs it matches somewhere they can be admitted. */
function ruleOf(
  rule: RawRule,
  field: string,
  file: string,
  known: { namespaces: readonly NamespaceConfig[]; tenants?: TenantNamespacesConfig; clusterQueues: readonly ClusterQueueConfig[]; priorities: readonly PriorityConfig[] },
): RuleConfig {
  const match = rule.match ?? {};
  (match.namespaces ?? []).forEach((name, j) => {
    if (!known.namespaces.some((ns) => ns.name === name)) {
      throw new ConfigError(file, `${field}.match.namespaces[${j}]`, `"${name}" is not a managed namespace, so the rule would never apply there`, `name one of ${JSON.stringify(known.namespaces.map((ns) => ns.name))}`);
    }
  });
  // Where the rule applies: the namespaces it names, or all, the tenant namespaces too.
  const scope = [
    ...known.namespaces.filter((ns) => match.namespaces?.includes(ns.name) ?? true).map((ns) => ({ where: `namespace ${ns.name}`, queues: ns.queues })),
    ...(known.tenants && !match.namespaces ? [{ where: 'the tenant namespaces', queues: known.tenants.queues }] : []),
  ];
  const { queue, priorityClass, requests } = rule.set;
  if (queue !== undefined) {
    const without = scope.filter((ns) => !ns.queues.some((q) => q.name === queue)).map((ns) => ns.where);
    if (without.length > 0) {
      throw new ConfigError(
        file,
        `${field}.set.queue`,
        `"${queue}" is no queue of ${without.join(', ')}, where the rule applies`,
        `limit the rule with match.namespaces to namespaces that have the queue, or add it to ${without.join(', ')}`,
      );
    }
  }
  if (priorityClass !== undefined && !known.priorities.some((p) => p.name === priorityClass)) {
    throw new ConfigError(file, `${field}.set.priorityClass`, `no priority named "${priorityClass}"`, `name one of ${JSON.stringify(known.priorities.map((p) => p.name))}, or add it under priorities`);
  }
  for (const resource of Object.keys(requests ?? {})) {
    if (resource.includes('/')) {
      throw new ConfigError(
        file,
        `${field}.set.requests.${resource}`,
        'names a resource with a domain, which a rule cannot ask for: it sets request annotations, and an annotation key holds one "/"',
        "give it in the defaultRequests of the rule's ClusterQueue",
      );
    }
    for (const ns of scope) {
      for (const q of ns.queues.filter((q) => queue === undefined || q.name === queue)) {
        const clusterQueue = known.clusterQueues.find((cq) => cq.name === q.clusterQueue)!;
        if (!(resource in clusterQueue.quota)) {
          throw new ConfigError(
            file,
            `${field}.set.requests.${resource}`,
            `is not covered by ClusterQueue ${clusterQueue.name} (queue ${q.name} of ${ns.where}), so a run the rule sends there would be refused`,
            `add "${resource}" to that ClusterQueue's quota, or limit the rule with match.namespaces or set.queue`,
          );
        }
      }
    }
  }
  const values = (map: Record<string, string | string[]> | undefined) => map && Object.fromEntries(Object.entries(map).map(([key, value]) => [key, typeof value === 'string' ? [value] : value]));
  return {
    name: rule.name,
    match: {
      ...(match.namespaces ? { namespaces: match.namespaces } : {}),
      ...(match.labels ? { labels: values(match.labels) } : {}),
      ...(match.annotations ? { annotations: values(match.annotations) } : {}),
      ...(match.pipelineRef ? { pipelineRef: match.pipelineRef } : {}),
    },
    set: { ...(queue ? { queue } : {}), ...(priorityClass ? { priorityClass } : {}), ...(requests ? { requests: quantities(requests) } : {}) },
    enforce: rule.enforce ?? fields.rules.items.properties.enforce.default,
  };
}

function optOutSubjects(subjects: Subject[], file: string): Subject[] {
  subjects.forEach((subject, i) => {
    if ((subject.kind === 'ServiceAccount') !== (subject.namespace !== undefined)) {
      throw new ConfigError(
        file,
        `optOut.subjects[${i}]`,
        subject.kind === 'ServiceAccount' ? `ServiceAccount "${subject.name}" has no namespace` : `a ${subject.kind} has no namespace, "${subject.namespace}" given`,
        subject.kind === 'ServiceAccount' ? 'add the namespace of the ServiceAccount' : 'remove namespace (users and groups are cluster-wide)',
      );
    }
  });
  return subjects;
}

function unique(file: string, field: string, names: string[]): void {
  const seen = new Set<string>();
  names.forEach((name, i) => {
    if (seen.has(name)) throw new ConfigError(file, `${field}[${i}].name`, `"${name}" is listed twice`, 'give each entry its own name');
    seen.add(name);
  });
}
