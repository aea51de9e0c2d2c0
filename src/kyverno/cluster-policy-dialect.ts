/**
 * Renders a gate step as `kyverno.io/v1` ClusterPolicy rules (JMESPath, JSON patches, mutate
 * targets). Only this file knows ClusterPolicy; the steps themselves are in ../gate/model.ts.
 */
import type {
  ClusterPolicySpec,
  ClusterPolicySpecRules,
  ClusterPolicySpecRulesContext,
  ClusterPolicySpecRulesMatch,
} from '../../imports/kyverno-kyverno.io.js';
import type { GenerateWorkloadStep, InsertGateStep, PolicyDefinition, SetConditionStep, Trigger } from '../gate/model.js';
import { conditionStatus, field, label, literal, str, variable } from './jmespath.js';

const TRIGGER = 'request.object';

/** A condition in Kyverno's precondition syntax. */
interface Precondition {
  readonly key: string;
  readonly operator: 'Equals' | 'NotEquals' | 'AnyIn' | 'AnyNotIn' | 'GreaterThan';
  readonly value: unknown;
}

export function renderClusterPolicySpec(definition: PolicyDefinition): ClusterPolicySpec {
  const step = definition.step;
  const mutatesExisting = step.type === 'set-condition';
  return {
    // Only admission requests start a step; background scans would re-run it on every object.
    background: mutatesExisting,
    admission: true,
    failurePolicy: definition.failurePolicy as ClusterPolicySpec['failurePolicy'],
    ...(mutatesExisting ? { mutateExistingOnPolicyUpdate: true } : {}),
    ...(step.type === 'generate-workload' ? { generateExisting: false } : {}),
    rules: rulesOf(step),
  };
}

function rulesOf(step: PolicyDefinition['step']): ClusterPolicySpecRules[] {
  switch (step.type) {
    case 'insert-gate':
      return insertGateRules(step);
    case 'generate-workload':
      return [generateWorkloadRule(step)];
    case 'set-condition':
      return [setConditionRule(step)];
  }
}

function match(trigger: Trigger, labels?: Readonly<Record<string, string>>): ClusterPolicySpecRulesMatch {
  const kind = `${trigger.kind.apiVersion}/${trigger.kind.kind}`;
  return {
    any: [
      {
        resources: {
          // A rule on the main resource alone never sees status updates, which controllers write to /status.
          kinds: trigger.subresource ? [kind, `${kind}/${trigger.subresource}`] : [kind],
          operations: [...trigger.operations] as never,
          namespaces: [...trigger.namespaces],
          ...(labels ? { selector: { matchLabels: { ...labels } } } : {}),
        },
      },
    ],
  };
}

function all(conditions: Precondition[]): { all: Precondition[] } {
  return { all: conditions };
}

function jsonPatch(operations: { op: 'add'; path: string; value: unknown }[]): string {
  return operations.map((o) => `- op: ${o.op}\n  path: ${o.path}\n  value: ${typeof o.value === 'string' ? o.value : JSON.stringify(o.value)}`).join('\n');
}

/** JSON-pointer escaping of one path segment. */
function pointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

// --- mutate-pipelinerun -------------------------------------------------------------------------

function insertGateRules(step: InsertGateStep): ClusterPolicySpecRules[] {
  const tasks = `${TRIGGER}.spec.pipelineSpec.tasks`;
  const ungatedInlineRun = all([
    // pipelineRef runs have no inline tasks to gate.
    { key: variable(`length(${tasks} || \`[]\`)`), operator: 'GreaterThan', value: 0 },
    // Never gate twice (a re-applied or copied run may already carry the gate).
    { key: variable(`length(${tasks}[?name==${str(step.gateTask)}] || \`[]\`)`), operator: 'Equals', value: 0 },
  ]);
  const common = {
    match: match(step.trigger),
    exclude: { any: [{ resources: { selector: { matchLabels: { [step.optOutLabel]: 'true' } } } }] },
    preconditions: ungatedInlineRun,
  };
  const gateTask = { name: step.gateTask, taskSpec: { ...step.customTask, spec: {} } };
  return [
    {
      // Runs first, on the original task list, so elementIndex addresses the user's tasks.
      name: 'wait-for-gate',
      ...common,
      mutate: {
        foreach: [
          {
            list: tasks,
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
      name: 'insert-gate',
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
  return {
    name: 'generate-workload',
    match: match(step.trigger, step.triggerLabels),
    preconditions: all([
      // Only the gate's CustomRuns: other custom tasks may share the task name but not the kind.
      { key: variable(`${TRIGGER}.spec.customSpec.apiVersion || ''`), operator: 'Equals', value: step.customTask.apiVersion },
      { key: variable(`${TRIGGER}.spec.customSpec.kind || ''`), operator: 'Equals', value: step.customTask.kind },
    ]),
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
          labels: { ...step.labels, ...Object.fromEntries(step.copiedLabels.map((key) => [key, variable(label(TRIGGER, key))])) },
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

// --- admit-customrun, release-workload ----------------------------------------------------------

function setConditionRule(step: SetConditionStep): ClusterPolicySpecRules {
  const targetName =
    step.target.name.from === 'owner'
      ? `${TRIGGER}.metadata.ownerReferences[?kind==${str(step.target.kind.kind)}].name | [0] || ''`
      : `${TRIGGER}.status.childReferences[?pipelineTaskName==${str(step.target.name.pipelineTask)}].name | [0] || ''`;
  const reasons = Object.entries(step.set.reasons);
  const reason =
    reasons.length === 1
      ? str(reasons[0]![1])
      : `lookup(${literal(step.set.reasons)}, ${conditionStatus(TRIGGER, step.when.condition)}) || ''`;
  // When the trigger reached its condition: deterministic, unlike the time the policy happens to run.
  const transitionTime =
    step.target.name.from === 'child'
      ? `${TRIGGER}.status.completionTime || time_now_utc()`
      : `${TRIGGER}.status.conditions[?type==${str(step.when.condition)}].lastTransitionTime | [0] || time_now_utc()`;
  // Computed in the context: a JSON patch is text, and quotes inside its {{ }} would break it.
  const context: ClusterPolicySpecRulesContext[] = [
    { name: 'reason', variable: { jmesPath: reason } },
    { name: 'transitionTime', variable: { jmesPath: transitionTime } },
  ];
  const condition = {
    type: step.set.type,
    status: step.set.status,
    reason: variable('reason'),
    message: step.set.message,
    lastTransitionTime: variable('transitionTime'),
  };
  const kindName = step.target.kind.kind;
  return {
    name: `set-${kindName.toLowerCase()}-${step.set.type.toLowerCase()}`,
    match: match(step.trigger, step.triggerLabels),
    preconditions: all([
      { key: variable(conditionStatus(TRIGGER, step.when.condition)), operator: 'AnyIn', value: [...step.when.statuses] },
      { key: variable(targetName), operator: 'NotEquals', value: '' },
    ]),
    context,
    mutate: {
      targets: [
        {
          apiVersion: step.target.kind.apiVersion,
          kind: `${kindName}/status`,
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
