/**
 * JSON Schemas for strict validation, made from the pinned upstream CRDs. The API server prunes
 * or rejects fields its schema does not know; ajv sees them as `additionalProperties: false`.
 * CEL rules (`x-kubernetes-validations`) need an API server and are left to the e2e suite.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';

type Schema = Record<string, unknown>;

/** Go modules that ship the pinned CRDs, for machines without `../shared/crds`. */
export const CRD_MODULES = [
  { module: 'github.com/kyverno/kyverno@v1.19.0', dir: 'config/crds' },
  { module: 'sigs.k8s.io/kueue@v0.19.2', dir: 'config/components/crd/bases' },
  { module: 'github.com/tektoncd/pipeline@v1.15.0', dir: 'config/300-crds' },
] as const;

/** Folders holding the CRDs: the given one, else `../shared/crds` beside the project, else the Go module cache. */
export function crdFolders(projectRoot: string, explicit?: string): string[] {
  if (explicit) return [explicit];
  const shared = join(projectRoot, '..', 'shared', 'crds');
  if (existsSync(shared)) return [shared];
  try {
    return CRD_MODULES.map(({ module, dir }) => {
      const info = JSON.parse(execFileSync('go', ['mod', 'download', '-json', module], { encoding: 'utf8' })) as { Dir: string };
      return join(info.Dir, dir);
    });
  } catch (err) {
    throw new Error(`no CRDs to validate against: ${shared} is missing and "go mod download" failed (${(err as Error).message.split('\n')[0]}); pass --crds DIR`);
  }
}

/** Every YAML file under `folder`, in a stable order. */
export function yamlFiles(folder: string): string[] {
  return readdirSync(folder)
    .sort()
    .flatMap((name) => {
      const path = join(folder, name);
      if (statSync(path).isDirectory()) return yamlFiles(path);
      return /\.ya?ml$/.test(name) ? [path] : [];
    });
}

/** `apiVersion/kind` → JSON Schema of every served version of every CRD found under `folders`. */
export function loadCrdSchemas(folders: readonly string[]): Map<string, Schema> {
  const schemas = new Map<string, Schema>();
  for (const file of folders.flatMap(yamlFiles)) {
    for (const doc of YAML.parseAllDocuments(readFileSync(file, 'utf8'))) {
      const crd = doc.toJS() as { kind?: string; spec?: { group: string; names: { kind: string }; versions: { name: string; served: boolean; schema?: { openAPIV3Schema: Schema } }[] } } | null;
      if (crd?.kind !== 'CustomResourceDefinition' || !crd.spec) continue;
      for (const version of crd.spec.versions) {
        if (!version.served || !version.schema) continue;
        schemas.set(`${crd.spec.group}/${version.name}/${crd.spec.names.kind}`, toStrictSchema(version.schema.openAPIV3Schema, true));
      }
    }
  }
  return schemas;
}

const OBJECT_META: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', maxLength: 253 },
    generateName: { type: 'string' },
    namespace: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 },
    labels: { type: 'object', additionalProperties: { type: 'string', maxLength: 63 } },
    annotations: { type: 'object', additionalProperties: { type: 'string' } },
    uid: { type: 'string' },
    resourceVersion: { type: 'string' },
    generation: { type: 'integer' },
    creationTimestamp: { type: ['string', 'null'] },
    deletionTimestamp: { type: 'string' },
    finalizers: { type: 'array', items: { type: 'string' } },
    managedFields: { type: 'array' },
    ownerReferences: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['apiVersion', 'kind', 'name', 'uid'],
        properties: {
          apiVersion: { type: 'string' },
          kind: { type: 'string' },
          name: { type: 'string' },
          uid: { type: 'string' },
          controller: { type: 'boolean' },
          blockOwnerDeletion: { type: 'boolean' },
        },
      },
    },
  },
};

/** Converts an OpenAPI v3 structural schema to a JSON Schema that rejects unknown fields. */
export function toStrictSchema(openapi: Schema, root = false): Schema {
  const out: Schema = {};
  for (const [key, value] of Object.entries(openapi)) {
    if (key.startsWith('x-kubernetes-') || key === 'nullable' || key === 'format' || key === 'description') continue;
    if (key === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, Schema>).map(([name, sub]) => [name, root && name === 'metadata' ? OBJECT_META : toStrictSchema(sub)]),
      );
    } else if (key === 'items' || key === 'additionalProperties' || key === 'not') {
      out[key] = typeof value === 'object' ? toStrictSchema(value as Schema) : value;
    } else if (key === 'allOf' || key === 'anyOf' || key === 'oneOf') {
      out[key] = (value as Schema[]).map((s) => toStrictSchema(s));
    } else {
      out[key] = value;
    }
  }
  if (openapi['x-kubernetes-int-or-string']) {
    delete out.type;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  if (openapi.nullable && typeof out.type === 'string') out.type = [out.type, 'null'];
  if (openapi['x-kubernetes-embedded-resource']) {
    out.properties = { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: OBJECT_META, ...(out.properties as Schema) };
  }
  const keepsUnknown = openapi['x-kubernetes-preserve-unknown-fields'] === true;
  if (out.type === 'object' && !keepsUnknown && out.additionalProperties === undefined) {
    out.additionalProperties = false;
    out.properties ??= {};
  }
  return out;
}
