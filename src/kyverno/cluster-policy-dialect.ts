/**
 * Renders gate steps as `kyverno.io/v1` ClusterPolicy rules (JMESPath, JSON patches, mutate
 * targets). Only this file knows ClusterPolicy; the steps themselves are in ../gate/model.ts.
 */
import type {
  ClusterPolicySpec,
  ClusterPolicySpecRules,
  ClusterPolicySpecRulesContext,
  ClusterPolicySpecRulesMatch,
} from '../../imports/kyverno-kyverno.io.js';
import type {
  GateStep,
  GenerateWorkloadStep,
  HoldPendingStep,
  InsertGateStep,
  PolicyDefinition,
  SetConditionStep,
  SetRunStatusStep,
  TargetName,
  Trigger,
  When,
} from '../gate/model.js';
import { conditionStatus, field, label, literal, str, variable } from './jmespath.js';

const TRIGGER = 'request.object';

/** A condition in Kyverno's precondition syntax. */
interface Precondition {
  readonly key: string;
  readonly operator: 'Equals' | 'NotEquals' | 'AnyIn' | 'AnyNotIn' | 'GreaterThan';
  readonly value: unknown;
}

export function renderClusterPolicySpec(definition: PolicyDefinition): ClusterPolicySpec {
  const reactsToStatus = definition.steps.some((s) => s.type === 'set-condition' || s.type === 'set-run-status');
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
    {
      name: 'workloadSpec',
      variable: {
        jmesPath: `merge({queueName: queueName, podSets: [{name: 'main', count: \`1\`, template: {spec: {containers: [{name: 'main', resources: {requests: requests}}]}}}]}, priority)`,
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

// --- admit, release, evict ----------------------------------------------------------------------

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

function whenTriggerReaches(when: When, targetName: string): { all: Precondition[] } {
  return all([
    { key: variable(conditionStatus(TRIGGER, when.condition)), operator: 'AnyIn', value: [...when.statuses] },
    { key: variable(targetName), operator: 'NotEquals', value: '' },
  ]);
}

function setConditionRule(step: SetConditionStep): ClusterPolicySpecRules {
  const targetName = targetNameOf(step.target.name, step.target.kind.kind);
  const reasons = Object.entries(step.set.reasons);
  const reason =
    reasons.length === 1
      ? str(reasons[0]![1])
      : `lookup(${literal(step.set.reasons)}, ${conditionStatus(TRIGGER, step.when.condition)}) || ''`;
  const transitionTime =
    step.set.at === 'trigger-completion'
      ? `${TRIGGER}.status.completionTime || time_now_utc()`
      : `${TRIGGER}.status.conditions[?type==${str(step.when.condition)}].lastTransitionTime | [0] || time_now_utc()`;
  const condition = {
    type: step.set.type,
    status: step.set.status,
    // Computed in the context: a JSON patch is text, and quotes inside its {{ }} would break it.
    reason: variable('reason'),
    message: step.set.message,
    lastTransitionTime: variable('transitionTime'),
  };
  return {
    name: step.rule,
    match: match(step.trigger),
    preconditions: whenTriggerReaches(step.when, targetName),
    context: [
      { name: 'reason', variable: { jmesPath: reason } },
      { name: 'transitionTime', variable: { jmesPath: transitionTime } },
    ],
    mutate: {
      targets: [
        {
          apiVersion: step.target.kind.apiVersion,
          kind: `${step.target.kind.kind}/status`,
          name: variable(targetName),
          namespace: variable(`${TRIGGER}.metadata.namespace`),
          // Set once: later status updates of the trigger must not rewrite the target again.
          preconditions: all([
            { key: variable(conditionStatus('target', step.set.type)), operator: 'AnyNotIn', value: ['True', 'False'] },
          ]),
        },
      ],
      patchesJson6902: jsonPatch([
        step.set.mode === 'replace'
          ? { op: 'add', path: '/status/conditions', value: [condition] }
          : { op: 'add', path: '/status/conditions/-', value: condition },
      ]),
    },
  };
}

function setRunStatusRule(step: SetRunStatusStep): ClusterPolicySpecRules {
  const targetName = targetNameOf(step.target.name, step.target.kind.kind);
  const change = step.change;
  const targetStatus = "target.spec.status || ''";
  const onlyIf: Precondition[] =
    change.type === 'release'
      ? [
          // Only runs the gate made pending: a run its user created pending stays theirs to release.
          { key: variable(`target.metadata.annotations.${field(change.heldBy.key)} || ''`), operator: 'Equals', value: change.heldBy.value },
          { key: variable(targetStatus), operator: 'Equals', value: change.pendingStatus },
        ]
      : [
          // Started: a child other than the gate exists. Before that an evicted run simply stays queued.
          { key: variable(`length(target.status.childReferences[?pipelineTaskName!=${str(change.gateTask)}] || \`[]\`)`), operator: 'GreaterThan', value: 0 },
          { key: variable(conditionStatus('target', 'Succeeded')), operator: 'AnyNotIn', value: ['True', 'False'] },
          { key: variable(targetStatus), operator: 'Equals', value: '' },
        ];
  return {
    name: step.rule,
    match: match(step.trigger),
    preconditions: whenTriggerReaches(step.when, targetName),
    mutate: {
      targets: [
        {
          apiVersion: step.target.kind.apiVersion,
          kind: step.target.kind.kind,
          name: variable(targetName),
          namespace: variable(`${TRIGGER}.metadata.namespace`),
          preconditions: all(onlyIf),
        },
      ],
      patchesJson6902: jsonPatch([
        change.type === 'release' ? { op: 'remove', path: '/spec/status' } : { op: 'add', path: '/spec/status', value: change.stopStatus },
      ]),
    },
  };
}
