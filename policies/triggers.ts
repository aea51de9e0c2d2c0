import { type Config, mechanismsOf } from '../src/config/config.js';
import type { Hold, Namespaces, OnCondition, Target, TargetName, Trigger } from '../src/gate/model.js';
import { type ApiKind, CUSTOM_RUN, GATE_TASK, GATED_LABEL, HELD_BY_GATE, MULTIKUEUE_CONTROLLER, MULTIKUEUE_ORIGIN_LABEL, PENDING_STATUS, PIPELINE_RUN, PIPELINE_RUN_LABEL, WORKLOAD } from '../src/gate/names.js';

/** How a run is held back: the two mechanisms the strategies combine. */
export type Mechanism = 'customrun' | 'pending';

/** The mechanisms the configured strategy uses, in a stable order. */
export function mechanismsIn(config: Config): Mechanism[] {
  const { customRun, pending } = mechanismsOf(config.strategy);
  return [...(customRun ? ['customrun' as const] : []), ...(pending ? ['pending' as const] : [])];
}

/**
 * The managed namespaces: the listed ones, or, when the config selects tenant namespaces by label,
 * every namespace with those labels (the bundle gives the listed ones the labels too).
 */
export function managedNamespaces(config: Config): Namespaces {
  return config.tenants ? { labels: config.tenants.labels } : { names: config.namespaces.map((ns) => ns.name) };
}

/** Creation of `kind` in the managed namespaces. */
export function creationOf(kind: ApiKind, config: Config, labels?: Readonly<Record<string, string>>): Trigger {
  return { kind, operations: ['CREATE'], namespaces: managedNamespaces(config), ...(labels ? { labels } : {}) };
}

/**
 * Creation of a PipelineRun in the managed namespaces, unless opted out (which the tenant guard
 * grants by RBAC), or, on a MultiKueue worker, a copy of a run the manager's gate held (which only
 * the manager may create).
 */
export function runCreation(config: Config): Trigger {
  return {
    ...creationOf(PIPELINE_RUN, config),
    unlessLabels: { [config.optOut.label]: 'true' },
    ...(config.multiKueue?.role === 'worker' ? { unlessLabelKeys: [MULTIKUEUE_ORIGIN_LABEL] } : {}),
  };
}

/** Creation, on a MultiKueue worker, of the copy of a run the manager's gate held. */
export function dispatchedRunCreation(config: Config): Trigger {
  return { ...creationOf(PIPELINE_RUN, config), labelKeys: [MULTIKUEUE_ORIGIN_LABEL] };
}

/** A run the gate holds pending: created so, or released by its user and held by the gate then. */
export function heldRun(config: Config): Trigger {
  return {
    ...runCreation(config),
    operations: ['CREATE', 'UPDATE'],
    labels: { [GATED_LABEL]: 'pending' },
    change: { annotationAdded: HELD_BY_GATE.key },
  };
}

/** Status updates of `kind` in the managed namespaces, for objects of runs gated by `mechanism`. */
export function statusUpdatesOf(kind: ApiKind, config: Config, mechanism: Mechanism): Trigger {
  return {
    kind,
    subresource: 'status',
    operations: ['UPDATE'],
    namespaces: managedNamespaces(config),
    labels: { [GATED_LABEL]: mechanism },
  };
}

/**
 * Status updates of a run still waiting for its Workload's admission: at its gate task, or held
 * pending by the gate. Tekton writes them right after it has seen the run, or the gate's CustomRun,
 * stored: a step on them makes up for one that missed the creation.
 */
export function waitingRunStatus(config: Config, mechanism: Mechanism): Trigger {
  return {
    ...statusUpdatesOf(PIPELINE_RUN, config, mechanism),
    state: mechanism === 'customrun' ? { atGate: GATE_TASK } : { heldPending: { heldBy: HELD_BY_GATE, pendingStatus: PENDING_STATUS } },
  };
}

/**
 * Kueue admitted the Workload, and still has when the step runs: the admission event may be stale
 * by then, and a Workload evicted or finished meanwhile must not let its run go.
 */
export const ADMITTED_STILL: OnCondition = { condition: 'Admitted', statuses: ['True'], recheck: { unlessTrue: ['Evicted', 'Finished'] } };

/**
 * The Workload of a gated PipelineRun, seen from the run: named after the gate's CustomRun, whose
 * name Tekton may have shortened (read from the run's childReferences, never rebuilt), or after the
 * run. The way back: the Workload's run label, and every such Workload has the mechanism's gated label.
 */
export function workloadOfRun(mechanism: Mechanism): Target {
  return {
    kind: WORKLOAD,
    name: mechanism === 'customrun' ? { from: 'child', pipelineTask: GATE_TASK } : { from: 'self' },
    fromTarget: { triggerName: { from: 'label', key: PIPELINE_RUN_LABEL }, labels: { [GATED_LABEL]: mechanism } },
  };
}

/**
 * The run of a mechanism's Workload, as the Workload names it (`name`), and the way back to the
 * Workload: every such run has the mechanism's gated label.
 */
export function runOfWorkload(mechanism: Mechanism, name: TargetName): Target {
  return { kind: PIPELINE_RUN, name, fromTarget: { triggerName: workloadOfRun(mechanism).name, labels: { [GATED_LABEL]: mechanism } } };
}

/**
 * What holds the run of a gate Workload back, seen from the Workload (its owner, or its run label);
 * on a MultiKueue manager, a run dispatched to a worker is held here all along.
 */
export function holdOfWorkload(mechanism: Mechanism, config: Config): Hold {
  return mechanism === 'customrun'
    ? { by: 'gate', gate: { kind: CUSTOM_RUN, name: { from: 'owner' } } }
    : {
        by: 'pending',
        run: { kind: PIPELINE_RUN, name: { from: 'label', key: PIPELINE_RUN_LABEL } },
        pendingStatus: PENDING_STATUS,
        ...(config.multiKueue?.role === 'manager' ? { dispatchedBy: MULTIKUEUE_CONTROLLER } : {}),
      };
}

/** An update of a gated-pending run changing its `spec.status` so (the user's release of a run they created pending). */
export function statusChangeOf(config: Config, specStatus: { from: string; to: string }): Trigger {
  return { ...creationOf(PIPELINE_RUN, config), operations: ['UPDATE'], labels: { [GATED_LABEL]: 'pending' }, change: { specStatus } };
}
