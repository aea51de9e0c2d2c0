import { readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import YAML from 'yaml';
import { CORE_SCHEMAS } from './core-schemas.js';
import { yamlFiles } from './crd-schemas.js';

export interface Finding {
  readonly file: string;
  readonly object: string;
  readonly message: string;
}

/**
 * A CRD's pattern (Go's RE2 syntax) as a JavaScript RegExp: Go's inline `(?i)`, which Kueue's CRDs
 * put after `^` for the whole pattern, becomes the `i` flag.
 */
const goPattern = Object.assign(
  (pattern: string, flags: string): RegExp => (pattern.includes('(?i)') ? new RegExp(pattern.replace('(?i)', ''), `${flags}i`) : new RegExp(pattern, flags)),
  // For ajv's standalone code, which this validator never generates.
  { code: 'new RegExp' },
);

/** Validates Kubernetes objects against strict schemas keyed by `apiVersion/kind`. */
export class ObjectValidator {
  private readonly ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, code: { regExp: goPattern } });
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(private readonly schemas: ReadonlyMap<string, Record<string, unknown>>) {}

  /** Problems of one object, as `path: message` lines; empty when valid. */
  check(object: unknown): string[] {
    const o = object as { apiVersion?: string; kind?: string; metadata?: { name?: string; generateName?: string } };
    if (!o || typeof o !== 'object' || !o.apiVersion || !o.kind) return ['not a Kubernetes object: apiVersion and kind are required'];
    const key = `${o.apiVersion}/${o.kind}`;
    const schema = this.schemas.get(key) ?? CORE_SCHEMAS.get(key);
    if (!schema) return [`no schema for ${key}: not a served version of the pinned CRDs`];
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = this.ajv.compile(schema);
      this.compiled.set(key, validate);
    }
    const problems: string[] = [];
    if (!o.metadata?.name && !o.metadata?.generateName) problems.push('/metadata: needs name or generateName');
    if (!validate(object)) {
      for (const e of validate.errors ?? []) {
        const extra = e.keyword === 'additionalProperties' ? ` "${String((e.params as { additionalProperty: string }).additionalProperty)}"` : '';
        problems.push(`${e.instancePath || '/'}: ${e.message}${extra}`);
      }
    }
    return problems;
  }
}

/** Validates every object of every YAML file under `dir`; kustomization files are checked for their resources. */
export function validateDir(dir: string, validator: ObjectValidator): { findings: Finding[]; objects: number } {
  const findings: Finding[] = [];
  let objects = 0;
  for (const path of yamlFiles(dir)) {
    const file = relative(process.cwd(), path) || path;
    for (const doc of YAML.parseAllDocuments(readFileSync(path, 'utf8'))) {
      if (doc.errors.length > 0) {
        findings.push({ file, object: '-', message: `invalid YAML: ${doc.errors[0]!.message}` });
        continue;
      }
      const object = doc.toJS() as { kind?: string; metadata?: { name?: string; namespace?: string }; resources?: string[] } | null;
      if (object === null) continue;
      if (object.kind === 'Kustomization') {
        for (const resource of object.resources ?? []) {
          try {
            statSync(join(path, '..', resource));
          } catch {
            findings.push({ file, object: 'Kustomization', message: `resource "${resource}" does not exist` });
          }
        }
        continue;
      }
      objects++;
      const name = `${object.kind}/${object.metadata?.namespace ? `${object.metadata.namespace}/` : ''}${object.metadata?.name ?? '?'}`;
      for (const message of validator.check(object)) findings.push({ file, object: name, message });
    }
  }
  return { findings, objects };
}
