/**
 * Objects of the control plane read and written through @kubernetes/client-node: one HTTPS
 * connection for every poll, instead of a kubectl process each.
 */
import { KubeConfig, KubernetesObjectApi, PatchStrategy, Watch } from '@kubernetes/client-node';
import { type ApiKind, apiPathOfAll } from '../../src/gate/names.js';

export type Condition = { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string };

/** The shape of every object the scenarios look at. */
export interface Obj {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; generateName?: string; namespace?: string; uid?: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string }[] };
  spec?: any;
  status?: { conditions?: Condition[] } & Record<string, any>;
}

export const POD: ApiKind = { apiVersion: 'v1', kind: 'Pod' };
export const EVENT: ApiKind = { apiVersion: 'v1', kind: 'Event' };
export const SERVICE_ACCOUNT: ApiKind = { apiVersion: 'v1', kind: 'ServiceAccount' };
/** Kyverno's record of work for its background controller, in Kyverno's namespace. */
export const UPDATE_REQUEST: ApiKind = { apiVersion: 'kyverno.io/v2', kind: 'UpdateRequest' };

function notFound(err: unknown): boolean {
  return (err as { code?: number }).code === 404;
}

export class Objects {
  private readonly api: KubernetesObjectApi;
  private readonly config: KubeConfig;

  constructor(kubeconfig: string) {
    this.config = new KubeConfig();
    this.config.loadFromFile(kubeconfig);
    this.api = KubernetesObjectApi.makeApiClient(this.config);
  }

  /** The object, or undefined when there is none. */
  async get<T extends Obj = Obj>(kind: ApiKind, namespace: string | undefined, name: string): Promise<T | undefined> {
    try {
      return (await this.api.read({ apiVersion: kind.apiVersion, kind: kind.kind, metadata: { name, namespace } })) as T;
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
  }

  async list<T extends Obj = Obj>(kind: ApiKind, namespace?: string, labelSelector?: string): Promise<T[]> {
    const list = await this.api.list(kind.apiVersion, kind.kind, namespace, undefined, undefined, undefined, undefined, labelSelector);
    return list.items as T[];
  }

  async create<T extends Obj>(object: T): Promise<T> {
    return (await this.api.create(object)) as T;
  }

  /** A JSON merge patch (`null` removes a field). */
  async patch<T extends Obj = Obj>(kind: ApiKind, namespace: string | undefined, name: string, patch: Record<string, unknown>): Promise<T> {
    const spec = { ...patch, apiVersion: kind.apiVersion, kind: kind.kind, metadata: { ...(patch.metadata as object | undefined), name, namespace } };
    return (await this.api.patch(spec, undefined, undefined, 'e2e', undefined, PatchStrategy.MergePatch)) as T;
  }

  /** Every object of `kind` created in `namespace` until `done` settles, short-lived ones included. */
  async createdDuring<T extends Obj = Obj>(kind: ApiKind, namespace: string, done: Promise<unknown>): Promise<T[]> {
    const existing = new Set((await this.list(kind, namespace)).map((o) => o.metadata.name));
    const created = new Map<string, T>();
    // The watch first lists what is there (ADDED too): what was there before is left out.
    const watch = await this.watch<T>(kind, namespace, (phase, object) => {
      if (phase === 'ADDED') created.set(object.metadata.name, object);
    });
    try {
      await done;
    } finally {
      watch.abort();
    }
    return [...created.values()].filter((o) => !existing.has(o.metadata.name));
  }

  /** Calls `seen` for every change of an object of `kind` in `namespace` (ADDED for those there first) until aborted. */
  watch<T extends Obj = Obj>(kind: ApiKind, namespace: string, seen: (phase: string, object: T) => void): Promise<AbortController> {
    return new Watch(this.config).watch(apiPathOfAll(kind, namespace), {}, seen, () => undefined);
  }

  async delete(kind: ApiKind, namespace: string | undefined, name: string): Promise<void> {
    try {
      await this.api.delete({ apiVersion: kind.apiVersion, kind: kind.kind, metadata: { name, namespace } }, undefined, undefined, undefined, undefined, 'Background');
    } catch (err) {
      if (!notFound(err)) throw err;
    }
  }
}

export function condition(object: Obj | undefined, type: string): Condition | undefined {
  return object?.status?.conditions?.find((c) => c.type === type);
}

/** A run (or CustomRun) has ended, whichever way: its `Succeeded` condition is True or False. */
export function ended(run: Obj | undefined): boolean {
  return ['True', 'False'].includes(condition(run, 'Succeeded')?.status ?? '');
}
