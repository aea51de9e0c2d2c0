/**
 * Renders gate steps as `kyverno.io/v1` ClusterPolicy rules (JMESPath, JSON patches, mutate
 * targets). Only this file knows ClusterPolicy; the steps themselves are in ../gate/model.ts.
 */
import type {
  ClusterPolicySpec,
  ClusterPolicySpecRules,
  ClusterPolicySpecRulesContext,
  ClusterPolicySpecRulesMatch,
  ClusterPolicySpecRulesMutateTargets,
} from '../../imports/kyverno-kyverno.io.js';
import type {
  GateStep,
  GenerateWorkloadStep,
  Hold,
  HoldPendingStep,
  InsertGateStep,
  OnCondition,
  PolicyDefinition,
  RequeueWorkloadStep,
  SetConditionStep,
  SetRunStatusStep,
  TargetName,
  Trigger,
  When,
} from '../gate/model.js';
import { type ApiKind, apiPath } from '../gate/names.js';
import { conditionStatus, field, label, literal, str, variable } from './jmespath.js';

const TRIGGER = 'request.object';

/** A condition in Kyverno's precondition syntax. */
interface Precondition {
  readonly key: string;
  readonly operator: 'Equals' | 'NotEquals' | 'AnyIn' | 'AnyNotIn' | 'GreaterThan';
  readonly value: unknown;
  /** Why the step stops here, shown in Kyverno's results and UpdateRequest status when it does. */
  readonly message?: string;
}

export function renderClusterPolicySpec(definition: PolicyDefinition): ClusterPolicySpec {
  const reactsToStatus = definition.steps.some((s) => s.type === 'set-condition' || s.type === 'set-run-status' || s.type === 'requeue-workload');
  return {
    // Background scans re-apply the status steps to existing objects; CREATE steps act at admission only.
    background: reactsToStatus,
    admission: true,
    failurePolicy: definition.failurePolicy as ClusterPolicySpec['failurePolicy'],
    ...(reactsToStatus ? { mutateExistingOnPolicyUpdate: true } : {}),
    ...(definition.steps.some((s) => s.type === 'generate-workload') ? { generateExisting: false } : {}),
    rules: definition.steps.flatMap(rulesOf),
  };
}

function rulesOf(step: GateStep): ClusterPolicySpecRules[] {
  switch (step.type) {
    case 'insert-gate':
      return insertGateRules(step);
    case 'hold-pending':
      return holdPendingRules(step);
    case 'generate-workload':
      return [generateWorkloadRule(step)];
    case 'set-condition':
      return [setConditionRule(step)];
    case 'set-run-status':
      return [setRunStatusRule(step)];
    case 'requeue-workload':
      return [requeueWorkloadRule(step)];
  }
}

function match(trigger: Trigger): ClusterPolicySpecRulesMatch {
  const kind = `${trigger.kind.apiVersion}/${trigger.kind.kind}`;
  return {
    any: [
      {
        resources: {
          // A rule on the main resource alone never sees status updates, which controllers write to /status.
          kinds: trigger.subresource ? [kind, `${kind}/${trigger.subresource}`] : [kind],
          operations: [...trigger.operations] as never,
          namespaces: [...trigger.namespaces],
          ...(trigger.labels ? { selector: { matchLabels: { ...trigger.labels } } } : {}),
        },
      },
    ],
  };
}

function all(conditions: Precondition[]): { all: Precondition[] } {
  return { all: conditions };
}

type PatchOperation = { op: 'add'; path: string; value: unknown } | { op: 'remove'; path: string };

function jsonPatch(operations: PatchOperation[]): string {
  return operations
    .map((o) =>
      o.op === 'remove'
        ? `- op: remove\n  path: ${o.path}`
        : `- op: ${o.op}\n  path: ${o.path}\n  value: ${isWholeVariable(o.value) ? o.value : JSON.stringify(o.value)}`,
    )
    .join('\n');
}

/** A value that is one Kyverno variable stays bare, so it is replaced by the variable's JSON value. */
function isWholeVariable(value: unknown): value is string {
  return typeof value === 'string' && /^\{\{[^}]*\}\}$/.test(value);
}

/** JSON-pointer escaping of one path segment. */
function pointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function optOut(optOutLabel: string) {
  return { any: [{ resources: { selector: { matchLabels: { [optOutLabel]: 'true' } } } }] };
}

const inlineTasks = `${TRIGGER}.spec.pipelineSpec.tasks`;
const runStatus = `${TRIGGER}.spec.status || ''`;

// --- mutate-pipelinerun -------------------------------------------------------------------------

function insertGateRules(step: InsertGateStep): ClusterPolicySpecRules[] {
  const ungatedInlineRun = all([
    // pipelineRef runs have no inline tasks to gate.
    { key: variable(`length(${inlineTasks} || \`[]\`)`), operator: 'GreaterThan', value: 0 },
    // Never gate twice (a re-applied or copied run may already carry the gate).
    { key: variable(`length(${inlineTasks}[?name==${str(step.gateTask)}] || \`[]\`)`), operator: 'Equals', value: 0 },
  ]);
  const common = { match: match(step.trigger), exclude: optOut(step.optOutLabel), preconditions: ungatedInlineRun };
  const gateTask = { name: step.gateTask, taskSpec: { ...step.customTask, spec: {} } };
  return [
    {
      // Runs first, on the original task list, so elementIndex addresses the user's tasks.
      name: 'wait-for-gate',
      ...common,
      mutate: {
        foreach: [
          {
            list: inlineTasks,
            patchesJson6902: jsonPatch([
              {
                op: 'add',
                path: '/spec/pipelineSpec/tasks/{{elementIndex}}/runAfter',
                value: variable(`[[${str(step.gateTask)}], element.runAfter || \`[]\`][]`),
              },
            ]),
          },
        ],
      },
    },
    {
      name: step.rule,
      ...common,
      mutate: {
        patchesJson6902: jsonPatch([
          { op: 'add', path: '/spec/pipelineSpec/tasks/0', value: gateTask },
          { op: 'add', path: `/metadata/labels/${pointer(step.gatedLabel.key)}`, value: step.gatedLabel.value },
        ]),
      },
    },
  ];
}

function holdPendingRules(step: HoldPendingStep): ClusterPolicySpecRules[] {
  const conditions: Precondition[] = [
    // Never gate twice: a run already labelled by either strategy is left as it is.
    { key: variable(label(TRIGGER, step.gatedLabel.key)), operator: 'Equals', value: '' },
  ];
  if (step.runs === 'without-inline-tasks') {
    conditions.push({ key: variable(`length(${inlineTasks} || \`[]\`)`), operator: 'Equals', value: 0 });
  }
  const common = { match: match(step.trigger), exclude: optOut(step.optOutLabel) };
  const gatedLabel = { op: 'add' as const, path: `/metadata/labels/${pointer(step.gatedLabel.key)}`, value: step.gatedLabel.value };
  return [
    {
      name: step.rule,
      ...common,
      preconditions: all([...conditions, { key: variable(runStatus), operator: 'Equals', value: '' }]),
      mutate: {
        patchesJson6902: jsonPatch([
          { op: 'add', path: '/spec/status', value: step.pendingStatus },
          { op: 'add', path: `/metadata/annotations/${pointer(step.heldBy.key)}`, value: step.heldBy.value },
          gatedLabel,
        ]),
      },
    },
    {
      // Created pending by its user: queued like any run, but only the user releases it.
      name: 'queue-user-pending',
      ...common,
      preconditions: all([...conditions, { key: variable(runStatus), operator: 'Equals', value: step.pendingStatus }]),
      mutate: { patchesJson6902: jsonPatch([gatedLabel]) },
    },
  ];
}

// --- generate-workload --------------------------------------------------------------------------

function generateWorkloadRule(step: GenerateWorkloadStep): ClusterPolicySpecRules {
  const labels = `${TRIGGER}.metadata.labels`;
  const prefix = step.requests.annotationPrefix;
  const requestAnnotations = `items(${TRIGGER}.metadata.annotations || \`{}\`, 'key', 'value')[?starts_with(key, ${str(prefix)})]`;
  const context: ClusterPolicySpecRulesContext[] = [
    { name: 'defaultQueues', variable: { value: Object.fromEntries(step.queue.defaults.map((d) => [d.namespace, d.queue])) } },
    { name: 'queueName', variable: { jmesPath: `${labels}.${field(step.queue.label)} || lookup(defaultQueues, ${TRIGGER}.metadata.namespace)` } },
    { name: 'priorityValues', variable: { value: Object.fromEntries(step.priority.classes.map((c) => [c.name, c.value])) } },
    {
      name: 'priorityClass',
      variable: {
        // An unknown class name falls back to the default rather than referencing a missing class.
        jmesPath: `contains(keys(priorityValues), ${label(TRIGGER, step.priority.label)}) && ${labels}.${field(step.priority.label)} || ${str(step.priority.default ?? '')}`,
      },
    },
    {
      name: 'priority',
      variable: {
        jmesPath: `priorityClass != '' && {priorityClassRef: {group: ${str(step.workload.apiVersion.split('/')[0]!)}, kind: 'WorkloadPriorityClass', name: priorityClass}, priority: lookup(priorityValues, priorityClass)} || \`{}\``,
      },
    },
    { name: 'queueDefaults', variable: { value: Object.fromEntries(step.requests.defaults.map((d) => [`${d.namespace}/${d.queue}`, d.value])) } },
    {
      name: 'requests',
      variable: {
        jmesPath: `merge(lookup(queueDefaults, join('/', [${TRIGGER}.metadata.namespace, queueName])) || ${literal(step.requests.fallback)}, object_from_lists(${requestAnnotations}[].trim_prefix(key, ${str(prefix)}), ${requestAnnotations}[].value), ${literal(step.requests.fixed)})`,
      },
    },
    // No label, or one that is not a number: 0, no limit. A null variable would fail the rule.
    { name: 'maxExecution', variable: { jmesPath: `to_number(${label(TRIGGER, step.maxExecutionTimeLabel)}) || \`0\`` } },
    {
      name: 'workloadSpec',
      variable: {
        jmesPath: `merge({queueName: queueName, podSets: [{name: 'main', count: \`1\`, template: {spec: {containers: [{name: 'main', resources: {requests: requests}}]}}}]}, priority, maxExecution > \`0\` && {maximumExecutionTimeSeconds: maxExecution} || \`{}\`)`,
      },
    },
  ];
  const runName = step.runLabel.from === 'trigger-name' ? `${TRIGGER}.metadata.name` : label(TRIGGER, step.runLabel.key);
  return {
    name: step.rule,
    match: match(step.trigger),
    ...(step.customTask
      ? {
          preconditions: all([
            // Only the gate's CustomRuns: other custom tasks may share the task name but not the kind.
            { key: variable(`${TRIGGER}.spec.customSpec.apiVersion || ''`), operator: 'Equals', value: step.customTask.apiVersion },
            { key: variable(`${TRIGGER}.spec.customSpec.kind || ''`), operator: 'Equals', value: step.customTask.kind },
          ]),
        }
      : {}),
    context,
    generate: {
      apiVersion: step.workload.apiVersion,
      kind: step.workload.kind,
      name: variable(`${TRIGGER}.metadata.name`),
      namespace: variable(`${TRIGGER}.metadata.namespace`),
      // An ownerReference, not synchronize, ties the Workload to the run: Kueue owns its spec afterwards.
      synchronize: false,
      data: {
        metadata: {
          labels: { ...step.labels, [step.runLabel.key]: variable(runName) },
          ownerReferences: [
            {
              apiVersion: step.trigger.kind.apiVersion,
              kind: step.trigger.kind.kind,
              name: variable(`${TRIGGER}.metadata.name`),
              uid: variable(`${TRIGGER}.metadata.uid`),
            },
          ],
        },
        spec: variable('workloadSpec'),
      },
    },
  };
}

// --- admit, ready, release, evict, requeue ------------------------------------------------------

type TargetContext = NonNullable<ClusterPolicySpecRulesMutateTargets['context']>;

function targetNameOf(name: TargetName, kind: string): string {
  switch (name.from) {
    case 'owner':
      return `${TRIGGER}.metadata.ownerReferences[?kind==${str(kind)}].name | [0] || ''`;
    case 'child':
      return `${TRIGGER}.status.childReferences[?pipelineTaskName==${str(name.pipelineTask)}].name | [0] || ''`;
    case 'self':
      return `${TRIGGER}.metadata.name`;
    case 'label':
      return label(TRIGGER, name.key);
  }
}

function conditionText(when: OnCondition): string {
  return `${when.condition}=${when.statuses.join('|')}`;
}

/** The trigger's own test, on the event as it came (at admission and again in the background). */
function whenTriggerReaches(when: When, trigger: ApiKind, targetName: string): { all: Precondition[] } {
  const reached: Precondition =
    'started' in when
      ? {
          key: variable(`length(${TRIGGER}.status.childReferences[?pipelineTaskName!=${str(when.started.gateTask)}] || \`[]\`)`),
          operator: 'GreaterThan',
          value: 0,
          message: `the ${trigger.kind} has not started`,
        }
      : { key: variable(conditionStatus(TRIGGER, when.condition)), operator: 'AnyIn', value: [...when.statuses], message: `the ${trigger.kind} is not ${conditionText(when)}` };
  return all([reached, { key: variable(targetName), operator: 'NotEquals', value: '', message: `the ${trigger.kind} names no object to change` }]);
}

/** Values read from the API server when a target is processed, and the tests on them. */
interface TargetCheck {
  readonly context: TargetContext;
  readonly preconditions: Precondition[];
}

const NO_CHECK: TargetCheck = { context: [], preconditions: [] };

function combine(...checks: TargetCheck[]): TargetCheck {
  return { context: checks.flatMap((c) => c.context), preconditions: checks.flatMap((c) => c.preconditions) };
}

/** One value of an object read with the API call `name`: `fallback` when the object cannot be read. */
function read(name: string, kind: ApiKind, objectName: string, jmesPath: string, fallback: string): TargetContext[number] {
  return { name, apiCall: { urlPath: apiPath(kind, variable(`${TRIGGER}.metadata.namespace`), variable(objectName)), jmesPath, default: fallback } };
}

/** The trigger read again: the event that started the step may be stale by the time it runs. */
function recheckOf(when: When, trigger: ApiKind): TargetCheck {
  if ('started' in when || !when.recheck) return NO_CHECK;
  const live = (type: string) => variable(`liveConditions[?type==${str(type)}].status | [0] || ''`);
  return {
    context: [{ name: 'liveConditions', apiCall: { urlPath: apiPath(trigger, variable(`${TRIGGER}.metadata.namespace`), variable(`${TRIGGER}.metadata.name`)), jmesPath: 'status.conditions', default: [] } }],
    preconditions: [
      { key: live(when.condition), operator: 'AnyIn', value: [...when.statuses], message: `the ${trigger.kind} is no longer ${conditionText(when)}` },
      ...when.recheck.unlessTrue.map((type): Precondition => ({ key: live(type), operator: 'NotEquals', value: 'True', message: `the ${trigger.kind} became ${type}=True meanwhile` })),
    ],
  };
}

/** Read as `holdState`: `held`, `let-go`, or anything else when the run can no longer be told (gone, failed). */
function holdStateOf(hold: Hold, target: { kind: ApiKind; name: TargetName }): TargetContext {
  if (hold.by === 'gate') {
    const gate = read('gateSucceeded', hold.gate.kind, targetNameOf(hold.gate.name, hold.gate.kind.kind), "status.conditions[?type=='Succeeded'].status | [0] || 'Unknown'", 'Gone');
    return [gate, { name: 'holdState', variable: { jmesPath: "gateSucceeded == 'Unknown' && 'held' || gateSucceeded == 'True' && 'let-go' || gateSucceeded" } }];
  }
  const pendingState = (status: string) => `${status} == ${str(hold.pendingStatus)} && 'held' || ${status} != 'Gone' && 'let-go' || ${status}`;
  // The step changes the run itself: its status is the target's, just read.
  if (sameObject(hold.run, target)) return [{ name: 'holdState', variable: { jmesPath: pendingState("(target.spec.status || '')") } }];
  const run = read('runStatus', hold.run.kind, targetNameOf(hold.run.name, hold.run.kind.kind), "spec.status || ''", 'Gone');
  return [run, { name: 'holdState', variable: { jmesPath: pendingState('runStatus') } }];
}

function sameObject(a: { kind: ApiKind; name: TargetName }, b: { kind: ApiKind; name: TargetName }): boolean {
  return a.kind.apiVersion === b.kind.apiVersion && a.kind.kind === b.kind.kind && JSON.stringify(a.name) === JSON.stringify(b.name);
}

function holdCheck(hold: Hold, target: { kind: ApiKind; name: TargetName }, state: 'held' | 'let-go'): TargetCheck {
  return {
    context: holdStateOf(hold, target),
    preconditions: [{ key: variable('holdState'), operator: 'Equals', value: state, message: state === 'held' ? 'the run is no longer held' : 'the run is still held' }],
  };
}

function mutateTarget(kind: ApiKind, subresource: string, name: string, check: TargetCheck): ClusterPolicySpecRulesMutateTargets {
  return {
    apiVersion: kind.apiVersion,
    kind: `${kind.kind}${subresource}`,
    name: variable(name),
    namespace: variable(`${TRIGGER}.metadata.namespace`),
    ...(check.context.length > 0 ? { context: [...check.context] } : {}),
    preconditions: all(check.preconditions),
  };
}

/** `target`'s conditions with `conditions` (JMESPath objects) in place of those of the same types. */
function withConditions(types: readonly string[], conditions: string[]): string {
  const others = `target.status.conditions[?${types.map((t) => `type!=${str(t)}`).join(' && ')}] || \`[]\``;
  return `[${others}, [${conditions.join(', ')}]][]`;
}

function conditionObject(fields: { type: string; status: string; reason: string; message: string; at: string }): string {
  return `{type: ${str(fields.type)}, status: ${fields.status}, reason: ${fields.reason}, message: ${fields.message}, lastTransitionTime: ${fields.at}}`;
}

function setConditionRule(step: SetConditionStep): ClusterPolicySpecRules {
  const targetName = targetNameOf(step.target.name, step.target.kind.kind);
  const reasons = Object.entries(step.set.reasons);
  const reason =
    reasons.length === 1 || 'started' in step.when
      ? str(step.set.reasons.True ?? reasons[0]![1])
      : `lookup(${literal(step.set.reasons)}, ${conditionStatus(TRIGGER, step.when.condition)}) || ''`;
  const transitionTime =
    step.set.at === 'trigger-completion'
      ? `${TRIGGER}.status.completionTime || time_now_utc()`
      : `${TRIGGER}.status.conditions[?type==${str(step.set.at.lastChangeOf)}].lastTransitionTime | [0] || time_now_utc()`;
  const condition = conditionObject({ type: step.set.type, status: str(step.set.status), reason: 'reason', message: str(step.set.message), at: 'transitionTime' });
  const check = combine(recheckOf(step.when, step.trigger.kind), {
    // The whole list is written back: a JSON patch cannot address a condition by its type.
    context: [{ name: 'conditions', variable: { jmesPath: withConditions([step.set.type], [condition]) } }],
    preconditions: [
      { key: variable(conditionStatus('target', step.set.type)), operator: 'AnyNotIn', value: [...step.set.unlessTargetHas], message: `${step.set.type} is set already` },
    ],
  });
  return {
    name: step.rule,
    match: match(step.trigger),
    preconditions: whenTriggerReaches(step.when, step.trigger.kind, targetName),
    context: [
      // Computed in the context: a JSON patch is text, and quotes inside its {{ }} would break it.
      { name: 'reason', variable: { jmesPath: reason } },
      { name: 'transitionTime', variable: { jmesPath: transitionTime } },
    ],
    mutate: {
      targets: [mutateTarget(step.target.kind, '/status', targetName, check)],
      patchesJson6902: jsonPatch([{ op: 'add', path: '/status/conditions', value: variable('conditions') }]),
    },
  };
}

function setRunStatusRule(step: SetRunStatusStep): ClusterPolicySpecRules {
  const targetName = targetNameOf(step.target.name, step.target.kind.kind);
  const change = step.change;
  const targetStatus = "target.spec.status || ''";
  const check =
    change.type === 'release'
      ? {
          context: [],
          preconditions: [
            // Only runs the gate made pending: a run its user created pending stays theirs to release.
            { key: variable(`target.metadata.annotations.${field(change.heldBy.key)} || ''`), operator: 'Equals', value: change.heldBy.value, message: 'the gate did not make the run pending' },
            { key: variable(targetStatus), operator: 'Equals', value: change.pendingStatus, message: 'the run is no longer pending' },
          ] satisfies Precondition[],
        }
      : combine(holdCheck(change.hold, step.target, 'let-go'), {
          context: [],
          preconditions: [
            { key: variable(conditionStatus('target', 'Succeeded')), operator: 'AnyNotIn', value: ['True', 'False'], message: 'the run has finished' },
            { key: variable(targetStatus), operator: 'Equals', value: '', message: 'the run is stopping or cancelled already' },
          ],
        });
  return {
    name: step.rule,
    match: match(step.trigger),
    preconditions: whenTriggerReaches(step.when, step.trigger.kind, targetName),
    mutate: {
      targets: [mutateTarget(step.target.kind, '', targetName, combine(recheckOf(step.when, step.trigger.kind), check))],
      patchesJson6902: jsonPatch([
        change.type === 'release' ? { op: 'remove', path: '/spec/status' } : { op: 'add', path: '/spec/status', value: change.stopStatus },
      ]),
    },
  };
}

function requeueWorkloadRule(step: RequeueWorkloadStep): ClusterPolicySpecRules {
  const self = { kind: step.trigger.kind, name: { from: 'self' } as const };
  const evicted = (path: string) => `evicted.${path}`;
  const at = evicted('lastTransitionTime');
  const conditions = withConditions(['QuotaReserved', 'Admitted', 'Requeued'], [
    conditionObject({ type: 'QuotaReserved', status: str('False'), reason: str(step.unreserved.quotaReservedReason), message: evicted('message'), at }),
    conditionObject({ type: 'Admitted', status: str('False'), reason: str(step.unreserved.admittedReason), message: str(step.unreserved.admittedMessage), at }),
    conditionObject({
      type: 'Requeued',
      status: `contains(${literal(step.requeueAtOnce)}, ${evicted('reason')}) && 'True' || 'False'`,
      reason: evicted('reason'),
      message: evicted('message'),
      at,
    }),
  ]);
  const check = combine(holdCheck(step.hold, self, 'held'), {
    context: [
      { name: 'evicted', variable: { jmesPath: `target.status.conditions[?type==${str(step.when.condition)}] | [0] || \`{}\`` } },
      { name: 'conditions', variable: { jmesPath: conditions } },
    ],
    preconditions: [
      // The Workload as it is now: still evicted, still holding its reservation, not finished.
      { key: variable(`evicted.status || ''`), operator: 'AnyIn', value: [...step.when.statuses], message: `the Workload is no longer ${step.when.condition}` },
      { key: variable("target.status.admission && 'reserved' || ''"), operator: 'Equals', value: 'reserved', message: 'the Workload holds no reservation' },
      { key: variable(conditionStatus('target', 'Finished')), operator: 'NotEquals', value: 'True', message: 'the Workload has finished' },
    ],
  });
  return {
    name: step.rule,
    match: match(step.trigger),
    preconditions: whenTriggerReaches(step.when, step.trigger.kind, `${TRIGGER}.metadata.name`),
    mutate: {
      targets: [mutateTarget(step.trigger.kind, '/status', `${TRIGGER}.metadata.name`, check)],
      patchesJson6902: jsonPatch([
        { op: 'remove', path: '/status/admission' },
        { op: 'add', path: '/status/conditions', value: variable('conditions') },
      ]),
    },
  };
}
