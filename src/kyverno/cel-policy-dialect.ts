/**
 * Renders gate steps as Kyverno's `policies.kyverno.io/v1` policies, in CEL. Today: the steps at a
 * run's admission (insert-gate, hold-pending, hold-user-release) as a MutatingPolicy of JSON
 * patches, one mutation per rule of the model, in the model's order. Kyverno applies the mutations
 * in turn, each to the object as the ones before left it, as it applies a ClusterPolicy's rules.
 */
import type { MutatingPolicySpec, MutatingPolicySpecMutations } from '../../imports/kyverno-policies.kyverno.io.js';
import type { GateStep, HoldPendingStep, HoldUserReleaseStep, InsertGateStep, PolicyDefinition } from '../gate/model.js';
import { groupOf, resourceOf } from '../gate/names.js';
import { celHasKey, celLiteral, celSpecStatus, celStep } from './cel.js';
import { pointer } from './json-pointer.js';

type MutationStep = InsertGateStep | HoldPendingStep | HoldUserReleaseStep;

function isMutationStep(step: GateStep): step is MutationStep {
  return step.type === 'insert-gate' || step.type === 'hold-pending' || step.type === 'hold-user-release';
}

/** Whether every step of the policy is one this dialect renders as a MutatingPolicy. */
export function rendersAsMutatingPolicy(definition: PolicyDefinition): boolean {
  return definition.steps.every(isMutationStep);
}

export function renderMutatingPolicySpec(definition: PolicyDefinition): MutatingPolicySpec {
  const steps = definition.steps.filter(isMutationStep);
  const kinds = [...new Set(steps.map((s) => `${s.trigger.kind.apiVersion}/${s.trigger.kind.kind}`))];
  if (steps.length !== definition.steps.length || kinds.length !== 1) {
    throw new Error(`${definition.name}: the CEL dialect renders a MutatingPolicy of admission steps on one kind only`);
  }
  const kind = steps[0]!.trigger.kind;
  return {
    failurePolicy: definition.failurePolicy as never,
    matchConstraints: {
      resourceRules: [
        {
          apiGroups: [groupOf(kind)],
          apiVersions: [kind.apiVersion.split('/').pop()!],
          operations: [...new Set(steps.flatMap((s) => s.trigger.operations))],
          resources: [resourceOf(kind)],
        },
      ],
    },
    // Evaluated by the API server, as the ClusterPolicy's: requests no step reacts to never reach Kyverno.
    matchConditions: [{ name: 'gate-steps', expression: [...new Set(steps.map((s) => celStep(s, false)))].join(' || ') }],
    evaluation: { admission: { enabled: true }, background: { enabled: false } },
    mutations: steps.flatMap(mutationsOf),
  };
}

function mutationsOf(step: MutationStep): MutatingPolicySpecMutations[] {
  switch (step.type) {
    case 'insert-gate':
      return insertGateMutations(step);
    case 'hold-pending':
      return holdPendingMutations(step);
    case 'hold-user-release':
      return [holdUserReleaseMutation(step)];
  }
}

/** One rule of the model: its patches when the object, as earlier rules left it, passes `conditions`. */
function rule(name: string, conditions: string[], patches: string): MutatingPolicySpecMutations {
  return { patchType: 'JSONPatch', jsonPatch: { expression: `// ${name}\n${conditions.join(' &&\n')} ?\n${patches} : []` } };
}

/** A JSON value as a CEL literal; every value inside a map or list is `dyn`, as JSON's are. */
function celValue(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => `dyn(${celValue(v)})`).join(', ')}]`;
  if (value !== null && typeof value === 'object') return `{${Object.entries(value).map(([k, v]) => `${celLiteral(k)}: dyn(${celValue(v)})`).join(', ')}}`;
  return JSON.stringify(value);
}

function patch(op: 'add' | 'replace', path: string, value: string): string {
  return `JSONPatch{op: ${celLiteral(op)}, path: ${path}, value: ${value}}`;
}


/** Patches setting a label or annotation, whether or not the object has any yet. */
function setKey(map: 'labels' | 'annotations', key: string, value: string): string {
  const add = patch('add', celLiteral(`/metadata/${map}/${pointer(key)}`), celLiteral(value));
  const create = patch('add', celLiteral(`/metadata/${map}`), `{${celLiteral(key)}: ${celLiteral(value)}}`);
  return `(has(object.metadata.${map}) ? [${add}] : [${create}])`;
}

const TASKS = '(has(object.spec.pipelineSpec) && has(object.spec.pipelineSpec.tasks) ? object.spec.pipelineSpec.tasks : [])';
const FINALLY = '(has(object.spec.pipelineSpec) && has(object.spec.pipelineSpec.finally) ? object.spec.pipelineSpec.finally : [])';
const INLINE_RUN = `${TASKS}.size() > 0`;

function named(variable: string, name: string): string {
  return `(has(${variable}.name) && ${variable}.name == ${celLiteral(name)})`;
}

function insertGateMutations(step: InsertGateStep): MutatingPolicySpecMutations[] {
  const trigger = celStep(step, false);
  const gate = celLiteral(step.gateTask);
  const gateTask = { name: step.gateTask, taskSpec: { ...step.customTask, spec: {} } };
  const whenGate = celValue(step.finallyWhen);
  const finallyPath = (f: string) => `"/spec/pipelineSpec/finally/" + string(${FINALLY}.indexOf(${f})) + "/when"`;
  return [
    // The whole list is written back: a user's tasks pass through unread.
    rule(step.rules.dropLookalikes, [trigger, `${TASKS}.exists(t, ${named('t', step.gateTask)})`], `[${patch('replace', '"/spec/pipelineSpec/tasks"', `${TASKS}.filter(t, !${named('t', step.gateTask)})`)}]`),
    rule(
      step.rules.waitForGate,
      [trigger, INLINE_RUN],
      `${TASKS}.map(t, ${patch('add', `"/spec/pipelineSpec/tasks/" + string(${TASKS}.indexOf(t)) + "/runAfter"`, `[${gate}] + (has(t.runAfter) ? t.runAfter.filter(r, r != ${gate}) : [])`)})`,
    ),
    rule(step.rule, [trigger, INLINE_RUN], `[${patch('add', '"/spec/pipelineSpec/tasks/0"', celValue(gateTask))}] + ${setKey('labels', step.gatedLabel.key, step.gatedLabel.value)}`),
    rule(
      step.rules.gateFinally,
      [trigger, INLINE_RUN, `${FINALLY}.size() > 0`],
      `${FINALLY}.filter(f, !has(f.when) || f.when.size() == 0).map(f, ${patch('add', finallyPath('f'), `[${whenGate}]`)}) +\n` +
        // A copy of a gated run has it already.
        `${FINALLY}.filter(f, has(f.when) && f.when.size() > 0 && !f.when.exists(w, has(w.input) && w.input == ${celLiteral(step.finallyWhen.input)})).map(f, ${patch('add', `${finallyPath('f')} + "/-"`, whenGate)})`,
    ),
  ];
}

function holdPendingMutations(step: HoldPendingStep): MutatingPolicySpecMutations[] {
  const runs = step.runs === 'without-inline-tasks' ? [`${TASKS}.size() == 0`] : [];
  const trigger = [celStep(step, false), ...runs];
  const heldByGate = `(${celHasKey('object', 'annotations', step.heldBy.key)} && object.metadata.annotations[${celLiteral(step.heldBy.key)}] == ${celLiteral(step.heldBy.value)})`;
  return [
    rule(
      step.rule,
      [...trigger, `${celSpecStatus('object')} == ''`],
      `[${patch('add', '"/spec/status"', celLiteral(step.pendingStatus))}] + ${setKey('annotations', step.heldBy.key, step.heldBy.value)} + ${setKey('labels', step.gatedLabel.key, step.gatedLabel.value)}`,
    ),
    // Created pending by its user (the rule above has not just held it).
    rule(step.userPendingRule, [...trigger, `${celSpecStatus('object')} == ${celLiteral(step.pendingStatus)}`, `!${heldByGate}`], setKey('labels', step.gatedLabel.key, step.gatedLabel.value)),
  ];
}

function holdUserReleaseMutation(step: HoldUserReleaseStep): MutatingPolicySpecMutations {
  return rule(
    step.rule,
    // A run the gate holds is released by the gate only (the tenant guard refuses anyone else).
    [celStep(step, false), `!${celHasKey('oldObject', 'annotations', step.heldBy.key)}`],
    `[${patch('add', '"/spec/status"', celLiteral(step.pendingStatus))}] + ${setKey('annotations', step.heldBy.key, step.heldBy.value)}`,
  );
}
