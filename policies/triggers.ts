import type { Config } from '../src/config/config.js';
import type { Trigger } from '../src/gate/model.js';
import { type ApiKind, GATED_LABEL } from '../src/gate/names.js';

/** Creation of `kind` in the managed namespaces. */
export function creationOf(kind: ApiKind, config: Config, labels?: Readonly<Record<string, string>>): Trigger {
  return { kind, operations: ['CREATE'], namespaces: config.namespaces.map((ns) => ns.name), ...(labels ? { labels } : {}) };
}

/** Status updates of `kind` in the managed namespaces, for objects of runs gated by `mechanism`. */
export function statusUpdatesOf(kind: ApiKind, config: Config, mechanism: 'customrun' | 'pending'): Trigger {
  return {
    kind,
    subresource: 'status',
    operations: ['UPDATE'],
    namespaces: config.namespaces.map((ns) => ns.name),
    labels: { [GATED_LABEL]: mechanism },
  };
}
