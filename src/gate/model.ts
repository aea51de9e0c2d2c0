/**
 * The gate as data, free of any policy language: what each step of the flow reacts to, what it
 * checks and what it changes. A dialect (Kyverno's `kyverno.io/v1` ClusterPolicy, or its CEL
 * policies) renders a step into policy text; RBAC is derived from the same steps, so the two
 * cannot drift apart.
 */
import type { ResourceList } from '../config/config.js';
import type { ApiKind } from './names.js';

export type Operation = 'CREATE' | 'UPDATE';

/** What an update must change for a step to care (the other updates never reach the policy engine). */
export type Change =
  /** `spec.status` goes from `from` to `to` (`''`: removed). */
  | { readonly specStatus: { readonly from: string; readonly to: string } }
  /** The annotation appears. */
  | { readonly annotationAdded: string };

/**
 * What the object must be when the event comes, whatever the event changed: a step so triggered
 * acts on any later event of an object still in that state, and so makes up for an event it missed.
 */
export type State =
  /** The gate holds the run pending: its annotation is on, `spec.status` still the pending status. */
  | { readonly heldPending: { readonly heldBy: LabelValue; readonly pendingStatus: string } }
  /** The run has not ended and its only child is the one of this pipeline task, its gate. */
  | { readonly atGate: string };

/** Namespaces listed by name, or every namespace that carries all of `labels`. */
export type Namespaces = { readonly names: readonly string[] } | { readonly labels: Readonly<Record<string, string>> };

/** The admission requests that start a step. */
export interface Trigger {
  readonly kind: ApiKind;
  /** Set when the step reacts to updates of the subresource (controllers write status there). */
  readonly subresource?: 'status';
  readonly operations: readonly Operation[];
  /** Namespaces the step acts in; none for a cluster-scoped kind. */
  readonly namespaces?: Namespaces;
  /** Only objects carrying all these labels start the step. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Only objects carrying none of these labels with these values start the step. */
  readonly unlessLabels?: Readonly<Record<string, string>>;
  /** Only objects carrying each of these labels, whatever its value, start the step. */
  readonly labelKeys?: readonly string[];
  /** Only objects carrying none of these labels, whatever its value, start the step. */
  readonly unlessLabelKeys?: readonly string[];
  /** Only Workloads that Kueue holds to this AdmissionCheck (named in their `status.admissionChecks`) start the step. */
  readonly admissionCheck?: string;
  /** On UPDATE, only this change starts the step. */
  readonly change?: Change;
  /** Only objects in this state start the step. */
  readonly state?: State;
}

/**
 * How Kubernetes should treat the step when the policy engine cannot be reached. `Fail` blocks the
 * request (no run slips through ungated); `Ignore` lets it pass and relies on later reconciliation.
 */
export type FailurePolicy = 'Fail' | 'Ignore';

/** A label key and the value the gate gives it. */
export interface LabelValue {
  readonly key: string;
  readonly value: string;
}

interface StepBase {
  /** Rule name, unique within its policy. */
  readonly rule: string;
  readonly trigger: Trigger;
}

/**
 * Steps at a run's creation. The gate writes its label itself, whatever the run came with: a label
 * a user set proves nothing (opting out is the trigger's `unlessLabels`, which the tenant guard
 * grants by RBAC).
 */
interface OnCreate extends StepBase {
  /** Label put on every run the step gates, so later steps consider gated runs only. */
  readonly gatedLabel: LabelValue;
}

/**
 * Strategy `customrun`: make an inline-spec PipelineRun wait for a gate task before any of its own
 * tasks. The gate is the bundle's own: tasks a user named like it are dropped first, so no run
 * brings a gate that does not wait for Kueue, and a copy of a gated run is gated again as new.
 */
export interface InsertGateStep extends OnCreate {
  readonly type: 'insert-gate';
  /** Name of the inserted pipeline task. */
  readonly gateTask: string;
  /** Custom-task kind embedded in the gate task's `taskSpec`. */
  readonly customTask: ApiKind;
  /** The rules that do the parts of the step besides `rule` (which inserts the gate), in the order they run. */
  readonly rules: {
    /** Drops the run's own tasks named like the gate. */
    readonly dropLookalikes: string;
    /** Makes every task run after the gate. */
    readonly waitForGate: string;
    /** Adds `finallyWhen` to every finally task. */
    readonly gateFinally: string;
  };
  /**
   * `when` expression of every finally task: they run only if the gate succeeded, so a run
   * cancelled or stopped while it waits (`CancelledRunFinally`) runs none of them unadmitted.
   */
  readonly finallyWhen: { readonly input: string; readonly operator: 'in'; readonly values: readonly string[] };
}

/** What a route matches; every field given must hold, a list of values holds when any of them does. */
export interface RouteMatch {
  readonly namespaces?: readonly string[];
  readonly labels?: Readonly<Record<string, readonly string[]>>;
  readonly annotations?: Readonly<Record<string, readonly string[]>>;
  /** `spec.pipelineRef.name` and/or `spec.pipelineRef.resolver`. */
  readonly pipelineRef?: { readonly name?: string; readonly resolver?: string };
}

/** A run that matches `match`, and no route before it, gets these labels and annotations. */
export interface Route {
  /** Rule name, unique within its policy. */
  readonly rule: string;
  readonly match: RouteMatch;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** Overwrite the run's own values of these keys; otherwise only keys the run lacks are set. */
  readonly enforce: boolean;
}

/**
 * Route a new run: the first route it matches sets its queue, priority and requests (as the labels
 * and annotations the later steps read) and names itself in `routedBy`. A `routedBy` the run came
 * with proves nothing (a copy of a routed run, or a run that wants to skip an enforced route): the
 * step's `rule` removes it first.
 */
export interface RouteRunStep extends StepBase {
  readonly type: 'route-run';
  /** Annotation naming the route a run took. */
  readonly routedBy: string;
  readonly routes: readonly Route[];
}

/** Strategy `pending`: create the run pending (TEP-0015), so it does not start until cleared. */
export interface HoldPendingStep extends OnCreate {
  readonly type: 'hold-pending';
  /** Which runs: all, or only those without inline tasks (the rest get the gate task). */
  readonly runs: 'all' | 'without-inline-tasks';
  /** Value of `spec.status` that holds a run. */
  readonly pendingStatus: string;
  /** Annotation saying the gate holds the run; only such runs are queued and released by the gate. */
  readonly heldBy: LabelValue;
  /**
   * Rule for a run its user created pending: labelled, but not queued (no Workload, no quota) until
   * its user releases it, which `HoldUserReleaseStep` turns into a hold of the gate's.
   */
  readonly userPendingRule: string;
  /**
   * Runs the step labels whose LocalQueue feeds a ClusterQueue that dispatches to worker clusters.
   * @default no run is dispatched
   */
  readonly dispatch?: Dispatch;
}

/**
 * Kueue's MultiKueue runs these runs on a worker cluster: they are marked for it at creation
 * (`spec.managedBy` is immutable), so Tekton leaves them alone here and MultiKueue's adapter copies
 * them, the mark removed, to the worker whose Kueue admits their Workload.
 */
export interface Dispatch {
  readonly rule: string;
  /** `spec.managedBy` of a dispatched run. */
  readonly managedBy: string;
  readonly queue: Sizing['queue'];
  /** The dispatching LocalQueues of the listed namespaces. */
  readonly queues: readonly { readonly namespace: string; readonly queue: string }[];
  /** The dispatching LocalQueues of the namespaces chosen by label, by name. */
  readonly tenantQueues: readonly string[];
}

/**
 * A run MultiKueue copied here from the manager cluster (the trigger has MultiKueue's origin label;
 * the Workload it runs under, named in an annotation, this cluster's Kueue has admitted already):
 * the gate held it on the manager until then, so it starts now. Only the manager's identity may
 * create such a run (the tenant guard); the gate's other creation steps leave it alone.
 */
export interface ReleaseDispatchedStep extends StepBase {
  readonly type: 'release-dispatched';
  readonly pendingStatus: string;
  readonly heldBy: LabelValue;
}

/**
 * A user (or a tool such as Pipelines-as-Code) releases a run they created pending: the release
 * becomes a hold of the gate's, so the run is queued now and starts when Kueue admits it.
 */
export interface HoldUserReleaseStep extends StepBase {
  readonly type: 'hold-user-release';
  readonly pendingStatus: string;
  readonly heldBy: LabelValue;
}

/** A value looked up by namespace and LocalQueue name. */
export interface PerQueue<T> {
  readonly namespace: string;
  readonly queue: string;
  readonly value: T;
}

/** How a run says which queue it waits in, at which priority, for how much and how long. */
export interface Sizing {
  readonly queue: {
    /** Label of the run naming its LocalQueue. */
    readonly label: string;
    /** LocalQueue of a run without the label, per namespace. */
    readonly defaults: readonly { readonly namespace: string; readonly queue: string }[];
    /** LocalQueue of a run without the label in a namespace not among `defaults` (one chosen by its labels). */
    readonly tenantDefault?: string;
  };
  readonly priority: {
    /** Label of the run naming its WorkloadPriorityClass. */
    readonly label: string;
    readonly classes: readonly { readonly name: string; readonly value: number }[];
    /** Class of a run without a known class label; without it such runs get no priority. */
    readonly default?: string;
  };
  readonly requests: {
    /** `<prefix><resource>: <quantity>` annotations of the run set its requests. */
    readonly annotationPrefix: string;
    /** Requests of a run without request annotations, per LocalQueue; annotations override them one by one. */
    readonly defaults: readonly PerQueue<ResourceList>[];
    /** Requests of a run without request annotations in a namespace chosen by its labels, per LocalQueue name. */
    readonly tenantDefaults?: readonly { readonly queue: string; readonly value: ResourceList }[];
    /** Defaults of a run whose LocalQueue is none of the above (a queue the bundle does not manage). */
    readonly fallback: ResourceList;
    /** Requests every run makes whatever it asks for. */
    readonly fixed: ResourceList;
  };
  /** Label of the run giving the Workload's `maximumExecutionTimeSeconds` (Kueue's own label for jobs). */
  readonly maxExecutionTimeLabel: string;
}

/** Create the Kueue Workload that stands for a gated run, named after its owner (the trigger, or `owner`) and owned by it. */
export interface GenerateWorkloadStep extends StepBase, Sizing {
  readonly type: 'generate-workload';
  /**
   * The Workload's owner and namesake when it is not the trigger (the gate CustomRun of a run
   * triggering the step): read from the cluster, for its uid.
   */
  readonly owner?: { readonly kind: ApiKind; readonly name: TargetName };
  /**
   * When the owner is a CustomRun: its custom-task kind (other custom tasks are left alone). Such an
   * owner must not have ended: the Workload of a gate that is done would never be admitted.
   */
  readonly customTask?: ApiKind;
  readonly workload: ApiKind;
  /** Labels put on every generated Workload (the later steps recognise their Workloads by them). */
  readonly labels: Readonly<Record<string, string>>;
  /** Label of the Workload naming the PipelineRun: copied from the trigger's label, or the trigger's own name. */
  readonly runLabel: { readonly key: string; readonly from: 'trigger-label' | 'trigger-name' };
}

/**
 * Refuse at creation a run whose sizing the gate could not honour — it would otherwise wait
 * forever — with a message naming the label or annotation, the value and the accepted values.
 * The queue and what it covers are read from the cluster (LocalQueues the bundle does not manage
 * count too). A priority class the bundle does not know is not refused: the run gets the default
 * class, and its creator a warning.
 */
export interface ValidateRunStep extends StepBase, Sizing {
  readonly type: 'validate-run';
  readonly localQueue: ApiKind;
  readonly clusterQueue: ApiKind;
  /** Rule names of the checks. */
  readonly rules: {
    readonly knownQueue: string;
    readonly requestQuantities: string;
    readonly coveredRequests: string;
    readonly maxExecutionTime: string;
    /** Warns, does not refuse. */
    readonly knownPriority: string;
  };
}

/** Where a step finds the name of the object it changes (always in the trigger's namespace). */
export type TargetName =
  /** The trigger's ownerReference of the target's kind. */
  | { readonly from: 'owner' }
  /** The trigger's `status.childReferences` entry of this pipeline task. */
  | { readonly from: 'child'; readonly pipelineTask: string }
  /** The trigger's own name. */
  | { readonly from: 'self' }
  /** A label of the trigger. */
  | { readonly from: 'label'; readonly key: string };

/** The object a status step changes, as its trigger names it (always in the trigger's namespace). */
export interface Target {
  readonly kind: ApiKind;
  readonly name: TargetName;
  /**
   * The way back from a target to its trigger: the trigger's name, read on the target as `name`
   * is read on the trigger, and the labels every target has. A policy language whose periodic
   * re-apply lists the objects a step changes, not its triggers, needs it.
   * @default the step is re-applied from its triggers only
   */
  readonly fromTarget?: { readonly triggerName: TargetName; readonly labels: Readonly<Record<string, string>> };
}

/** The trigger reaches a condition. */
export interface OnCondition {
  readonly condition: string;
  readonly statuses: readonly ('True' | 'False')[];
  /**
   * Re-read the trigger when the step runs and go on only if it still has `condition` in `statuses`
   * and none of `unlessTrue` is True. Steps run asynchronously: the event that started the step
   * may be stale by then (Kueue may have evicted the Workload it admitted a moment ago).
   */
  readonly recheck?: { readonly unlessTrue: readonly string[] };
}

/**
 * The trigger, a gated PipelineRun, has started: Tekton made a child (TaskRun or CustomRun) for one
 * of the run's own tasks, not for the gate.
 */
export interface OnStarted {
  readonly started: { readonly gateTask: string };
}

/** The trigger's `spec.status` is this (a controller asked it to stop, say). */
export interface OnSpecStatus {
  readonly specStatus: string;
}

export type When = OnCondition | OnStarted | OnSpecStatus;

/**
 * What holds a gated run back until Kueue admits it. A run no longer held has been let go (the gate
 * opened, or a user released it): it may be running any moment, so it can only be stopped, while a
 * run still held can simply go back to the queue.
 */
export type Hold =
  /** Strategy customrun: the gate CustomRun that owns the trigger Workload, until it has Succeeded=True. */
  | { readonly by: 'gate'; readonly gate: { readonly kind: ApiKind; readonly name: TargetName } }
  /**
   * Strategy pending: the run's `spec.status`, while it is `pendingStatus`. With `dispatchedBy`, a
   * run whose `spec.managedBy` is that counts as held too: it runs on a worker cluster, never here,
   * so an eviction here takes it back into the queue, and MultiKueue dispatches it again.
   */
  | { readonly by: 'pending'; readonly run: { readonly kind: ApiKind; readonly name: TargetName }; readonly pendingStatus: string; readonly dispatchedBy?: string };

/** A condition's status, as Kubernetes spells it. */
export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** When the trigger reaches `when`, set a condition on the status of a related object. */
export interface SetConditionStep extends StepBase {
  readonly type: 'set-condition';
  readonly when: When;
  readonly target: Target;
  /**
   * An object the trigger names, read when the step runs (at admission and in the background):
   * the step goes on only if it has `condition` in `statuses`, and the new condition's reason
   * follows that status. The trigger then tells which object, this one whether to act.
   * @default the trigger alone decides
   */
  readonly read?: { readonly kind: ApiKind; readonly name: TargetName; readonly condition: string; readonly statuses: readonly ('True' | 'False')[] };
  /**
   * Whether Kyverno's periodic re-apply also runs the step on existing objects. A step another one
   * backs up at less cost can act on events alone.
   * @default true
   */
  readonly reapplied?: boolean;
  readonly set: {
    readonly type: string;
    readonly status: ConditionStatus;
    /** Reason of the new condition for each status of the trigger's condition, or of the object `read` (`True` when `when` is not a condition). */
    readonly reasons: Readonly<Partial<Record<'True' | 'False', string>>>;
    readonly message: string;
    /**
     * Transition time of the new condition: when the trigger completed (`status.completionTime`),
     * when the object `read` completed, when a condition of the trigger last changed, or, when the
     * object records no such time, when the step runs.
     */
    readonly at: 'trigger-completion' | 'read-completion' | { readonly lastChangeOf: string } | 'now';
    /**
     * Statuses of the target's condition of this type that leave the target alone (set once).
     * Otherwise the condition replaces any of its type; the target's other conditions are kept.
     */
    readonly unlessTargetHas: readonly ConditionStatus[];
  };
}

/** When the trigger reaches a condition, change `spec.status` of a PipelineRun. */
export interface SetRunStatusStep extends StepBase {
  readonly type: 'set-run-status';
  readonly when: OnCondition;
  readonly target: Target;
  readonly change:
    /** Release a run the gate made pending: only if `heldBy` is on it and it is still pending. */
    | { readonly type: 'release'; readonly pendingStatus: string; readonly heldBy: LabelValue }
    /** Stop a run that `hold` no longer holds and that has not finished; its `finally` tasks still run. */
    | { readonly type: 'stop'; readonly stopStatus: string; readonly hold: Hold };
}

/**
 * When Kueue evicts the Workload of a run that `hold` still holds, give back its quota reservation,
 * as a job integration would, so that Kueue queues it again. Kueue itself only marks the eviction.
 */
export interface RequeueWorkloadStep extends StepBase {
  readonly type: 'requeue-workload';
  readonly when: OnCondition;
  readonly hold: Hold;
  /**
   * Eviction reasons after which the Workload may be admitted again at once (`Requeued=True`). After
   * any other, Kueue sets `Requeued=True` itself when it is time: backoff over, queue restarted,
   * Workload reactivated.
   */
  readonly requeueAtOnce: readonly string[];
  /** What the Workload's conditions say once its reservation is gone, as Kueue's job reconciler words it. */
  readonly unreserved: { readonly quotaReservedReason: string; readonly admittedReason: string; readonly admittedMessage: string };
}

/**
 * Give a namespace chosen by its labels (the trigger, a Namespace) its LocalQueues when it gets the
 * labels, and take them away when it loses them.
 */
export interface GenerateQueuesStep extends StepBase {
  readonly type: 'generate-queues';
  readonly localQueue: ApiKind;
  readonly queues: readonly { readonly name: string; readonly clusterQueue: string }[];
}

export type GateStep =
  | RouteRunStep
  | ReleaseDispatchedStep
  | InsertGateStep
  | HoldPendingStep
  | HoldUserReleaseStep
  | ValidateRunStep
  | GenerateWorkloadStep
  | SetConditionStep
  | SetRunStatusStep
  | RequeueWorkloadStep
  | GenerateQueuesStep;

/** One policy of the bundle: the steps of one stage of the flow, and what a reader needs to know. */
export interface PolicyDefinition {
  /** Policy name, named after the stage of the flow. */
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly failurePolicy: FailurePolicy;
  readonly steps: readonly GateStep[];
}
