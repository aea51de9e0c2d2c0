/**
 * What `apply` would change: each object the cluster has applied as a server dry run (defaults,
 * webhooks and field ownership as the real apply gets them) and compared with it.
 */
import type { KubernetesObject, KubernetesObjectApi } from '@kubernetes/client-node';
import { applyObject, inApplyOrder, liveObject, staleObjects } from './apply.js';
import { type BundleObject, type Component, describe } from './bundle-dir.js';

export interface Difference {
  readonly change: 'create' | 'update' | 'delete';
  readonly object: string;
  readonly file?: string;
  /** For an update: each changed field as `path: live → applied`. */
  readonly fields: readonly string[];
}

/** How long a dry run may be tried again on a transient failure. */
const DIFF_TIMEOUT_SECONDS = 30;

/** Fields the API server keeps for itself; a change in them is none of the bundle's. */
const SERVER_FIELDS = ['managedFields', 'resourceVersion', 'generation', 'creationTimestamp', 'uid'];

/** Every leaf of the object (status aside) as `path → JSON value`. */
function leaves(value: unknown, path = '', out = new Map<string, string>()): Map<string, string> {
  if (value !== null && typeof value === 'object' && Object.keys(value).length > 0) {
    for (const [key, child] of Object.entries(value)) {
      if (path === '' && key === 'status') continue;
      if (path === 'metadata' && SERVER_FIELDS.includes(key)) continue;
      leaves(child, path === '' ? key : Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`, out);
    }
  } else {
    out.set(path, JSON.stringify(value));
  }
  return out;
}

/** The fields that differ between the live object and the applied one. */
export function changedFields(live: KubernetesObject, applied: KubernetesObject): string[] {
  const before = leaves(live);
  const after = leaves(applied);
  const paths = [...new Set([...before.keys(), ...after.keys()])].sort();
  return paths.filter((p) => before.get(p) !== after.get(p)).map((p) => `${p}: ${before.get(p) ?? '(none)'} → ${after.get(p) ?? '(none)'}`);
}

export async function diffBundle(api: KubernetesObjectApi, components: readonly Component[], prune: boolean): Promise<Difference[]> {
  const differences: Difference[] = [];
  for (const component of inApplyOrder(components)) {
    for (const entry of component.entries) {
      const live = await liveObject(api, entry);
      const object = describe(entry.object);
      // A new object is not dry-run: its namespace, or the permissions Kyverno checks, may come with the same apply.
      if (!live) differences.push({ change: 'create', object, file: entry.file, fields: [] });
      else {
        const fields = changedFields(live, await applyObject(api, entry, { dryRun: true, timeoutSeconds: DIFF_TIMEOUT_SECONDS }));
        if (fields.length > 0) differences.push({ change: 'update', object, file: entry.file, fields });
      }
    }
  }
  if (prune) {
    for (const object of await staleObjects(api, components)) differences.push({ change: 'delete', object: describe(object as BundleObject), fields: [] });
  }
  return differences;
}

/** The differences as lines for people: `+` create, `~` update with its fields, `-` delete. */
export function formatDifferences(differences: readonly Difference[]): string[] {
  const sign = { create: '+', update: '~', delete: '-' } as const;
  return differences.flatMap((d) => [`${sign[d.change]} ${d.object}${d.file ? ` (${d.file})` : ''}`, ...d.fields.map((f) => `    ${f}`)]);
}
