/**
 * What the gate's steps write in the status of objects of a kind, derived from the steps, so that a
 * check of the gate's writes (the guard's `StatusKept`) cannot drift from what the steps do.
 */
import type { PolicyDefinition } from './model.js';
import { type ApiKind, kindKey, UNRESERVED_CONDITIONS } from './names.js';

/** While the object has `condition` in `statuses`, a step also sets `conditions` and removes the status fields `removes`. */
export interface StateWrites {
  readonly condition: string;
  readonly statuses: readonly string[];
  readonly conditions: readonly string[];
  readonly removes: readonly string[];
}

export interface StatusWrites {
  /** Condition types some step sets, whatever the object's state. */
  readonly conditions: readonly string[];
  readonly inState: readonly StateWrites[];
}

export function statusWritesOn(kind: ApiKind, policies: readonly PolicyDefinition[]): StatusWrites {
  const of = (other: ApiKind) => kindKey(other) === kindKey(kind);
  const steps = policies.flatMap((policy) => policy.steps);
  const conditions = steps.flatMap((step) => (step.type === 'set-condition' && of(step.target.kind) ? [step.set.type] : []));
  const inState = steps.flatMap((step) =>
    step.type === 'requeue-workload' && of(step.trigger.kind) ? [{ condition: step.when.condition, statuses: step.when.statuses, conditions: UNRESERVED_CONDITIONS, removes: ['admission'] }] : [],
  );
  return { conditions: [...new Set(conditions)].sort(), inState: [...new Map(inState.map((writes) => [JSON.stringify(writes), writes])).values()] };
}
