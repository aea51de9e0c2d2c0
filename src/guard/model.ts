/**
 * The tenant guard as data: who may do what to the gate's objects in a managed namespace. A
 * renderer (validating-admission-policy.ts) turns it into policies the API server evaluates itself,
 * so it holds while Kyverno is down. The gate (src/gate/model.ts) holds runs back; the guard keeps
 * tenants from undoing that.
 */
import type { LabelValue, Namespaces } from '../gate/model.js';
import type { ApiKind } from '../gate/names.js';
import type { StatusWrites } from '../gate/status-writes.js';

/** A verb on a resource of an API group, as RBAC grants it and the API server's authorizer checks it. */
export interface Permission {
  readonly group: string;
  readonly resource: string;
  readonly verb: string;
}

/** How the gate holds a run back, as the guard needs to recognise it. */
export interface GatedRun {
  readonly kind: ApiKind;
  /** The gate's label on the runs it gated, and its values per mechanism. */
  readonly gatedLabel: string;
  /** Which runs each mechanism gates: `all`, `inline` (runs with inline tasks) or `none` (not used). */
  readonly mechanisms: { readonly customrun: 'all' | 'inline' | 'none'; readonly pending: 'all' | 'non-inline' | 'none' };
  /** The gate task at the head of an inline run's tasks, and the custom-task kind in its taskSpec. */
  readonly gateTask: string;
  readonly customTask: ApiKind;
  /** The `when` expression input every finally task of a customrun-gated run tests. */
  readonly finallyWhenInput: string;
  readonly pendingStatus: string;
  readonly heldBy: LabelValue;
  /** `spec.status` that cancels a run without running its finally tasks. */
  readonly cancelStatus: string;
  /** `spec.status` values that stop a run but run its finally tasks. */
  readonly finallyStatuses: readonly string[];
  /**
   * MultiKueue's label on a copy of a run from the manager cluster (which runs under a Workload the
   * manager made): the gate leaves such a run alone, so only the manager may set it.
   * @default - the cluster is no MultiKueue worker: the label means nothing to the gate
   */
  readonly dispatchedLabel?: string;
}

/** Names of the rules, which every refusal message starts with. */
export interface GuardRules {
  /** Only subjects granted `optOut` may opt a run out. */
  readonly optOutGranted: string;
  /** A run reaches the API server gated (the gate's mutation ran), or opted out. */
  readonly gatedAtCreation: string;
  /** No run is created stopping or cancelling with its finally tasks (they would run unadmitted). */
  readonly noStopAtCreation: string;
  /** The gate's label never changes. */
  readonly gateLabelKept: string;
  /** The gate's hold annotation is never removed or changed (it appears when a user's release becomes the gate's hold). */
  readonly holdKept: string;
  /** Only the gate releases a run held pending; anyone may cancel it. */
  readonly releasedByGate: string;
  /** The gate task of a customrun-gated run stays in place. */
  readonly gateTaskKept: string;
  /** TaskRuns and CustomRuns are created by Tekton (or by a subject granted `optOut`). */
  readonly childrenByTekton: string;
  /** Only the gate opens a gate CustomRun. */
  readonly gateOpenedByGate: string;
  /** Only a MultiKueue manager creates a run under a Workload it made (a worker only). */
  readonly dispatchedByManager: string;
}

export interface TenantGuard {
  /** Prefix of the policies' names. */
  readonly name: string;
  readonly namespaces: Namespaces;
  /**
   * Usernames of the gate (Kyverno's background controller), of Tekton's controller, and on a
   * MultiKueue worker of the manager's Kueue, which creates there the runs the manager's gate held.
   */
  readonly identities: { readonly gate: readonly string[]; readonly tekton: readonly string[]; readonly multiKueueManager?: readonly string[] };
  readonly optOut: { readonly label: string; readonly permission: Permission; readonly clusterRole: string };
  readonly run: GatedRun;
  /** The Kyverno policy that gates a run at its creation: its name, and its resource as kubectl names it (`clusterpolicy`). */
  readonly gatePolicy: { readonly resource: string; readonly name: string };
  readonly taskRun: ApiKind;
  readonly customRun: ApiKind;
  readonly rules: GuardRules;
}

/**
 * The status of objects another controller writes too (Kueue, of a Workload), as the gate may
 * change it: the conditions its steps set, and in a state what its steps change in it. Kyverno
 * writes the target of a MutatingPolicy whole, as it evaluated it, with the resource version of a
 * read it makes just before (`Process` in `pkg/background/mpol/processor.go`, 1.19): a write of the
 * other controller's in between would be undone. The API server refuses such a write instead, and
 * Kyverno runs the step again from a fresh read.
 */
export interface StatusKept {
  /** Name of the policy and its binding. */
  readonly name: string;
  readonly kind: ApiKind;
  /** The other controller, as refusals name it. */
  readonly owner: string;
  /** Usernames of the gate (Kyverno's background controller): only their writes are checked. */
  readonly gate: readonly string[];
  /** Label keys every object of the gate's has (only those are checked). */
  readonly labelKeys: readonly string[];
  /** The fields of the status besides its conditions. */
  readonly fields: readonly string[];
  readonly writes: StatusWrites;
}
