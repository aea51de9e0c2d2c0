import type { Config } from '../src/config/config.js';
import type { Dispatch, Route, Sizing } from '../src/gate/model.js';
import { MAX_EXEC_TIME_LABEL, MULTIKUEUE_CONTROLLER, PIPELINERUN_RESOURCE, PRIORITY_LABEL, QUEUE_LABEL } from '../src/gate/names.js';

/** Queue, priority, requests and time limit of a run, as the config says to read them. */
export function sizingOf(config: Config): Sizing {
  const defaultsOf = new Map(config.clusterQueues.map((cq) => [cq.name, cq.defaultRequests]));
  return {
    queue: {
      label: QUEUE_LABEL,
      defaults: config.namespaces.map((ns) => ({ namespace: ns.name, queue: ns.defaultQueue })),
      ...(config.tenants ? { tenantDefault: config.tenants.defaultQueue } : {}),
    },
    priority: {
      label: PRIORITY_LABEL,
      classes: config.priorities.map((p) => ({ name: p.name, value: p.value })),
      ...(config.defaultPriority ? { default: config.defaultPriority } : {}),
    },
    requests: {
      annotationPrefix: config.requestAnnotationPrefix,
      defaults: config.namespaces.flatMap((ns) => ns.queues.map((q) => ({ namespace: ns.name, queue: q.name, value: defaultsOf.get(q.clusterQueue)! }))),
      ...(config.tenants ? { tenantDefaults: config.tenants.queues.map((q) => ({ queue: q.name, value: defaultsOf.get(q.clusterQueue)! })) } : {}),
      fallback: config.fallbackRequests,
      fixed: { [PIPELINERUN_RESOURCE]: '1' },
    },
    maxExecutionTimeLabel: MAX_EXEC_TIME_LABEL,
  };
}

/** Where a MultiKueue manager's gate marks runs for dispatch: in the LocalQueues that feed a dispatching ClusterQueue. */
export function dispatchOf(config: Config): Dispatch | undefined {
  if (config.multiKueue?.role !== 'manager') return undefined;
  const dispatching = new Set(config.multiKueue.dispatching);
  return {
    rule: 'dispatch-to-worker',
    managedBy: MULTIKUEUE_CONTROLLER,
    queue: sizingOf(config).queue,
    queues: config.namespaces.flatMap((ns) => ns.queues.filter((q) => dispatching.has(q.clusterQueue)).map((q) => ({ namespace: ns.name, queue: q.name }))),
    tenantQueues: (config.tenants?.queues ?? []).filter((q) => dispatching.has(q.clusterQueue)).map((q) => q.name),
  };
}

/** The config's routing rules as routes: the queue and priority as the labels, the requests as the annotations the gate reads. */
export function routesOf(config: Config): Route[] {
  return config.rules.map((rule) => ({
    rule: `route-${rule.name}`,
    match: rule.match,
    labels: {
      ...(rule.set.queue ? { [QUEUE_LABEL]: rule.set.queue } : {}),
      ...(rule.set.priorityClass ? { [PRIORITY_LABEL]: rule.set.priorityClass } : {}),
    },
    annotations: Object.fromEntries(Object.entries(rule.set.requests ?? {}).map(([resource, quantity]) => [`${config.requestAnnotationPrefix}${resource}`, quantity])),
    enforce: rule.enforce,
  }));
}
