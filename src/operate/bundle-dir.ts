/**
 * The bundle as `synth` lays it out: a root kustomization.yaml listing the components in the order
 * they are applied, each a folder with its own kustomization.yaml listing its files.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import YAML from 'yaml';

/** The label the bundle puts on every object it makes: `apply --prune` deletes only objects carrying it. */
export const BUNDLE_LABEL = { key: 'app.kubernetes.io/part-of', value: 'tekton-kueue-policies' } as const;

/** The annotation in which each policy of the bundle names the oldest Kyverno release it works on: `doctor` checks Kyverno against it. */
export const MIN_VERSION_ANNOTATION = 'policies.kyverno.io/minversion';

/** An object of the bundle, as the API server knows it. */
export interface BundleObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Readonly<Record<string, string>>; readonly annotations?: Readonly<Record<string, string>> };
  readonly [field: string]: unknown;
}

/** An object of the bundle and the file it came from, relative to the bundle's folder. */
export interface BundleEntry {
  readonly file: string;
  readonly object: BundleObject;
}

export interface Component {
  readonly name: string;
  readonly entries: readonly BundleEntry[];
}

/** A bundle folder that cannot be read: the message names the file and what to do. */
export class BundleError extends Error {}

function resourcesOf(dir: string, shown: string): string[] {
  const file = join(dir, 'kustomization.yaml');
  if (!existsSync(file)) throw new BundleError(`${shown}/kustomization.yaml: not found; pass the folder \`npm run synth\` wrote (dist/ by default)`);
  const resources = (YAML.parse(readFileSync(file, 'utf8')) as { resources?: unknown } | null)?.resources;
  if (!Array.isArray(resources) || !resources.every((r) => typeof r === 'string')) {
    throw new BundleError(`${shown}/kustomization.yaml: field resources must list the folder's files; run \`npm run synth\` again`);
  }
  return resources;
}

/** The components of the bundle in `dir`, in the order of its root kustomization.yaml. */
export function readBundle(dir: string): Component[] {
  return resourcesOf(dir, dir).map((name) => {
    const folder = join(dir, name);
    const entries = resourcesOf(folder, join(dir, name)).flatMap((file) => {
      const path = join(folder, file);
      const shown = relative(dir, path);
      if (!existsSync(path)) throw new BundleError(`${join(dir, shown)}: listed in ${join(dir, name)}/kustomization.yaml but missing; run \`npm run synth\` again`);
      return YAML.parseAllDocuments(readFileSync(path, 'utf8')).map((doc, index) => {
        if (doc.errors.length > 0) throw new BundleError(`${join(dir, shown)}: document ${index + 1} is not valid YAML: ${doc.errors[0]!.message}`);
        const object = doc.toJS() as Partial<BundleObject> | null;
        if (!object?.apiVersion || !object.kind || !object.metadata?.name) {
          throw new BundleError(`${join(dir, shown)}: document ${index + 1} has no apiVersion, kind or metadata.name; run \`npm run synth\` again`);
        }
        return { file: shown, object: object as BundleObject };
      });
    });
    return { name, entries };
  });
}

/** How an object is named in messages: `Kind namespace/name`, or `Kind name` when cluster-scoped. */
export function describe(object: Pick<BundleObject, 'kind' | 'metadata'>): string {
  const { name, namespace } = object.metadata;
  return `${object.kind} ${namespace ? `${namespace}/` : ''}${name}`;
}

/** One key per object: the same for the bundle's copy and the cluster's. */
export function keyOf(object: Pick<BundleObject, 'apiVersion' | 'kind' | 'metadata'>): string {
  return `${object.apiVersion}/${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`;
}
