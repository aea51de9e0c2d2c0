import { readFileSync } from 'node:fs';
import type { ErrorObject } from 'ajv';
import type { FromSchema } from 'json-schema-to-ts';
import YAML from 'yaml';
import { PIPELINERUN_RESOURCE } from '../gate/names.js';
import type { Config, ResourceList, Subject } from './config.js';
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
    // A failed oneOf is reported after the failures of each branch; it is the one a user can act on.
    throw schemaError(file, errors.find((e) => e.keyword === 'oneOf') ?? errors[0]!);
  }
  return crossCheck(raw, file);
}

function schemaError(file: string, error: ErrorObject): ConfigError {
  const field = error.instancePath.slice(1).replace(/\/(\d+)(?=\/|$)/g, '[$1]').replace(/\//g, '.');
  const params = error.params as Record<string, unknown>;
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
    default:
      return new ConfigError(file, field, error.message ?? 'invalid value', 'see the config reference in README.md');
  }
}

function quantities(list: Readonly<Record<string, string | number>>): ResourceList {
  return Object.fromEntries(Object.entries(list).map(([name, value]) => [name, String(value)]));
}

function crossCheck(raw: RawConfig, file: string): Config {
  const fallbackRequests = quantities(raw.requests?.defaults ?? fields.requests.properties.defaults.default);
  const clusterQueues = raw.clusterQueues.map((queue, i) => {
    const defaultRequests = queue.defaultRequests ? quantities(queue.defaultRequests) : fallbackRequests;
    for (const resource of [...Object.keys(defaultRequests), PIPELINERUN_RESOURCE]) {
      if (!(resource in queue.quota)) {
        throw new ConfigError(file, `clusterQueues[${i}].quota`, `does not cover "${resource}", which every run queued here requests`, `add "${resource}" to the quota (Kueue never admits a Workload whose requests its ClusterQueue does not cover)`);
      }
    }
    return { name: queue.name, quota: quantities(queue.quota), defaultRequests, preemption: queue.preemption ?? fields.clusterQueues.items.properties.preemption.default };
  });
  unique(file, 'clusterQueues', clusterQueues.map((q) => q.name));

  const known = new Set(clusterQueues.map((q) => q.name));
  clusterQueues.forEach((queue, i) => {
    if (!raw.namespaces.some((ns) => ns.queues.some((q) => q.clusterQueue === queue.name))) {
      throw new ConfigError(file, `clusterQueues[${i}]`, `ClusterQueue "${queue.name}" is used by no namespace queue`, 'point a namespaces[].queues[] entry at it, or remove it');
    }
  });
  const namespaces = raw.namespaces.map((ns, i) => {
    unique(file, `namespaces[${i}].queues`, ns.queues.map((q) => q.name));
    ns.queues.forEach((queue, j) => {
      if (!known.has(queue.clusterQueue)) {
        throw new ConfigError(file, `namespaces[${i}].queues[${j}].clusterQueue`, `no ClusterQueue named "${queue.clusterQueue}"`, `name one of ${JSON.stringify([...known])} or add it under clusterQueues`);
      }
    });
    const defaultQueue = ns.defaultQueue ?? ns.queues[0]!.name;
    if (!ns.queues.some((q) => q.name === defaultQueue)) {
      throw new ConfigError(file, `namespaces[${i}].defaultQueue`, `"${defaultQueue}" is not one of this namespace's queues`, 'name one of its queues, or leave it out to use the first');
    }
    return { name: ns.name, queues: ns.queues, defaultQueue };
  });
  unique(file, 'namespaces', namespaces.map((ns) => ns.name));

  const priorities = raw.priorities ?? [];
  unique(file, 'priorities', priorities.map((p) => p.name));
  if (raw.defaultPriority !== undefined && !priorities.some((p) => p.name === raw.defaultPriority)) {
    throw new ConfigError(file, 'defaultPriority', `no priority named "${raw.defaultPriority}"`, 'name one of the priorities, or leave it out');
  }

  return {
    strategy: raw.strategy ?? fields.strategy.default,
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
    priorities,
    defaultPriority: raw.defaultPriority,
    samples: raw.samples ?? fields.samples.default,
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
