/**
 * Renders gate steps as Kyverno's `policies.kyverno.io/v1` policies, in CEL:
 * - insert-gate, hold-pending and hold-user-release as a MutatingPolicy of JSON patches, one
 *   mutation per rule of the model, in the model's order. Kyverno applies the mutations in turn,
 *   each to the object as the ones before left it, as it applies a ClusterPolicy's rules;
 * - validate-run as a ValidatingPolicy that denies, one validation per rule, and one that warns for
 *   the rule that only warns (a policy denies or warns, not both);
 * - generate-queues as a GeneratingPolicy that synchronizes, one generation per queue;
 * - generate-workload as two GeneratingPolicies, one on each event, one for Kyverno's periodic
 *   re-apply, one generation per rule (see `workloadPolicies`);
 * - the status steps that change the object that triggered them (cancel-customrun,
 *   requeue-workload), one that names its trigger back (admit-customrun, admit-pipelinerun,
 *   evict-pipelinerun, ready-workload), or both (release-workload) as two MutatingPolicies that
 *   mutate existing objects, one on each event, one for Kyverno's periodic re-apply (see
 *   `statusPolicies`).
 */
import type { GeneratingPolicySpec, MutatingPolicySpec, MutatingPolicySpecMutations, ValidatingPolicySpec } from '../../imports/kyverno-policies.kyverno.io.js';
import { QUANTITY_PATTERN } from '../config/schema.js';
import type { GateStep, GenerateQueuesStep, GenerateWorkloadStep, Hold, HoldPendingStep, HoldUserReleaseStep, InsertGateStep, Operation, PolicyDefinition, ReleaseDispatchedStep, RequeueWorkloadStep, RouteMatch, RouteRunStep, SetConditionStep, SetRunStatusStep, Sizing, Target, TargetName, Trigger, ValidateRunStep } from '../gate/model.js';
import { type ApiKind, dispatchingQueueKeys, groupOf, kindKey, namespaceSelectorOf, resourceOf, UNRESERVED_CONDITIONS } from '../gate/names.js';
import { celCondition, celHasKey, celHasLabels, celHasValue, celLiteral, celSpecStatus, celStep } from './cel.js';
import { pointer } from './json-pointer.js';

type MutationStep = ReleaseDispatchedStep | RouteRunStep | InsertGateStep | HoldPendingStep | HoldUserReleaseStep;

function isMutationStep(step: GateStep): step is MutationStep {
  return ['release-dispatched', 'route-run', 'insert-gate', 'hold-pending', 'hold-user-release'].includes(step.type);
}

function isValidationStep(step: GateStep): step is ValidateRunStep {
  return step.type === 'validate-run';
}

/** A status step that sets a condition on the object that triggered it, from that object alone. */
type SelfConditionStep = SetConditionStep & { readonly target: { readonly name: { readonly from: 'self' } } };

/** A status step that changes another object than its trigger (a condition, or a run's spec.status), which names its trigger back. */
type OtherTargetStep = (SetConditionStep | SetRunStatusStep) & { readonly target: { readonly fromTarget: NonNullable<Target['fromTarget']> } };

/** A status step that changes the object that triggered it. */
type OwnStatusStep = SelfConditionStep | RequeueWorkloadStep;

type StatusStep = OwnStatusStep | OtherTargetStep;

function isStatusStep(step: GateStep): step is StatusStep {
  if (step.type === 'requeue-workload') return true;
  if (step.type === 'set-run-status') return step.target.fromTarget !== undefined;
  return step.type === 'set-condition' && (onItself(step) || (step.target.fromTarget !== undefined && !step.read)) && !step.trigger.change;
}

function isOwnStatusStep(step: StatusStep): step is OwnStatusStep {
  return step.type === 'requeue-workload' || (step.type === 'set-condition' && onItself(step));
}

/** The step's target is its trigger: of its kind, and named as it is. */
function onItself(step: SetConditionStep): boolean {
  const { trigger, target } = step;
  return target.name.from === 'self' && kindKey(target.kind) === kindKey(trigger.kind);
}

/** A CEL policy of a policy of the gate: its name and spec. */
export type CelPolicy = {
  readonly name: string;
  /** The oldest Kyverno release the policy works on, when it is newer than the gate's. */
  readonly minVersion?: string;
} & (
  | { readonly kind: 'MutatingPolicy'; readonly spec: MutatingPolicySpec }
  | { readonly kind: 'ValidatingPolicy'; readonly spec: ValidatingPolicySpec }
  | { readonly kind: 'GeneratingPolicy'; readonly spec: GeneratingPolicySpec }
);

export function renderCelPolicies(definition: PolicyDefinition): CelPolicy[] {
  const { steps } = definition;
  const [step] = steps;
  if (steps.every(isMutationStep)) return [{ name: definition.name, kind: 'MutatingPolicy', spec: mutatingPolicySpec(definition, steps) }];
  if (steps.length === 1 && isValidationStep(step!)) return validatingPolicies(definition, step);
  // 1.19.0 deletes and makes again, at each periodic re-apply, what a GeneratingPolicy synchronizes (kyverno/kyverno#17594).
  if (steps.length === 1 && step!.type === 'generate-queues') return [{ name: definition.name, kind: 'GeneratingPolicy', spec: generatingQueuesSpec(step), minVersion: '1.19.1' }];
  if (steps.every((s): s is GenerateWorkloadStep => s.type === 'generate-workload')) return workloadPolicies(definition, steps);
  if (steps.every(isStatusStep)) return statusPoliciesByRoute(definition, steps);
  throw new Error(`${definition.name}: the CEL dialect renders no policy of steps ${[...new Set(steps.map((s) => s.type))].join(', ')} together`);
}

/** The requests of `operations` on `kind` (and on its subresource), as a rule of match constraints. */
function resourceRule(kind: ApiKind, operations: readonly Operation[], subresource?: 'status') {
  const resource = resourceOf(kind);
  return { apiGroups: [groupOf(kind)], apiVersions: [kind.apiVersion.split('/').pop()!], operations: [...operations] as never[], resources: subresource ? [resource, `${resource}/${subresource}`] : [resource] };
}

/** The namespaces of a trigger chosen by their labels, as a selector the API server (or Kyverno, listing objects) evaluates. */
function namespaceMatch(trigger: Trigger) {
  return trigger.namespaces && 'labels' in trigger.namespaces ? { namespaceSelector: namespaceSelectorOf(trigger.namespaces) as never } : {};
}

/**
 * Match constraints and conditions of policies whose steps are triggered at admission, on one kind
 * or (status steps) on several, each step then on requests of its trigger's kind only.
 */
function admissionMatch(definition: PolicyDefinition, steps: readonly GateStep[]) {
  const triggers = [...new Map(steps.map(({ trigger }) => [kindKey(trigger.kind), trigger])).values()];
  const namespaces = new Set(triggers.map((trigger) => JSON.stringify(namespaceMatch(trigger))));
  if (namespaces.size > 1) throw new Error(`${definition.name}: the CEL dialect renders steps on one set of namespaces per policy`);
  const ofKind = (step: GateStep) => (triggers.length > 1 ? `(request.kind.group == ${celLiteral(groupOf(step.trigger.kind))} && request.kind.kind == ${celLiteral(step.trigger.kind.kind)} && ${celStep(step)})` : celStep(step));
  return {
    failurePolicy: definition.failurePolicy as never,
    matchConstraints: {
      // Evaluated by the API server; namespaces listed by name are in the match conditions.
      ...namespaceMatch(triggers[0]!),
      resourceRules: triggers.map((trigger) => {
        const sameKind = steps.filter((step) => kindKey(step.trigger.kind) === kindKey(trigger.kind));
        return resourceRule(trigger.kind, [...new Set(sameKind.flatMap((step) => step.trigger.operations))], sameKind.find((step) => step.trigger.subresource)?.trigger.subresource);
      }),
    },
    // Evaluated by the API server, as the ClusterPolicy's: requests no step reacts to never reach Kyverno.
    matchConditions: [{ name: 'gate-steps', expression: [...new Set(steps.map(ofKind))].join(' || ') }],
    evaluation: { admission: { enabled: true }, background: { enabled: false } },
  };
}

function mutatingPolicySpec(definition: PolicyDefinition, steps: readonly MutationStep[]): MutatingPolicySpec {
  return { ...admissionMatch(definition, steps), mutations: steps.flatMap(mutationsOf) };
}

function mutationsOf(step: MutationStep): MutatingPolicySpecMutations[] {
  switch (step.type) {
    case 'route-run':
      return routeRunMutations(step);
    case 'insert-gate':
      return insertGateMutations(step);
    case 'hold-pending':
      return holdPendingMutations(step);
    case 'hold-user-release':
      return [holdUserReleaseMutation(step)];
    case 'release-dispatched':
      return [releaseDispatchedMutation(step)];
  }
}

/**
 * One rule of the model: its patches when the object, as earlier rules left it, passes `conditions`.
 * With `binds`, the conditions and patches read variables of those names, each bound in
 * turn (`object`: in place of the object Kyverno gives).
 */
function rule(name: string, conditions: string[], patches: string, ...binds: { readonly name: string; readonly value: string }[]): MutatingPolicySpecMutations {
  const body = `${conditions.join(' &&\n')} ?\n${patches} : []`;
  return { patchType: 'JSONPatch', jsonPatch: { expression: `// ${name}\n${binds.reduceRight((inner, bind) => `cel.bind(${bind.name}, ${bind.value},\n${inner})`, body)}` } };
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

/**
 * Patches setting labels or annotations, whether or not the object has any yet; `unlessSet` only
 * where the object has no value of its own. The patches of one mutation all apply to the object as
 * it came, so the map is created whole when it is missing.
 */
function setKeys(map: 'labels' | 'annotations', always: Readonly<Record<string, string>>, unlessSet: Readonly<Record<string, string>> = {}): string {
  const add = (key: string, value: string) => patch('add', celLiteral(`/metadata/${map}/${pointer(key)}`), celLiteral(value));
  const adds = [
    `[${Object.entries(always).map(([key, value]) => add(key, value)).join(', ')}]`,
    ...Object.entries(unlessSet).map(([key, value]) => `(${celLiteral(key)} in object.metadata.${map} ? [] : [${add(key, value)}])`),
  ];
  const create = patch('add', celLiteral(`/metadata/${map}`), celLiteral({ ...unlessSet, ...always }));
  return `(has(object.metadata.${map}) ? ${adds.join(' + ')} : [${create}])`;
}

function setKey(map: 'labels' | 'annotations', key: string, value: string): string {
  return setKeys(map, { [key]: value });
}

const TASKS = '(has(object.spec.pipelineSpec) && has(object.spec.pipelineSpec.tasks) ? object.spec.pipelineSpec.tasks : [])';
const FINALLY = '(has(object.spec.pipelineSpec) && has(object.spec.pipelineSpec.finally) ? object.spec.pipelineSpec.finally : [])';
const INLINE_RUN = `${TASKS}.size() > 0`;

function named(variable: string, name: string): string {
  return `(has(${variable}.name) && ${variable}.name == ${celLiteral(name)})`;
}

function routeRunMutations(step: RouteRunStep): MutatingPolicySpecMutations[] {
  const trigger = celStep(step);
  const routed = celHasKey('object', 'annotations', step.routedBy);
  const clear = `[JSONPatch{op: "remove", path: ${celLiteral(`/metadata/annotations/${pointer(step.routedBy)}`)}}]`;
  return [
    rule(step.rule, [trigger, routed], clear),
    ...step.routes.map((route) => {
      // What the route sets: in place of the run's own values when it enforces, beside them otherwise.
      type Values = Readonly<Record<string, string>>;
      const split = (values: Values): [Values, Values] => (route.enforce ? [values, {}] : [{}, values]);
      const [labels, labelsUnlessSet] = split(route.labels);
      const [annotations, annotationsUnlessSet] = split(route.annotations);
      const patches = [
        ...(Object.keys(route.labels).length > 0 ? [setKeys('labels', labels, labelsUnlessSet)] : []),
        // Each route sets routedBy: a run a route before this one took is skipped here.
        setKeys('annotations', { [step.routedBy]: route.rule, ...annotations }, annotationsUnlessSet),
      ];
      return rule(route.rule, [trigger, `!${routed}`, ...celRouteMatch(route.match)], patches.join(' + '));
    }),
  ];
}

function celRouteMatch(match: RouteMatch): string[] {
  const keyed = (map: 'labels' | 'annotations', values: Readonly<Record<string, readonly string[]>> = {}) =>
    Object.entries(values).map(([key, accepted]) => `(${celHasKey('object', map, key)} && object.metadata.${map}[${celLiteral(key)}] in ${celLiteral(accepted)})`);
  const ref = match.pipelineRef ?? {};
  return [
    ...(match.namespaces ? [`object.metadata.namespace in ${celLiteral(match.namespaces)}`] : []),
    ...keyed('labels', match.labels),
    ...keyed('annotations', match.annotations),
    ...(['name', 'resolver'] as const).flatMap((part) =>
      ref[part] === undefined ? [] : [`(has(object.spec.pipelineRef) && has(object.spec.pipelineRef.${part}) && object.spec.pipelineRef.${part} == ${celLiteral(ref[part])})`],
    ),
  ];
}

function insertGateMutations(step: InsertGateStep): MutatingPolicySpecMutations[] {
  const trigger = celStep(step);
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
  const trigger = [celStep(step), ...runs];
  return [
    rule(
      step.rule,
      [...trigger, `${celSpecStatus('object')} == ''`],
      `[${patch('add', '"/spec/status"', celLiteral(step.pendingStatus))}] + ${setKey('annotations', step.heldBy.key, step.heldBy.value)} + ${setKey('labels', step.gatedLabel.key, step.gatedLabel.value)}`,
    ),
    // Created pending by its user (the rule above has not just held it).
    rule(step.userPendingRule, [...trigger, `${celSpecStatus('object')} == ${celLiteral(step.pendingStatus)}`, `!${celHasValue('object', 'annotations', step.heldBy.key, step.heldBy.value)}`], setKey('labels', step.gatedLabel.key, step.gatedLabel.value)),
    ...(step.dispatch ? [dispatchMutation(step, trigger)] : []),
  ];
}

/** Marks a run one of the rules above labelled, if its queue dispatches. */
function dispatchMutation(step: HoldPendingStep, trigger: string[]): MutatingPolicySpecMutations {
  const dispatch = step.dispatch!;
  const ns = 'object.metadata.namespace';
  // The run's queue keyed as dispatchingQueueKeys does.
  const queue = `(${ns} in ${celDefaultQueues(dispatch.queue)} ? ${ns} : '') + '/' + ${celQueueName(dispatch.queue, 'object.metadata.?labels.orValue({})')}`;
  const dispatching = celLiteral(dispatchingQueueKeys(dispatch));
  return rule(dispatch.rule, [...trigger, celHasValue('object', 'labels', step.gatedLabel.key, step.gatedLabel.value), `${queue} in ${dispatching}`], `[${patch('add', '"/spec/managedBy"', celLiteral(dispatch.managedBy))}]`);
}

/**
 * The LocalQueue of a run: its label (in the map `labels`), or its namespace's default. A namespace
 * not listed is a tenant namespace: the policies match no other.
 */
function celQueueName(queue: Sizing['queue'], labels: string): string {
  return `(${celLiteral(queue.label)} in ${labels} ? ${labels}[${celLiteral(queue.label)}] : ${celDefaultQueues(queue)}[?object.metadata.namespace].orValue(${celLiteral(queue.tenantDefault ?? '')}))`;
}

/** The default LocalQueue of each listed namespace, as a CEL map. */
function celDefaultQueues(queue: Sizing['queue']): string {
  return celLiteral(Object.fromEntries(queue.defaults.map((d) => [d.namespace, d.queue])));
}

function releaseDispatchedMutation(step: ReleaseDispatchedStep): MutatingPolicySpecMutations {
  return rule(
    step.rule,
    [celStep(step), `${celSpecStatus('object')} == ${celLiteral(step.pendingStatus)}`, celHasValue('object', 'annotations', step.heldBy.key, step.heldBy.value)],
    `[JSONPatch{op: "remove", path: "/spec/status"}]`,
  );
}

function holdUserReleaseMutation(step: HoldUserReleaseStep): MutatingPolicySpecMutations {
  return rule(
    step.rule,
    // A run the gate holds is released by the gate only (the tenant guard refuses anyone else).
    [celStep(step), `!${celHasKey('oldObject', 'annotations', step.heldBy.key)}`],
    `[${patch('add', '"/spec/status"', celLiteral(step.pendingStatus))}] + ${setKey('annotations', step.heldBy.key, step.heldBy.value)}`,
  );
}

// --- validate-run ---------------------------------------------------------------------------------

/** A validation of the model's rule `name`: `valid` holds, or the request gets `message`. */
function validation(name: string, valid: string, message: string) {
  return { expression: `// ${name}\n${valid}`, messageExpression: message };
}

/** Text and CEL string expressions joined into one CEL string expression. */
function text(...parts: (string | { cel: string })[]): string {
  return parts.map((p) => (typeof p === 'string' ? celLiteral(p) : `(${p.cel})`)).join(' + ');
}

function validatingPolicies(definition: PolicyDefinition, step: ValidateRunStep): CelPolicy[] {
  const prefix = step.requests.annotationPrefix;
  const classes = step.priority.classes.map((c) => c.name);
  const keysOf = (resources: Readonly<Record<string, string>>) => celLiteral(Object.keys(resources));
  const tenantDefaults = step.requests.tenantDefaults;
  const variables = [
    { name: 'labels', expression: 'object.metadata.?labels.orValue({})' },
    { name: 'annotations', expression: 'object.metadata.?annotations.orValue({})' },
    {
      name: 'queueName',
      expression: celQueueName(step.queue, 'variables.labels'),
    },
    // Read with the request's own fields only: the queue a run names need not exist.
    { name: 'queues', expression: celList(step.localQueue, 'object.metadata.namespace') },
    { name: 'clusterQueue', expression: `variables.queues.filter(q, q.metadata.name == variables.queueName).map(q, q.spec.clusterQueue)[?0].orValue('')` },
    { name: 'badRequests', expression: `variables.annotations.filter(k, k.startsWith(${celLiteral(prefix)}) && !variables.annotations[k].matches(${celLiteral(QUANTITY_PATTERN)})).sort()` },
    {
      name: 'requested',
      expression:
        `(${celLiteral(Object.fromEntries(step.requests.defaults.map((d) => [`${d.namespace}/${d.queue}`, Object.keys(d.value)])))}[?object.metadata.namespace + '/' + variables.queueName]` +
        `${tenantDefaults ? `.or(${celLiteral(Object.fromEntries(tenantDefaults.map((d) => [d.queue, Object.keys(d.value)])))}[?variables.queueName])` : ''}.orValue(${keysOf(step.requests.fallback)})` +
        ` + variables.annotations.filter(k, k.startsWith(${celLiteral(prefix)})).map(k, k.substring(${prefix.length})) + ${keysOf(step.requests.fixed)}).distinct()`,
    },
    {
      name: 'covered',
      expression: `${celList(step.clusterQueue, "''")}.filter(cq, cq.metadata.name == variables.clusterQueue).map(cq, cq.spec.resourceGroups.map(g, g.coveredResources).flatten()).flatten()`,
    },
    { name: 'uncovered', expression: 'variables.requested.filter(r, !(r in variables.covered)).sort()' },
  ];
  const label = (key: string) => `variables.labels[?${celLiteral(key)}].orValue('')`;
  const deny = [
    validation(
      step.rules.knownQueue,
      'variables.queues.exists(q, q.metadata.name == variables.queueName)',
      text(
        'queue "',
        { cel: 'variables.queueName' },
        `" (label ${step.queue.label}, or the default of the namespace) is no LocalQueue of namespace `,
        { cel: 'object.metadata.namespace' },
        '; its LocalQueues: ',
        { cel: "variables.queues.map(q, q.metadata.name).join(', ')" },
        `. Set ${step.queue.label} to one of them.`,
      ),
    ),
    validation(
      step.rules.requestQuantities,
      'variables.badRequests.size() == 0',
      text('annotation ', { cel: 'variables.badRequests[0]' }, ': "', { cel: 'variables.annotations[variables.badRequests[0]]' }, '" is not a resource quantity; write one such as 2, 500m or 4Gi.'),
    ),
    validation(
      step.rules.coveredRequests,
      // A queue that does not exist is known-queue's to refuse.
      "variables.clusterQueue == '' || variables.uncovered.size() == 0",
      text(
        'the run asks for ',
        { cel: "variables.uncovered.join(', ')" },
        ', which ClusterQueue ',
        { cel: 'variables.clusterQueue' },
        ' of its queue ',
        { cel: 'variables.queueName' },
        ' does not cover, so Kueue would never admit it; it covers ',
        { cel: "variables.covered.join(', ')" },
        `. Remove the annotation ${prefix}<resource>, or have the resource added to the ClusterQueue.`,
      ),
    ),
    validation(
      step.rules.maxExecutionTime,
      `${label(step.maxExecutionTimeLabel)} == '' || ${label(step.maxExecutionTimeLabel)}.matches('^[1-9][0-9]*$')`,
      text('label ', step.maxExecutionTimeLabel, ': "', { cel: label(step.maxExecutionTimeLabel) }, '" is not a whole number of seconds above 0; write one such as 3600, or remove the label.'),
    ),
  ];
  const warn = validation(
    step.rules.knownPriority,
    `${label(step.priority.label)} == '' || ${label(step.priority.label)} in ${celLiteral(classes)}`,
    text(
      'label ',
      step.priority.label,
      ': "',
      { cel: label(step.priority.label) },
      `" names no priority class of the gate (${classes.join(', ') || 'none configured'}); ` + (step.priority.default ? `the run gets ${step.priority.default}.` : 'the run gets no priority.'),
    ),
  );
  const match = admissionMatch(definition, [step]);
  return [
    { name: definition.name, kind: 'ValidatingPolicy', spec: { ...match, validationActions: ['Deny' as never], variables, validations: deny } },
    // A policy either denies or warns.
    { name: `${definition.name}-${step.rules.knownPriority}`, kind: 'ValidatingPolicy', spec: { ...match, validationActions: ['Warn' as never], variables, validations: [warn] } },
  ];
}

// --- generate-workload ----------------------------------------------------------------------------

/**
 * The Workloads of gated runs, as two GeneratingPolicies:
 * - `<policy>`, on each event its steps react to, a generation per step. Kyverno generates in the
 *   background, from the request as the API server sent it, once it has read the trigger back: a
 *   trigger not stored yet (a slower webhook still deciding) fails the UpdateRequest, which Kyverno
 *   runs a few times more, then drops.
 * - `<policy>-reapply`, with no webhook, of the steps on a state (a run still waiting), a generation
 *   per step: at each periodic re-apply, Kyverno generates for each of the steps' namespaces, which
 *   lists that namespace's gated runs and Workloads once, and makes the Workload of each run still
 *   waiting without one. Triggered by the runs themselves, Kyverno would read every gated run back
 *   at each re-apply, ended ones included, each by listing its namespace's runs
 *   (`handleGenerateExisting` in `pkg/policy/gpol.go`, `GetResource` in `pkg/background/common`).
 * Kyverno makes a GeneratingPolicy's webhook fail open: runs whose events it missed wait for their
 * Workload until the re-apply, none unqueued. A generation makes the Workload only where there is
 * none: Kyverno rewrites a Workload it generated for the same trigger, spec and all, which Kueue
 * owns once it has queued it.
 */
function workloadPolicies(definition: PolicyDefinition, steps: readonly GenerateWorkloadStep[]): CelPolicy[] {
  const spec = celWorkloadSpec(steps[0]!);
  if (steps.some((step) => celWorkloadSpec(step) !== spec)) throw new Error(`${definition.name}: the CEL dialect sizes the Workloads of one policy alike`);
  const { matchConstraints, matchConditions } = admissionMatch(definition, steps);
  // The Workloads outlive the policies: a move to the other dialect must not take those of waiting or running runs away.
  const evaluation = (existing: boolean) => ({ admission: { enabled: !existing }, generateExisting: { enabled: existing }, synchronize: { enabled: false }, orphanDownstreamOnPolicyDelete: { enabled: true } });
  const onEvents: CelPolicy = {
    name: definition.name,
    kind: 'GeneratingPolicy',
    spec: { matchConstraints, matchConditions, evaluation: evaluation(false), variables: [{ name: 'workloadSpec', expression: spec }], generate: steps.map(eventGeneration) },
  };
  const waiting = steps.filter((step) => step.trigger.state !== undefined);
  if (waiting.length === 0) return [onEvents];
  const { namespaces } = waiting[0]!.trigger;
  if (!namespaces || waiting.some((step) => JSON.stringify(step.trigger.namespaces) !== JSON.stringify(namespaces))) throw new Error(`${definition.name}: the CEL dialect re-applies steps on one set of namespaces per policy`);
  const workloadLabels = waiting.map((step) => step.labels);
  const reapply: CelPolicy = {
    name: `${definition.name}-reapply`,
    kind: 'GeneratingPolicy',
    spec: {
      // Kyverno evaluates a generation for existing objects as their creation.
      matchConstraints: { resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE' as never], resources: ['namespaces'] }], objectSelector: namespaceSelectorOf(namespaces) as never },
      evaluation: evaluation(true),
      variables: [
        { name: 'namespace', expression: 'object.metadata.name' },
        { name: 'workloads', expression: `${celList(steps[0]!.workload, 'variables.namespace', labelsOfAll(workloadLabels).objectSelector)}.map(w, w.metadata.name)` },
      ],
      generate: waiting.map((step) => reapplyGeneration(step, spec)),
    },
  };
  return [onEvents, reapply];
}

/** The objects of `kind` in `namespace` (a CEL expression) with one of the values of each label `selector` names, as a list. */
function celList(kind: ApiKind, namespace: string, selector?: { readonly matchExpressions: readonly { readonly key: string; readonly values: readonly string[] }[] }): string {
  // resource.List selects by label values: a label with several values is a filter afterwards.
  const [one, several] = [(selector?.matchExpressions ?? []).filter((e) => e.values.length === 1), (selector?.matchExpressions ?? []).filter((e) => e.values.length > 1)];
  const byValue = one.length > 0 ? `, ${celLiteral(Object.fromEntries(one.map((e) => [e.key, e.values[0]!])))}` : '';
  const list = `resource.List(${celLiteral(kind.apiVersion)}, ${celLiteral(resourceOf(kind))}, ${namespace}${byValue}).?items.orValue([])`;
  return several.length === 0 ? list : `${list}.filter(o, ${several.map((e) => `o.metadata.?labels.orValue({})[?${celLiteral(e.key)}].orValue('') in ${celLiteral(e.values)}`).join(' && ')})`;
}

/**
 * The Workload's spec for a run (the trigger, `object`, or the gate CustomRun it was made from):
 * its queue, priority, requests (each resource's quantity fixed over asked for over the queue's
 * default) and maximum execution time. One expression on `object`, for a policy's variable or for
 * each run a re-apply lists.
 */
function celWorkloadSpec(step: GenerateWorkloadStep): string {
  const { requests, priority } = step;
  const prefix = requests.annotationPrefix;
  const perQueue = `${celValue(Object.fromEntries(requests.defaults.map((d) => [`${d.namespace}/${d.queue}`, d.value])))}[?object.metadata.namespace + '/' + queueName]`;
  const perTenantQueue = requests.tenantDefaults ? `.or(${celValue(Object.fromEntries(requests.tenantDefaults.map((d) => [d.queue, d.value])))}[?queueName])` : '';
  const label = (key: string) => `labels[?${celLiteral(key)}].orValue('')`;
  const priorityOf = celValue(Object.fromEntries(priority.classes.map((c) => [c.name, c.value])));
  const ifPriority = (value: string) => `priorityClass == '' ? optional.none() : optional.of(${value})`;
  const binds: [string, string][] = [
    ['labels', 'object.metadata.?labels.orValue({})'],
    ['annotations', 'object.metadata.?annotations.orValue({})'],
    ['queueName', celQueueName(step.queue, 'labels')],
    ['defaultRequests', `${perQueue}${perTenantQueue}.orValue(${celValue(requests.fallback)})`],
    ['asked', `annotations.filter(k, k.startsWith(${celLiteral(prefix)})).map(k, k.substring(${prefix.length}))`],
    ['fixed', celValue(requests.fixed)],
    ['resources', '(defaultRequests.map(r, r) + asked + fixed.map(r, r)).distinct()'],
    // An unknown class name falls back to the default rather than referencing a missing class.
    ['priorityClass', `${label(priority.label)} in ${celLiteral(priority.classes.map((c) => c.name))} ? ${label(priority.label)} : ${celLiteral(priority.default ?? '')}`],
    ['maxExecution', label(step.maxExecutionTimeLabel)],
  ];
  const requested = `transform.listObjToMap(resources.map(r, {"resource": r}), resources.map(r, {"quantity": r in fixed ? fixed[r] : r in asked ? annotations[${celLiteral(prefix)} + r] : defaultRequests[r]}), "resource", "quantity")`;
  const spec =
    `{"queueName": queueName, "podSets": [{"name": "main", "count": 1, "template": {"spec": {"containers": [{"name": "main", "resources": {"requests": ${requested}}}]}}}], ` +
    `?"priorityClassRef": ${ifPriority(`{"group": ${celLiteral(groupOf(step.workload))}, "kind": "WorkloadPriorityClass", "name": priorityClass}`)}, ` +
    `?"priority": ${ifPriority(`${priorityOf}[priorityClass]`)}, ` +
    // No label, or one that is not a number: no limit (validate-pipelinerun refuses such a label).
    `?"maximumExecutionTimeSeconds": maxExecution.matches('^[1-9][0-9]*$') ? optional.of(int(maxExecution)) : optional.none()}`;
  return binds.reduceRight((inner, [name, value]) => `cel.bind(${name}, ${value},\n${inner})`, spec);
}

/**
 * What a step makes of a run (`object`) and its owner (`owner`, the run itself or the object it
 * names, read with `read`): the Workload, named after and owned by the owner, if the owner is one
 * (`conditions`; a gate CustomRun must not have ended: the Workload of a gate that is done would
 * never be admitted).
 */
function workloadOf(step: GenerateWorkloadStep, spec: string) {
  const ownerKind = step.owner?.kind ?? step.trigger.kind;
  const runName = step.runLabel.from === 'trigger-name' ? 'object.metadata.name' : `object.metadata.?labels.orValue({})[?${celLiteral(step.runLabel.key)}].orValue('')`;
  const labels = `{${[...Object.entries(step.labels).map(([key, value]) => `${celLiteral(key)}: ${celLiteral(value)}`), `${celLiteral(step.runLabel.key)}: ${runName}`].join(', ')}}`;
  const owner = `{"apiVersion": ${celLiteral(ownerKind.apiVersion)}, "kind": ${celLiteral(ownerKind.kind)}, "name": owner.metadata.name, "uid": owner.metadata.uid}`;
  return {
    read: step.owner ? celRead(step.owner.kind, step.owner.name) : 'object',
    // The name the Workload will have, before the owner is read.
    name: step.owner ? celTargetName(step.owner.name, step.owner.kind) : 'object.metadata.name',
    conditions: [
      'owner != null',
      // Only the gate's CustomRuns: other custom tasks may share the task name but not the kind.
      ...(step.customTask
        ? [
            `owner.spec.?customSpec.?apiVersion.orValue('') == ${celLiteral(step.customTask.apiVersion)}`,
            `owner.spec.?customSpec.?kind.orValue('') == ${celLiteral(step.customTask.kind)}`,
            `!${celCondition('Succeeded', ['True', 'False'], 'owner')}`,
          ]
        : []),
    ],
    workload: `{"apiVersion": ${celLiteral(step.workload.apiVersion)}, "kind": ${celLiteral(step.workload.kind)}, "metadata": {"name": owner.metadata.name, "labels": ${labels}, "ownerReferences": [${owner}]}, "spec": ${spec}}`,
  };
}

/** A step's generation on an event: the Workload of the trigger (`object`), if it has none yet. */
function eventGeneration(step: GenerateWorkloadStep) {
  const { read, conditions, workload } = workloadOf(step, 'variables.workloadSpec');
  const none = `dyn(${celGet(step.workload, 'owner.metadata.name')}) == null`;
  return { expression: `// ${step.rule}\ncel.bind(owner, ${read},\ngenerator.Apply(object.metadata.namespace, ${[celStep(step), ...conditions, none].join(' &&\n')} ?\n[${workload}] : []))` };
}

/**
 * A step's generation at the re-apply, for a namespace (`object`): the Workload of each of its runs
 * the step is on, whose Workload is not among the namespace's (`variables.workloads`). Only those
 * runs' owners are read.
 */
function reapplyGeneration(step: GenerateWorkloadStep, spec: string) {
  const { read, name, conditions, workload } = workloadOf(step, spec);
  const runs = celList(step.trigger.kind, 'variables.namespace', labelsOfAll([step.trigger.labels ?? {}]).objectSelector);
  const waiting = `cel.bind(object, run, ${celStep(step, 'listed')} && !(${name} in variables.workloads))`;
  return {
    expression:
      `// ${step.rule}\ngenerator.Apply(variables.namespace, ${runs}.filter(run, ${waiting})\n` +
      `.map(run, cel.bind(object, run, cel.bind(owner, ${read},\n${conditions.join(' &&\n')} ?\n[${workload}] : [])))\n.flatten())`,
  };
}

// --- generate-queues ------------------------------------------------------------------------------

/**
 * The queues of a namespace that has the trigger's labels. Kyverno lists the namespaces to generate
 * for by the object selector, at each periodic re-apply (so a namespace labelled while Kyverno was
 * down gets its queues then: a GeneratingPolicy's webhook always fails open). With synchronize,
 * updates of a namespace that had the labels reach Kyverno whatever the match conditions say, and
 * a namespace that fails them loses what was generated for it. The queues outlive the policy, as in
 * the ClusterPolicy dialect: the other dialect's policy takes them over when a cluster moves.
 */
function generatingQueuesSpec(step: GenerateQueuesStep): GeneratingPolicySpec {
  const { trigger } = step;
  const unless = Object.entries(trigger.unlessLabels ?? {});
  return {
    matchConstraints: {
      resourceRules: [resourceRule(trigger.kind, trigger.operations)],
      objectSelector: {
        matchLabels: { ...trigger.labels },
        ...(unless.length > 0 ? { matchExpressions: unless.map(([key, value]) => ({ key, operator: 'NotIn', values: [value] })) } : {}),
      },
    },
    matchConditions: [
      {
        name: step.rule,
        expression: [celHasLabels('object', trigger.labels), ...unless.map(([key, value]) => `!${celHasValue('object', 'labels', key, value)}`)].join(' && '),
      },
    ],
    evaluation: { synchronize: { enabled: true }, generateExisting: { enabled: true }, orphanDownstreamOnPolicyDelete: { enabled: true } },
    generate: step.queues.map((queue) => ({
      expression: `// ${step.rule}-${queue.name}\ngenerator.Apply(object.metadata.name, [${celValue({ ...step.localQueue, metadata: { name: queue.name }, spec: { clusterQueue: queue.clusterQueue } })}])`,
    })),
  };
}

// --- status steps ---------------------------------------------------------------------------------

/**
 * Status steps that change the object that triggered them, or an object that names its trigger
 * back, as two MutatingPolicies with the same mutations, for the two ways Kyverno 1.19 runs a
 * MutatingPolicy on existing objects:
 * - `<policy>`, on each event: the API server sends Kyverno the updates the match conditions pass,
 *   and its background controller reads the trigger again and mutates the target, as the update
 *   left the trigger (see `updated`). Its target is chosen by an expression (a read: Kyverno takes
 *   only a map), which Kyverno's periodic re-apply skips;
 * - `<policy>-reapply`, with no webhook: at each periodic re-apply (BACKGROUND_SCAN_INTERVAL) Kyverno
 *   lists the objects its target constraints select and mutates those the mutations' conditions
 *   pass (a target reads its trigger back), so an event Kyverno never saw is made up for. One
 *   UpdateRequest per re-apply, however many objects: the ones that have ended fail the target
 *   conditions before any write. It re-applies every step, also one the model leaves to events
 *   (`reapplied: false`): that saves a ClusterPolicy's re-apply the triggers that have ended, which
 *   this one never lists.
 * Both fail open, as every status step does.
 */
function statusPolicies(name: string, definition: PolicyDefinition, steps: readonly StatusStep[]): CelPolicy[] {
  const { failurePolicy, matchConstraints: byKind, matchConditions } = admissionMatch(definition, steps);
  // Kyverno makes an UpdateRequest for each object these select when its background controller
  // starts, or the policy changes (`createTriggerURs` in pkg/policy/mpol.go): the gate's objects only.
  const matchConstraints = { ...byKind, ...labelsOfAll(steps.map((step) => step.trigger.labels ?? {})) };
  const own = steps.filter(isOwnStatusStep);
  const others = steps.filter((step): step is OtherTargetStep => !isOwnStatusStep(step));
  const target = bothTargets(definition, others.length > 0 ? otherTarget(definition, others) : undefined, own.length > 0 ? ownTarget(own) : undefined);
  const write = { ...resourceRule(target.kind, ['UPDATE']), resources: [writeOf(steps[0]!)] };
  const evaluation = (admission: boolean) => ({ admission: { enabled: admission }, background: { enabled: false }, mutateExisting: { enabled: true } });
  const mutations = steps.map((step) =>
    step.type === 'requeue-workload' ? requeueMutation(step) : step.type === 'set-run-status' ? setRunStatus(step) : isOwnStatusStep(step) ? setOwnCondition(step) : setOtherCondition(step),
  );
  const variables = statusVariables(own);
  const read = variables.length > 0 ? { variables } : {};
  // Kyverno tests the match conditions again on the object it reads when it runs the step, which
  // may not have the update yet (see updated): there, with no old object, they leave the test to
  // the mutations. The API server and Kyverno's webhook always have the old object of an update.
  const onUpdate = matchConditions.map(({ name, expression }) => ({ name, expression: `oldObject == null || ${expression}` }));
  return [
    {
      name,
      kind: 'MutatingPolicy',
      spec: { failurePolicy, matchConstraints, matchConditions: onUpdate, evaluation: evaluation(true), targetMatchConstraints: { resourceRules: [write], expression: target.fromTrigger }, ...read, mutations },
    },
    {
      name: `${name}-reapply`,
      kind: 'MutatingPolicy',
      spec: {
        failurePolicy,
        matchConstraints,
        evaluation: evaluation(false),
        targetMatchConstraints: { ...namespaceMatch(steps[0]!.trigger), ...labelsOfAll(target.labelSets), resourceRules: [write] },
        targetMatchConditions: [...target.conditions],
        ...read,
        mutations,
      },
    },
  ];
}

/**
 * Kyverno writes the targets of a MutatingPolicy through one route, the object or its status: the
 * steps of a policy of the gate that write through several are rendered as policies per route,
 * `<policy>` for the route of its first step, `<policy>-<subresource>` or `<policy>-object` for the others.
 */
function statusPoliciesByRoute(definition: PolicyDefinition, steps: readonly StatusStep[]): CelPolicy[] {
  const routes = [...new Set(steps.map(writeOf))];
  const names = routes.map((route, index) => (index === 0 ? definition.name : `${definition.name}-${route.split('/')[1] ?? 'object'}`));
  if (new Set(names).size < names.length) throw new Error(`${definition.name}: the CEL dialect renders status steps that write ${routes.join(', ')} in policies of one name`);
  return routes.flatMap((route, index) => statusPolicies(names[index]!, definition, steps.filter((step) => writeOf(step) === route)));
}

/** The resource a step writes: a run's spec.status is on the run, conditions are on the status. */
function writeOf(step: StatusStep): string {
  if (step.type === 'set-run-status') return resourceOf(step.target.kind);
  return `${resourceOf(isOwnStatusStep(step) ? step.trigger.kind : step.target.kind)}/status`;
}

/** Where a policy of status steps finds its targets: on an event, from its trigger; at the re-apply, by labels and conditions. */
interface StatusTarget {
  readonly kind: ApiKind;
  readonly fromTrigger: string;
  readonly labelSets: readonly Readonly<Record<string, string>>[];
  readonly conditions: readonly { readonly name: string; readonly expression: string }[];
}

/** The target of status steps on their trigger: the trigger read again; at the re-apply, the objects the triggers select. */
function ownTarget(steps: readonly OwnStatusStep[]): StatusTarget {
  const { kind } = steps[0]!.trigger;
  // Kyverno's re-apply reads each object as an UPDATE of itself.
  return { kind, fromTrigger: readAgain(kind), labelSets: steps.map((step) => step.trigger.labels ?? {}), conditions: [{ name: 'gate-steps', expression: [...new Set(steps.map((step) => celStep(step)))].join(' || ') }] };
}

/**
 * The targets of a policy with steps on other objects, on their own triggers, or both (of one kind):
 * a trigger of that kind is the target itself; at the re-apply, an object either would change.
 */
function bothTargets(definition: PolicyDefinition, other: StatusTarget | undefined, own: StatusTarget | undefined): StatusTarget {
  if (!other || !own) return (other ?? own)!;
  if (kindKey(other.kind) !== kindKey(own.kind)) throw new Error(`${definition.name}: the CEL dialect renders status steps on one kind of target per policy`);
  const expression = (target: StatusTarget) => target.conditions.map((c) => `(${c.expression})`).join(' && ');
  return {
    kind: own.kind,
    // Kyverno's read of the trigger has its kind.
    fromTrigger: `object.apiVersion == ${celLiteral(own.kind.apiVersion)} && object.kind == ${celLiteral(own.kind.kind)} ? ${own.fromTrigger} : ${other.fromTrigger}`,
    labelSets: [...own.labelSets, ...other.labelSets],
    conditions: [{ name: 'target-to-change', expression: `${expression(own)} || ${expression(other)}` }],
  };
}

/** The target of status steps on another object: the one the trigger names; at the re-apply, the targets some step would still change, by their labels. */
function otherTarget(definition: PolicyDefinition, steps: readonly OtherTargetStep[]): StatusTarget {
  const [{ target }] = steps as [OtherTargetStep];
  if (!steps.every((step) => kindKey(step.target.kind) === kindKey(target.kind))) throw new Error(`${definition.name}: the CEL dialect renders status steps on one kind of target per policy`);
  if (steps.some((step) => kindKey(step.trigger.kind) === kindKey(target.kind))) throw new Error(`${definition.name}: the CEL dialect renders a step on another object of its trigger's kind as on itself`);
  return {
    kind: target.kind,
    // A trigger that names none (a Workload of another strategy, at a background controller's start) has no target: an empty list.
    fromTrigger: `cel.bind(name, ${targetNameOfAll(definition, steps)}, name == '' ? {"items": dyn([])} : ${celGet(target.kind, 'name')})`,
    labelSets: steps.map((step) => step.target.fromTarget.labels),
    conditions: [{ name: 'target-to-change', expression: [...new Set(steps.map(targetToChange))].join(' || ') }],
  };
}

/**
 * The name of the target as the trigger (`object`) gives it. Steps that read it differently tell
 * their triggers apart by their labels: the first whose labels the trigger has reads it.
 */
function targetNameOfAll(definition: PolicyDefinition, steps: readonly OtherTargetStep[]): string {
  const names = new Set(steps.map((step) => celTargetName(step.target.name, step.target.kind)));
  if (names.size === 1) return [...names][0]!;
  const labels = steps.map((step) => JSON.stringify(step.trigger.labels ?? {}));
  if (labels.includes('{}') || new Set(labels).size < steps.length) throw new Error(`${definition.name}: the CEL dialect tells the triggers of steps that name their target differently apart by their labels`);
  return steps.reduceRight((otherwise, step) => `(${celHasLabels('object', step.trigger.labels)} ? ${celTargetName(step.target.name, step.target.kind)} : ${otherwise})`, "''");
}

/** The target (`object`) is one of the step's, and the step would still change it. */
function targetToChange(step: OtherTargetStep): string {
  const state = step.type === 'set-condition' ? `!${celCondition(step.set.type, step.set.unlessTargetHas)}` : runToChange(step.change);
  return `(${celHasLabels('object', step.target.fromTarget.labels)} && ${state})`;
}

/** The run (`object`) is still as the change expects it: held pending by the gate, or running. */
function runToChange(change: SetRunStatusStep['change']): string {
  // Only runs the gate made pending: a run its user created pending stays theirs to release.
  if (change.type === 'release') return `${celHasValue('object', 'annotations', change.heldBy.key, change.heldBy.value)} && ${celSpecStatus('object')} == ${celLiteral(change.pendingStatus)}`;
  return `!${celCondition('Succeeded', ['True', 'False'])} && ${celSpecStatus('object')} == ''`;
}

/** The object of `kind` named `name` (a CEL string) in the namespace of `object`, as the API server has it now; null when there is none. */
function celGet(kind: ApiKind, name: string): string {
  return `resource.Get(${celLiteral(kind.apiVersion)}, ${celLiteral(resourceOf(kind))}, object.metadata.namespace, ${name})`;
}

/** The object the request is about, as the API server has it now. */
function readAgain(kind: ApiKind): string {
  return celGet(kind, 'object.metadata.name');
}

/** A selector of the objects that have one of the values of each label every label set has (conditions tell which value). */
function labelsOfAll(labelSets: readonly Readonly<Record<string, string>>[]) {
  const keys = Object.keys(labelSets[0]!).filter((key) => labelSets.every((labels) => labels[key] !== undefined));
  if (keys.length === 0) return {};
  return { objectSelector: { matchExpressions: keys.map((key) => ({ key, operator: 'In', values: [...new Set(labelSets.map((labels) => labels[key]!))].sort() })) } };
}

/** The object's conditions with `conditions` (CEL maps) in place of any of their types, as patches of a status step's rule. */
function setConditions(types: readonly string[], conditions: readonly string[]): string {
  const others = `object.?status.?conditions.orValue([]).filter(c, !has(c.type) || !(c.type in ${celLiteral(types)}))`;
  return `[${patch('add', '"/status/conditions"', `${others} + [${conditions.join(', ')}]`)}]`;
}

/**
 * The trigger `read` (a CEL variable) as the update that triggered the step left it. Kyverno reads
 * the trigger again when it runs the step, and may do so before the API server has stored the
 * update: the read then gives the version the update replaced, and the admission request has the
 * update. At the periodic re-apply there is no update: the trigger as read.
 */
function updated(read: string): string {
  return `request.?oldObject.?metadata.?resourceVersion.orValue('') == ${read}.metadata.?resourceVersion.orValue('-') ? request.object : ${read}`;
}

/**
 * A rule of a status step: on the object as its update left it, or with `trigger` bound; with
 * `read`, the object it reads bound too. Kyverno writes the status of the object it read, so the
 * rule writes the whole status it acted on first (the patches apply in turn), then its changes.
 */
function statusRule(name: string, conditions: string[], patches: string, { trigger, read }: { trigger?: string; read?: string } = {}): MutatingPolicySpecMutations {
  const binds = [trigger ? { name: 'trigger', value: trigger } : { name: 'object', value: updated('object') }, ...(read ? [{ name: 'read', value: read }] : [])];
  return rule(name, conditions, `[${patch('add', '"/status"', 'object.?status.orValue({})')}] + ${patches}`, ...binds);
}

/** A condition; its fields are CEL expressions, each made a string (a map literal's values are all of one type). */
function conditionValue(fields: { type: string; status: string; reason: string; message: string; at: string }): string {
  const text = (value: string) => (/^"(?:[^"\\]|\\.)*"$/.test(value) ? value : `string(${value})`);
  return `dyn({"type": ${celLiteral(fields.type)}, "status": ${text(fields.status)}, "reason": ${text(fields.reason)}, "message": ${text(fields.message)}, "lastTransitionTime": ${text(fields.at)}})`;
}

/** The variable that holds the object's condition `type` (empty when it has none). */
function conditionVariable(type: string): string {
  return `condition${type}`;
}

/** The variables the steps' mutations read: the condition an eviction step is about. */
function statusVariables(steps: readonly OwnStatusStep[]) {
  const types = [...new Set(steps.flatMap((step) => (step.type === 'requeue-workload' ? [step.when.condition] : [])))];
  // A map, not an optional value: Kyverno 1.19 reads a variable holding one as none.
  return types.map((type) => ({ name: conditionVariable(type), expression: `cel.bind(object, ${updated('object')}, ${conditionOf(type)}.orValue({}))` }));
}

/** The condition `type` of the object, an optional value. */
function conditionOf(type: string, object = 'object'): string {
  return `${object}.?status.?conditions.orValue([]).filter(c, has(c.type) && c.type == ${celLiteral(type)})[?0]`;
}

/** The name of an object in the trigger's namespace, as the trigger (`object`) gives it; '' when it gives none. */
function celTargetName(name: TargetName, kind: ApiKind): string {
  switch (name.from) {
    case 'owner':
      return `object.metadata.?ownerReferences.orValue([]).filter(r, has(r.kind) && r.kind == ${celLiteral(kind.kind)}).map(r, r.name)[?0].orValue('')`;
    case 'child':
      return `object.?status.?childReferences.orValue([]).filter(c, has(c.pipelineTaskName) && c.pipelineTaskName == ${celLiteral(name.pipelineTask)}).map(c, c.name)[?0].orValue('')`;
    case 'self':
      return 'object.metadata.name';
    case 'label':
      return `object.metadata.?labels.orValue({})[?${celLiteral(name.key)}].orValue('')`;
  }
}

/** The object of `kind` named `name` in the namespace of `object`, read now; null when `object` names none or there is none. */
function celRead(kind: ApiKind, name: TargetName): string {
  // dyn: resource.Get gives null for an object that is not there, yet is typed a map.
  return `cel.bind(name, ${celTargetName(name, kind)}, name == '' ? null : dyn(${celGet(kind, 'name')}))`;
}

/** `test` on the object of `kind` named `name` in the trigger's namespace, read now (`read`); false when there is none. */
function onRead(kind: ApiKind, name: TargetName, test: string): string {
  // dyn: resource.Get gives null for an object that is not there, yet is typed a map.
  return `cel.bind(name, ${celTargetName(name, kind)}, name != '' && cel.bind(read, dyn(${celGet(kind, 'name')}), read != null && ${test}))`;
}

/**
 * The run is still held back (`held`), or has been let go (`let-go`), as its gate CustomRun or its
 * own spec.status tells now; neither when that object is gone, or the gate failed.
 */
function celHold(hold: Hold, state: 'held' | 'let-go'): string {
  if (hold.by === 'gate') return onRead(hold.gate.kind, hold.gate.name, state === 'held' ? `!${celCondition('Succeeded', ['True', 'False'], 'read')}` : celCondition('Succeeded', ['True'], 'read'));
  // A dispatched run counts as pending: it is held here while it runs on a worker.
  const dispatched = hold.dispatchedBy ? `(has(read.spec.managedBy) && read.spec.managedBy == ${celLiteral(hold.dispatchedBy)}) || ` : '';
  const pending = `(${dispatched}${celSpecStatus('read')} == ${celLiteral(hold.pendingStatus)})`;
  return onRead(hold.run.kind, hold.run.name, state === 'held' ? pending : `!${pending}`);
}

/** Gives back the reservation of an evicted Workload whose run is still held, so that Kueue queues it again. */
function requeueMutation(step: RequeueWorkloadStep): MutatingPolicySpecMutations {
  const evicted = `variables.${conditionVariable(step.when.condition)}`;
  const [reason, message, at] = [`${evicted}.?reason.orValue('')`, `${evicted}.?message.orValue('')`, `${evicted}.?lastTransitionTime.orValue(${NOW})`];
  const { unreserved } = step;
  const conditions = [
    conditionValue({ type: 'QuotaReserved', status: celLiteral('False'), reason: celLiteral(unreserved.quotaReservedReason), message, at }),
    conditionValue({ type: 'Admitted', status: celLiteral('False'), reason: celLiteral(unreserved.admittedReason), message: celLiteral(unreserved.admittedMessage), at }),
    conditionValue({ type: 'Requeued', status: `(${reason} in ${celLiteral(step.requeueAtOnce)} ? "True" : "False")`, reason, message, at }),
  ];
  return statusRule(step.rule, [celStep(step), celHold(step.hold, 'held')], `[JSONPatch{op: "remove", path: "/status/admission"}] + ${setConditions(UNRESERVED_CONDITIONS, conditions)}`);
}

/** The time the step runs, to the second, as Kubernetes writes times. */
const NOW = 'string(time.truncate(time.now(), duration("1s")))';

/** Sets the condition on the trigger; with `read`, only when the object it names, read now, has the condition it asks for. */
function setOwnCondition(step: SelfConditionStep): MutatingPolicySpecMutations {
  const { read } = step;
  const conditions = [celStep(step), `!${celCondition(step.set.type, step.set.unlessTargetHas)}`];
  const patches = setConditions([step.set.type], [conditionSet(step, 'object', read && 'read')]);
  if (!read) return statusRule(step.rule, conditions, patches);
  return statusRule(step.rule, [...conditions, `read != null && ${celCondition(read.condition, read.statuses, 'read')}`], patches, { read: celRead(read.kind, read.name) });
}

/** Sets the condition on the target (`object`), from its trigger. */
function setOtherCondition(step: OtherTargetStep & SetConditionStep): MutatingPolicySpecMutations {
  const { conditions, trigger } = fromTrigger(step);
  return statusRule(step.rule, conditions, setConditions([step.set.type], [conditionSet(step, 'trigger')]), { trigger });
}

/** Changes `spec.status` of the target (`object`), a run, from its trigger: on the run, not its status. */
function setRunStatus(step: OtherTargetStep & SetRunStatusStep): MutatingPolicySpecMutations {
  const { change } = step;
  const { conditions, trigger } = fromTrigger(step);
  const bind = { name: 'trigger', value: trigger };
  if (change.type === 'release') return rule(step.rule, conditions, '[JSONPatch{op: "remove", path: "/spec/status"}]', bind);
  return rule(step.rule, [...conditions, `cel.bind(object, trigger, ${celHold(change.hold, 'let-go')})`], `[${patch('add', '"/spec/status"', celLiteral(change.stopStatus))}]`, bind);
}

/**
 * A step on another object than its trigger, run from that object (`object`): its trigger, read by
 * the name the target gives, only when the step would still change the target, and taken as the
 * update left it (`trigger`, null when there is none); and the conditions of the step on it.
 */
function fromTrigger(step: OtherTargetStep): { trigger: string; conditions: string[] } {
  const { trigger, target } = step;
  const read = celRead(trigger.kind, target.fromTarget.triggerName);
  // The trigger as it is now: one whose state moved on meanwhile (a Workload evicted) changes nothing.
  const recheck = 'recheck' in step.when && step.when.recheck ? step.when.recheck.unlessTrue.map((type) => ` && !${celCondition(type, ['True'])}`).join('') : '';
  return {
    trigger: `${targetToChange(step)} ? cel.bind(read, ${read}, read == null ? null : ${updated('read')}) : null`,
    conditions: ['trigger != null', `cel.bind(object, trigger, ${celStep(step)}${recheck})`],
  };
}

/** The condition a step sets, from its trigger (`trigger`, a CEL variable). */
function conditionSet(step: SetConditionStep, trigger: string, read?: string): string {
  const { set, when } = step;
  const reasons = [...new Set(Object.values(set.reasons))];
  // The reason follows the status of the object read, or of the trigger's condition.
  const decides = step.read && read ? conditionOf(step.read.condition, read) : 'condition' in when ? conditionOf(when.condition, trigger) : undefined;
  const reason = reasons.length === 1 || !decides ? celLiteral(reasons[0]!) : `${celLiteral(set.reasons as Record<string, string>)}[?${decides}.?status.orValue('')].orValue('')`;
  const at =
    set.at === 'now'
      ? NOW
      : set.at === 'trigger-completion'
        ? `${trigger}.?status.?completionTime.orValue(${NOW})`
        : set.at === 'read-completion'
          ? read
            ? `${read}.?status.?completionTime.orValue(${NOW})`
            : unreachable(`${step.rule}: a step that reads no object has no completion time of one`)
          : `${conditionOf(set.at.lastChangeOf, trigger)}.?lastTransitionTime.orValue(${NOW})`;
  return conditionValue({ type: set.type, status: celLiteral(set.status), reason, message: celLiteral(set.message), at });
}

function unreachable(message: string): never {
  throw new Error(message);
}
