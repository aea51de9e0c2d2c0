/**
 * The gate as data, free of any policy language: what each step of the flow reacts to, what it
 * checks and what it changes. A dialect (today Kyverno's `kyverno.io/v1` ClusterPolicy) renders a
 * step into policy text; RBAC is derived from the same steps, so the two cannot drift apart.
 */
import type { ResourceList } from '../config/config.js';
import type { ApiKind } from './names.js';

export type Operation = 'CREATE' | 'UPDATE';

/** The admission requests that start a step. */
export interface Trigger {
  readonly kind: ApiKind;
  /** Set when the step reacts to updates of the subresource (controllers write status there). */
  readonly subresource?: 'status';
  readonly operations: readonly Operation[];
  /** Namespaces the step acts in. */
  readonly namespaces: readonly string[];
}

/**
 * How Kubernetes should treat the step when the policy engine cannot be reached. `Fail` blocks the
 * request (no run slips through ungated); `Ignore` lets it pass and relies on later reconciliation.
 */
export type FailurePolicy = 'Fail' | 'Ignore';

/** Step 1: make an inline-spec PipelineRun wait for a gate task before any of its own tasks. */
export interface InsertGateStep {
  readonly type: 'insert-gate';
  readonly trigger: Trigger;
  /** Name of the inserted pipeline task. */
  readonly gateTask: string;
  /** Custom-task kind embedded in the gate task's `taskSpec`. */
  readonly customTask: ApiKind;
  /** Runs carrying this label with value "true" are left alone. */
  readonly optOutLabel: string;
  /** Label put on every gated run, so later steps consider gated runs only. */
  readonly gatedLabel: { readonly key: string; readonly value: string };
}

/** A value looked up by namespace and LocalQueue name. */
export interface PerQueue<T> {
  readonly namespace: string;
  readonly queue: string;
  readonly value: T;
}

/** Step 2: create the Kueue Workload that stands for a gated run. */
export interface GenerateWorkloadStep {
  readonly type: 'generate-workload';
  /** Creation of the gate's CustomRun; the Workload is named after it and owned by it. */
  readonly trigger: Trigger;
  /** Only trigger objects carrying all these labels are considered. */
  readonly triggerLabels: Readonly<Record<string, string>>;
  /** Custom-task kind of the gate's CustomRuns (other custom tasks are left alone). */
  readonly customTask: ApiKind;
  readonly workload: ApiKind;
  /** Labels put on every generated Workload (the later steps recognise their Workloads by them). */
  readonly labels: Readonly<Record<string, string>>;
  /** Labels of the trigger copied onto the Workload (empty when the trigger lacks them). */
  readonly copiedLabels: readonly string[];
  readonly queue: {
    /** Label of the run naming its LocalQueue. */
    readonly label: string;
    /** LocalQueue of a run without the label, per namespace. */
    readonly defaults: readonly { readonly namespace: string; readonly queue: string }[];
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
    /** Defaults of a run whose LocalQueue is not one of `defaults` (a queue the bundle does not manage). */
    readonly fallback: ResourceList;
    /** Requests every run makes whatever it asks for. */
    readonly fixed: ResourceList;
  };
}

/** Where a step finds the name of the object it changes. */
export type TargetName =
  /** The trigger's ownerReference of the target's kind. */
  | { readonly from: 'owner' }
  /** The trigger's `status.childReferences` entry of this pipeline task. */
  | { readonly from: 'child'; readonly pipelineTask: string };

/**
 * Steps 3 and 4: when the trigger object reaches a condition, set a condition on the status of a
 * related object in the same namespace.
 */
export interface SetConditionStep {
  readonly type: 'set-condition';
  readonly trigger: Trigger;
  /** Only trigger objects carrying all these labels are considered. */
  readonly triggerLabels?: Readonly<Record<string, string>>;
  /** The trigger's condition that starts the step, and the statuses that count. */
  readonly when: { readonly condition: string; readonly statuses: readonly ('True' | 'False')[] };
  readonly target: { readonly kind: ApiKind; readonly name: TargetName };
  readonly set: {
    readonly type: string;
    readonly status: 'True' | 'False';
    /** Reason of the new condition for each status of the trigger's condition. */
    readonly reasons: Readonly<Partial<Record<'True' | 'False', string>>>;
    readonly message: string;
    /**
     * `replace`: the target's conditions become this one (the target has no other writer).
     * `append`: added beside the conditions others maintain.
     */
    readonly mode: 'replace' | 'append';
  };
}

export type GateStep = InsertGateStep | GenerateWorkloadStep | SetConditionStep;

/** One policy of the bundle: a step plus what a reader and the policy catalogue need to know. */
export interface PolicyDefinition {
  /** Policy name, named after the step of the flow. */
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly failurePolicy: FailurePolicy;
  readonly step: GateStep;
}
