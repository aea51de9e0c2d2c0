/**
 * Renders gate steps as `kyverno.io/v1` ClusterPolicy rules (JMESPath, JSON patches, mutate
 * targets). Only this file knows ClusterPolicy; the steps themselves are in ../gate/model.ts.
 */
import type {
  ClusterPolicySpec,
  ClusterPolicySpecRules,
  ClusterPolicySpecRulesContext,
  ClusterPolicySpecRulesExclude,
  ClusterPolicySpecRulesMatch,
  ClusterPolicySpecRulesMutateForeachPreconditions,
  ClusterPolicySpecRulesMutateTargets,
} from '../../imports/kyverno-kyverno.io.js';
import { QUANTITY_PATTERN } from '../config/schema.js';
import type {
  Change,
  GateStep,
  GenerateWorkloadStep,
  GenerateQueuesStep,
  Hold,
  HoldPendingStep,
  HoldUserReleaseStep,
  InsertGateStep,
  Namespaces,
  OnCondition,
  PolicyDefinition,
  ReleaseDispatchedStep,
  RequeueWorkloadStep,
  RouteMatch,
  RouteRunStep,
  SetConditionStep,
  Sizing,
  SetRunStatusStep,
  State,
  TargetName,
  Trigger,
  ValidateRunStep,
  When,
} from '../gate/model.js';
import { type ApiKind, apiPath, apiPathOfAll, dispatchingQueueKeys, endedUnlessReached, kindKey, UNRESERVED_CONDITIONS } from '../gate/names.js';
import { celStep } from './cel.js';
import { pointer } from './json-pointer.js';
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
  return {
    // Kyverno's periodic re-apply evaluates the re-applied steps on existing objects; the others act at admission only.
    background: definition.steps.some(reapplied),
    admission: true,
    // A rule that audits tells the client why, as an admission warning.
    ...(definition.steps.some((s) => s.type === 'validate-run') ? { emitWarning: true } : {}),
    webhookConfiguration: {
      failurePolicy: definition.failurePolicy as never,
      // Evaluated by the API server: requests no step of the policy reacts to never reach Kyverno.
      matchConditions: [{ name: 'gate-steps', expression: [...new Set(definition.steps.map((s) => celStep(s, reapplied(s) ? 'reapplied' : 'admission')))].join(' || ') }],
    },
    rules: definition.steps.flatMap(rulesOf),
  };
}

/**
 * Whether Kyverno's periodic re-apply (BACKGROUND_SCAN_INTERVAL) evaluates the step on existing
 * objects: the status steps, and a generate step on a state (a run still waiting). Kyverno evaluates
 * its match, its preconditions and the policy's match conditions with no operation then.
 */
function reapplied(step: GateStep): boolean {
  switch (step.type) {
    case 'set-condition':
      return step.reapplied ?? true;
    case 'set-run-status':
    case 'requeue-workload':
      return true;
    case 'generate-workload':
      return step.trigger.state !== undefined;
    default:
      return false;
  }
}

function rulesOf(step: GateStep): ClusterPolicySpecRules[] {
  switch (step.type) {
    case 'route-run':
      return routeRunRules(step);
    case 'insert-gate':
      return insertGateRules(step);
    case 'hold-pending':
      return holdPendingRules(step);
    case 'hold-user-release':
      return [holdUserReleaseRule(step)];
    case 'release-dispatched':
      return [releaseDispatchedRule(step)];
    case 'validate-run':
      return validateRunRules(step);
    case 'generate-workload':
      return [generateWorkloadRule(step)];
    case 'set-condition':
      return [setConditionRule(step)];
    case 'set-run-status':
      return [setRunStatusRule(step)];
    case 'requeue-workload':
      return [requeueWorkloadRule(step)];
    case 'generate-queues':
      return generateQueuesRules(step);
  }
}

// --- triggers -----------------------------------------------------------------------------------

/**
 * `match` and `exclude` of a rule for the trigger, and the preconditions its `change` and `state` ask for.
 * A rule re-applied to existing objects (`reapply`) leaves the operations out of its match: Kyverno's periodic
 * re-apply (BACKGROUND_SCAN_INTERVAL) evaluates it with no operation, and an operation in the match
 * would skip it there. The webhook's match conditions still pass the trigger's operations alone, and
 * a precondition keeps the rule to them among the requests its policy's other rules let through.
 */
function on(trigger: Trigger, { reapply = false } = {}): { match: ClusterPolicySpecRulesMatch; exclude?: ClusterPolicySpecRulesExclude; filters: Precondition[] } {
  const kind = `${trigger.kind.apiVersion}/${trigger.kind.kind}`;
  const unless = [
    ...Object.entries(trigger.unlessLabels ?? {}).map(([key, value]) => ({ matchLabels: { [key]: value } })),
    ...(trigger.unlessLabelKeys ?? []).map((key) => ({ matchExpressions: [{ key, operator: 'Exists' }] })),
  ];
  const operation: Precondition = {
    key: variable("request.operation || ''"),
    operator: 'AnyIn',
    value: [...trigger.operations, ''],
    message: `not ${trigger.operations.join(' or ')}, nor Kyverno's periodic re-apply`,
  };
  return {
    match: {
      any: [
        {
          resources: {
            // A rule on the main resource alone never sees status updates, which controllers write to /status.
            kinds: trigger.subresource ? [kind, `${kind}/${trigger.subresource}`] : [kind],
            ...(reapply ? {} : { operations: [...trigger.operations] as never }),
            ...namespacesMatch(trigger.namespaces),
            ...(trigger.labels || trigger.labelKeys ? { selector: selectorOf(trigger) } : {}),
          },
        },
      ],
    },
    ...(unless.length > 0 ? { exclude: { any: unless.map((selector) => ({ resources: { selector: selector as never } })) } } : {}),
    filters: [...(reapply ? [operation] : []), ...admissionCheckPreconditions(trigger), ...changePreconditions(trigger.change), ...statePreconditions(trigger.state)],
  };
}

/** The labels, and the label keys, the trigger must carry. */
function selectorOf(trigger: Trigger) {
  return {
    ...(trigger.labels ? { matchLabels: { ...trigger.labels } } : {}),
    ...(trigger.labelKeys ? { matchExpressions: trigger.labelKeys.map((key) => ({ key, operator: 'Exists' })) } : {}),
  } as never;
}

/** Kyverno evaluates a ClusterPolicy's namespaceSelector itself, from its cache of the namespaces' labels. */
function namespacesMatch(namespaces: Namespaces | undefined): { namespaces?: string[]; namespaceSelector?: { matchLabels: Record<string, string> } } {
  if (!namespaces) return {};
  return 'names' in namespaces ? { namespaces: [...namespaces.names] } : { namespaceSelector: { matchLabels: { ...namespaces.labels } } };
}

function admissionCheckPreconditions({ admissionCheck, kind }: Trigger): Precondition[] {
  if (!admissionCheck) return [];
  return [{ key: count(`${TRIGGER}.status.admissionChecks`, `[?name==${str(admissionCheck)}]`), operator: 'GreaterThan', value: 0, message: `the ${kind.kind} is not held to AdmissionCheck ${admissionCheck}` }];
}

function changePreconditions(change: Change | undefined): Precondition[] {
  if (!change) return [];
  if ('specStatus' in change) {
    return [
      { key: variable("request.oldObject.spec.status || ''"), operator: 'Equals', value: change.specStatus.from, message: `spec.status was not ${change.specStatus.from || 'empty'}` },
      { key: variable(runStatus), operator: 'Equals', value: change.specStatus.to, message: `spec.status is not ${change.specStatus.to || 'empty'}` },
    ];
  }
  const annotation = (path: string) => variable(`${path}.metadata.annotations.${field(change.annotationAdded)} || ''`);
  return [
    { key: annotation(TRIGGER), operator: 'NotEquals', value: '', message: `no ${change.annotationAdded} annotation` },
    // On CREATE there is no old object.
    { key: annotation('request.oldObject'), operator: 'Equals', value: '', message: `the ${change.annotationAdded} annotation was there before` },
  ];
}

function statePreconditions(state: State | undefined): Precondition[] {
  if (!state) return [];
  if ('heldPending' in state) {
    const { heldBy, pendingStatus } = state.heldPending;
    return [
      { key: variable(`${TRIGGER}.metadata.annotations.${field(heldBy.key)} || ''`), operator: 'Equals', value: heldBy.value, message: 'the gate does not hold the run' },
      { key: variable(runStatus), operator: 'Equals', value: pendingStatus, message: `the run is not ${pendingStatus}` },
    ];
  }
  const gate = str(state.atGate);
  return [
    { key: count(`${TRIGGER}.status.childReferences`, `[?pipelineTaskName==${gate}]`), operator: 'GreaterThan', value: 0, message: 'the run has no gate child' },
    { key: count(`${TRIGGER}.status.childReferences`, `[?pipelineTaskName!=${gate}]`), operator: 'Equals', value: 0, message: 'the run has started' },
    { key: variable(conditionStatus(TRIGGER, 'Succeeded')), operator: 'AnyNotIn', value: ['True', 'False'], message: 'the run has ended' },
  ];
}

function all(conditions: Precondition[]): { all: Precondition[] } {
  return { all: conditions };
}

/** Preconditions of one element of a foreach (the generated type spells each operator as an enum). */
function eachElement(conditions: Precondition[]): ClusterPolicySpecRulesMutateForeachPreconditions {
  return all(conditions) as ClusterPolicySpecRulesMutateForeachPreconditions;
}

type PatchOperation = { op: 'add'; path: string; value: unknown } | { op: 'remove'; path: string };

function jsonPatch(operations: PatchOperation[]): string {
  return operations
    .map((o) =>
      o.op === 'remove'
        ? `- op: remove\n  path: ${o.path}`
        : `- op: ${o.op}\n  path: ${o.path}\n  value: ${isWholeVariable(o.value) ? o.value : literalText(JSON.stringify(o.value))}`,
    )
    .join('\n');
}

/**
 * Text Kyverno must take as it is: `$(...)`, Tekton's variable syntax, is Kyverno's reference
 * syntax too, and is escaped (Kyverno removes the backslash when it reads the rule).
 */
function literalText(text: string): string {
  return text.replace(/\$\(/g, '\\$(');
}

/** A value that is one Kyverno variable stays bare, so it is replaced by the variable's JSON value. */
function isWholeVariable(value: unknown): value is string {
  return typeof value === 'string' && /^\{\{[^}]*\}\}$/.test(value);
}

const inlineTasks = `${TRIGGER}.spec.pipelineSpec.tasks`;
const finallyTasks = `${TRIGGER}.spec.pipelineSpec.finally`;
const runStatus = `${TRIGGER}.spec.status || ''`;

function count(list: string, filter = ''): string {
  return variable(`length(${list}${filter} || \`[]\`)`);
}

// --- mutate-pipelinerun -------------------------------------------------------------------------

function routeRunRules(step: RouteRunStep): ClusterPolicySpecRules[] {
  const { match, exclude } = on(step.trigger);
  const common = { match, ...(exclude ? { exclude } : {}) };
  const routedBy = variable(`${TRIGGER}.metadata.annotations.${field(step.routedBy)} || ''`);
  // Kyverno's add-if-not-present anchor: the run's own value wins.
  const keyOf = (key: string, enforce: boolean) => (enforce ? key : `+(${key})`);
  const entries = (values: Readonly<Record<string, string>>, enforce: boolean) => Object.fromEntries(Object.entries(values).map(([key, value]) => [keyOf(key, enforce), value]));
  return [
    {
      name: step.rule,
      ...common,
      preconditions: all([{ key: routedBy, operator: 'NotEquals', value: '', message: `no ${step.routedBy} annotation` }]),
      mutate: { patchesJson6902: jsonPatch([{ op: 'remove', path: `/metadata/annotations/${pointer(step.routedBy)}` }]) },
    },
    ...step.routes.map((route) => ({
      name: route.rule,
      ...common,
      // Each route sets routedBy: a run a route before this one took is skipped here.
      preconditions: all([{ key: routedBy, operator: 'Equals', value: '', message: 'an earlier rule routed the run' }, ...routeMatch(route.match)]),
      mutate: {
        patchStrategicMerge: {
          metadata: {
            ...(Object.keys(route.labels).length > 0 ? { labels: entries(route.labels, route.enforce) } : {}),
            annotations: { [step.routedBy]: route.rule, ...entries(route.annotations, route.enforce) },
          },
        },
      },
    })),
  ];
}

function routeMatch(match: RouteMatch): Precondition[] {
  const anyOf = (values: readonly string[]) => values.join(' or ');
  const keyed = (map: 'labels' | 'annotations', values: Readonly<Record<string, readonly string[]>> = {}): Precondition[] =>
    Object.entries(values).map(([key, accepted]) => ({
      key: variable(`${TRIGGER}.metadata.${map}.${field(key)} || ''`),
      operator: 'AnyIn',
      value: [...accepted],
      message: `${map === 'labels' ? 'label' : 'annotation'} ${key} is not ${anyOf(accepted)}`,
    }));
  const ref = match.pipelineRef ?? {};
  return [
    ...(match.namespaces ? [{ key: variable(`${TRIGGER}.metadata.namespace`), operator: 'AnyIn' as const, value: [...match.namespaces], message: `not in namespace ${anyOf(match.namespaces)}` }] : []),
    ...keyed('labels', match.labels),
    ...keyed('annotations', match.annotations),
    ...(['name', 'resolver'] as const).flatMap((part): Precondition[] =>
      ref[part] === undefined ? [] : [{ key: variable(`${TRIGGER}.spec.pipelineRef.${part} || ''`), operator: 'Equals', value: ref[part], message: `spec.pipelineRef.${part} is not ${ref[part]}` }],
    ),
  ];
}

// Each part patches one place with values of its own or names of tasks: a user's text (scripts,
// params) never passes through Kyverno's variable substitution, which would read a `{{ }}` in it.
function insertGateRules(step: InsertGateStep): ClusterPolicySpecRules[] {
  const { match, exclude } = on(step.trigger);
  const inlineRun: Precondition = { key: count(inlineTasks), operator: 'GreaterThan', value: 0, message: 'no inline tasks to gate' };
  const isGate = `name==${str(step.gateTask)}`;
  const gateTask = { name: step.gateTask, taskSpec: { ...step.customTask, spec: {} } };
  const gateWhen = `input==${literalText(str(step.finallyWhen.input))}`;
  return [
    {
      name: step.rules.dropLookalikes,
      match,
      ...(exclude ? { exclude } : {}),
      preconditions: all([inlineRun, { key: count(inlineTasks, `[?${isGate}]`), operator: 'GreaterThan', value: 0, message: `no task named ${step.gateTask}` }]),
      mutate: {
        foreach: [
          {
            list: inlineTasks,
            // From the end, so the indexes of the tasks still to look at stay put.
            order: 'Descending' as never,
            preconditions: eachElement([{ key: variable('element.name'), operator: 'Equals', value: step.gateTask }]),
            patchesJson6902: jsonPatch([{ op: 'remove', path: '/spec/pipelineSpec/tasks/{{elementIndex}}' }]),
          },
        ],
      },
    },
    {
      // Before the gate is inserted, so elementIndex addresses the run's own tasks.
      name: step.rules.waitForGate,
      match,
      ...(exclude ? { exclude } : {}),
      preconditions: all([inlineRun]),
      mutate: {
        foreach: [
          {
            list: inlineTasks,
            patchesJson6902: jsonPatch([
              {
                op: 'add',
                path: '/spec/pipelineSpec/tasks/{{elementIndex}}/runAfter',
                value: variable(`[[${str(step.gateTask)}], (element.runAfter || \`[]\`)[?@ != ${str(step.gateTask)}]][]`),
              },
            ]),
          },
        ],
      },
    },
    {
      name: step.rule,
      match,
      ...(exclude ? { exclude } : {}),
      preconditions: all([inlineRun]),
      mutate: {
        patchesJson6902: jsonPatch([
          { op: 'add', path: '/spec/pipelineSpec/tasks/0', value: gateTask },
          { op: 'add', path: `/metadata/labels/${pointer(step.gatedLabel.key)}`, value: step.gatedLabel.value },
        ]),
      },
    },
    {
      name: step.rules.gateFinally,
      match,
      ...(exclude ? { exclude } : {}),
      preconditions: all([inlineRun, { key: count(finallyTasks), operator: 'GreaterThan', value: 0, message: 'no finally tasks' }]),
      mutate: {
        foreach: [
          {
            list: finallyTasks,
            preconditions: eachElement([{ key: count('element.when'), operator: 'Equals', value: 0 }]),
            patchesJson6902: jsonPatch([{ op: 'add', path: '/spec/pipelineSpec/finally/{{elementIndex}}/when', value: [step.finallyWhen] }]),
          },
          {
            list: finallyTasks,
            preconditions: eachElement([
              { key: count('element.when'), operator: 'GreaterThan', value: 0 },
              // A copy of a gated run has it already.
              { key: count('element.when', `[?${gateWhen}]`), operator: 'Equals', value: 0 },
            ]),
            patchesJson6902: jsonPatch([{ op: 'add', path: '/spec/pipelineSpec/finally/{{elementIndex}}/when/-', value: step.finallyWhen }]),
          },
        ],
      },
    },
  ];
}

function holdPendingRules(step: HoldPendingStep): ClusterPolicySpecRules[] {
  const { match, exclude } = on(step.trigger);
  const conditions: Precondition[] =
    step.runs === 'without-inline-tasks' ? [{ key: count(inlineTasks), operator: 'Equals', value: 0, message: 'inline tasks: the gate task holds the run' }] : [];
  const common = { match, ...(exclude ? { exclude } : {}) };
  // The gate's label is the gate's: a run may come with one, which proves nothing.
  const gatedLabel = { op: 'add' as const, path: `/metadata/labels/${pointer(step.gatedLabel.key)}`, value: step.gatedLabel.value };
  return [
    {
      name: step.rule,
      ...common,
      preconditions: all([...conditions, { key: variable(runStatus), operator: 'Equals', value: '', message: 'the run was created with a spec.status' }]),
      mutate: {
        patchesJson6902: jsonPatch([
          { op: 'add', path: '/spec/status', value: step.pendingStatus },
          { op: 'add', path: `/metadata/annotations/${pointer(step.heldBy.key)}`, value: step.heldBy.value },
          gatedLabel,
        ]),
      },
    },
    {
      // Created pending by its user: labelled, queued once its user releases it (hold-user-release).
      name: step.userPendingRule,
      ...common,
      preconditions: all([...conditions, { key: variable(runStatus), operator: 'Equals', value: step.pendingStatus, message: 'the run was not created pending' }]),
      mutate: { patchesJson6902: jsonPatch([gatedLabel]) },
    },
    ...(step.dispatch ? [dispatchRule(step, common)] : []),
  ];
}

/** Marks a run one of the rules above labelled, if its queue dispatches (they have set the label it is read after). */
function dispatchRule(step: HoldPendingStep, common: Pick<ClusterPolicySpecRules, 'match' | 'exclude'>): ClusterPolicySpecRules {
  const dispatch = step.dispatch!;
  return {
    name: dispatch.rule,
    ...common,
    context: queueContext(dispatch.queue),
    preconditions: all([
      { key: variable(label(TRIGGER, step.gatedLabel.key)), operator: 'Equals', value: step.gatedLabel.value, message: 'the gate did not label the run' },
      {
        // The run's queue keyed as dispatchingQueueKeys does.
        key: variable(`join('/', [lookup(defaultQueues, ${TRIGGER}.metadata.namespace) && ${TRIGGER}.metadata.namespace || '', queueName])`),
        operator: 'AnyIn',
        value: dispatchingQueueKeys(dispatch),
        message: 'the run\'s queue does not dispatch to worker clusters',
      },
    ]),
    mutate: { patchesJson6902: jsonPatch([{ op: 'add', path: '/spec/managedBy', value: dispatch.managedBy }]) },
  };
}

function releaseDispatchedRule(step: ReleaseDispatchedStep): ClusterPolicySpecRules {
  const { match, exclude } = on(step.trigger);
  return {
    name: step.rule,
    match,
    ...(exclude ? { exclude } : {}),
    preconditions: all([
      { key: variable(runStatus), operator: 'Equals', value: step.pendingStatus, message: `the run is not ${step.pendingStatus}` },
      { key: variable(`${TRIGGER}.metadata.annotations.${field(step.heldBy.key)} || ''`), operator: 'Equals', value: step.heldBy.value, message: 'the gate did not make the run pending' },
    ]),
    mutate: { patchesJson6902: jsonPatch([{ op: 'remove', path: '/spec/status' }]) },
  };
}

function holdUserReleaseRule(step: HoldUserReleaseStep): ClusterPolicySpecRules {
  const { match, exclude, filters } = on(step.trigger);
  return {
    name: step.rule,
    match,
    ...(exclude ? { exclude } : {}),
    preconditions: all([
      ...filters,
      // A run the gate holds is released by the gate only (the tenant guard refuses anyone else).
      { key: variable(`request.oldObject.metadata.annotations.${field(step.heldBy.key)} || ''`), operator: 'Equals', value: '', message: 'the gate holds the run' },
    ]),
    mutate: {
      patchesJson6902: jsonPatch([
        { op: 'add', path: '/spec/status', value: step.pendingStatus },
        { op: 'add', path: `/metadata/annotations/${pointer(step.heldBy.key)}`, value: step.heldBy.value },
      ]),
    },
  };
}

// --- validate-pipelinerun ---------------------------------------------------------------------

function validateRunRules(step: ValidateRunStep): ClusterPolicySpecRules[] {
  const { match, exclude } = on(step.trigger);
  const common = { match, ...(exclude ? { exclude } : {}) };
  const namespace = `${TRIGGER}.metadata.namespace`;
  const refuse = (conditions: Precondition[], message: string, failureAction: 'Enforce' | 'Audit' = 'Enforce') => ({
    validate: { failureAction: failureAction as never, message, deny: { conditions: all(conditions) } },
  });
  const labelValue = (key: string) => label(TRIGGER, key);
  const prefix = step.requests.annotationPrefix;
  const classes = step.priority.classes.map((c) => c.name);
  // Lists, read with the request's own fields only: the queue a run names, or the namespace's default,
  // need not exist, and the Kyverno CLI reads API calls before the other context entries.
  const queues: ClusterPolicySpecRulesContext = {
    name: 'queues',
    apiCall: { urlPath: apiPathOfAll(step.localQueue, variable(namespace)), jmesPath: 'items[].{name: metadata.name, clusterQueue: spec.clusterQueue}', default: [] },
  };
  return [
    {
      name: step.rules.knownQueue,
      ...common,
      context: [...queueAndRequests(step).filter((c) => c.name === 'defaultQueues' || c.name === 'queueName'), queues],
      ...refuse(
        [{ key: variable('contains(queues[].name, queueName)'), operator: 'Equals', value: false }],
        // No apostrophes: Kyverno quotes the message as YAML, which doubles them.
        `queue "${variable('queueName')}" (label ${step.queue.label}, or the default of the namespace) is no LocalQueue of namespace ${variable(namespace)}; ` +
          `its LocalQueues: ${variable("join(', ', queues[].name)")}. Set ${step.queue.label} to one of them.`,
      ),
    },
    {
      name: step.rules.requestQuantities,
      ...common,
      context: [
        {
          name: 'badRequests',
          variable: { jmesPath: `items(${TRIGGER}.metadata.annotations || \`{}\`, 'key', 'value')[?starts_with(key, ${str(prefix)}) && !regex_match(${str(QUANTITY_PATTERN)}, value)]` },
        },
      ],
      ...refuse(
        [{ key: variable('length(badRequests)'), operator: 'GreaterThan', value: 0 }],
        `annotation ${variable('badRequests[0].key')}: "${variable('badRequests[0].value')}" is not a resource quantity; write one such as 2, 500m or 4Gi.`,
      ),
    },
    {
      name: step.rules.coveredRequests,
      ...common,
      context: [
        queues,
        {
          name: 'clusterQueues',
          apiCall: { urlPath: apiPathOfAll(step.clusterQueue), jmesPath: 'items[].{name: metadata.name, covered: spec.resourceGroups[].coveredResources[]}', default: [] },
        },
        ...queueAndRequests(step),
        // Looked up through objects: inside a filter, a name means the element's field, never a variable.
        { name: 'clusterQueue', variable: { jmesPath: "lookup(object_from_lists(queues[].name, queues[].clusterQueue), queueName) || ''" } },
        { name: 'covered', variable: { jmesPath: 'lookup(object_from_lists(clusterQueues[].name, clusterQueues[].covered), clusterQueue) || `[]`' } },
        {
          name: 'uncovered',
          variable: {
            jmesPath: "items(merge(object_from_lists(keys(requests), map(&`true`, keys(requests))), object_from_lists(covered, map(&`false`, covered))), 'resource', 'uncovered')[?uncovered].resource",
          },
        },
      ],
      // A queue that does not exist is known-queue's to refuse.
      preconditions: all([{ key: variable('clusterQueue'), operator: 'NotEquals', value: '', message: 'no such queue' }]),
      ...refuse(
        [{ key: variable('length(uncovered)'), operator: 'GreaterThan', value: 0 }],
        `the run asks for ${variable("join(', ', uncovered)")}, which ClusterQueue ${variable('clusterQueue')} of its queue ${variable('queueName')} does not cover, so Kueue would ` +
          `never admit it; it covers ${variable("join(', ', covered)")}. Remove the annotation ${prefix}<resource>, or have the resource added to the ClusterQueue.`,
      ),
    },
    {
      name: step.rules.maxExecutionTime,
      ...common,
      ...refuse(
        [
          { key: variable(labelValue(step.maxExecutionTimeLabel)), operator: 'NotEquals', value: '' },
          { key: variable(`regex_match('^[1-9][0-9]*$', ${labelValue(step.maxExecutionTimeLabel)})`), operator: 'Equals', value: false },
        ],
        `label ${step.maxExecutionTimeLabel}: "${variable(labelValue(step.maxExecutionTimeLabel))}" is not a whole number of seconds above 0; write one such as 3600, or remove the label.`,
      ),
    },
    {
      name: step.rules.knownPriority,
      ...common,
      ...refuse(
        [
          { key: variable(labelValue(step.priority.label)), operator: 'NotEquals', value: '' },
          { key: variable(labelValue(step.priority.label)), operator: 'AnyNotIn', value: classes },
        ],
        `label ${step.priority.label}: "${variable(labelValue(step.priority.label))}" names no priority class of the gate (${classes.join(', ') || 'none configured'}); ` +
          (step.priority.default ? `the run gets ${step.priority.default}.` : 'the run gets no priority.'),
        'Audit',
      ),
    },
  ];
}

// --- generate-localqueues -----------------------------------------------------------------------

/**
 * One rule per LocalQueue. `synchronize`: Kyverno deletes what a rule generated when its trigger no
 * longer matches (a namespace lost a label). `generateExisting`: namespaces labelled before the
 * policy get theirs when it is created.
 */
function generateQueuesRules(step: GenerateQueuesStep): ClusterPolicySpecRules[] {
  // Without operations in the match: Kyverno generates for existing namespaces with no operation.
  const { match, exclude, filters } = on(step.trigger, { reapply: true });
  return step.queues.map((queue) => ({
    name: `${step.rule}-${queue.name}`,
    match,
    ...(exclude ? { exclude } : {}),
    preconditions: all(filters),
    generate: {
      apiVersion: step.localQueue.apiVersion,
      kind: step.localQueue.kind,
      name: queue.name,
      namespace: variable(`${TRIGGER}.metadata.name`),
      synchronize: true,
      generateExisting: true,
      orphanDownstreamOnPolicyDelete: true,
      data: { spec: { clusterQueue: queue.clusterQueue } },
    },
  }));
}

// --- generate-workload --------------------------------------------------------------------------

const labels = `${TRIGGER}.metadata.labels`;

/** `defaultQueues` (per listed namespace) and `queueName`, the LocalQueue of the run; a namespace not listed is a tenant namespace (the policies match no other). */
function queueContext(queue: Sizing['queue']): ClusterPolicySpecRulesContext[] {
  return [
    { name: 'defaultQueues', variable: { value: Object.fromEntries(queue.defaults.map((d) => [d.namespace, d.queue])) } },
    {
      name: 'queueName',
      variable: { jmesPath: `${labels}.${field(queue.label)} || lookup(defaultQueues, ${TRIGGER}.metadata.namespace)${queue.tenantDefault ? ` || ${str(queue.tenantDefault)}` : ''}` },
    },
  ];
}

/** The run's queue and its requests as generate-workload makes them, for the rules that need them. */
function queueAndRequests(step: Sizing): ClusterPolicySpecRulesContext[] {
  const prefix = step.requests.annotationPrefix;
  const requestAnnotations = `items(${TRIGGER}.metadata.annotations || \`{}\`, 'key', 'value')[?starts_with(key, ${str(prefix)})]`;
  const { tenantDefaults } = step.requests;
  return [
    ...queueContext(step.queue),
    { name: 'queueDefaults', variable: { value: Object.fromEntries(step.requests.defaults.map((d) => [`${d.namespace}/${d.queue}`, d.value])) } },
    ...(tenantDefaults ? [{ name: 'tenantQueueDefaults', variable: { value: Object.fromEntries(tenantDefaults.map((d) => [d.queue, d.value])) } }] : []),
    {
      name: 'requests',
      variable: {
        jmesPath:
          `merge(lookup(queueDefaults, join('/', [${TRIGGER}.metadata.namespace, queueName]))${tenantDefaults ? ' || lookup(tenantQueueDefaults, queueName)' : ''} || ${literal(step.requests.fallback)}, ` +
          `object_from_lists(${requestAnnotations}[].trim_prefix(key, ${str(prefix)}), ${requestAnnotations}[].value), ${literal(step.requests.fixed)})`,
      },
    },
  ];
}

function generateWorkloadRule(step: GenerateWorkloadStep): ClusterPolicySpecRules {
  const context: ClusterPolicySpecRulesContext[] = [
    ...queueAndRequests(step),
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
  const ownerKind = step.owner?.kind ?? step.trigger.kind;
  // The owner as the rule needs it, from the trigger or read from the cluster (`{}` when it is gone).
  const ownerOf = (path: string) =>
    `{name: ${path}.metadata.name, uid: ${path}.metadata.uid, customSpec: ${path}.spec.customSpec || \`{}\`, succeeded: ${conditionStatus(path, 'Succeeded')}}`;
  const owner: ClusterPolicySpecRulesContext = step.owner
    ? {
        name: 'owner',
        apiCall: {
          urlPath: apiPath(step.owner.kind, variable(`${TRIGGER}.metadata.namespace`), variable(targetNameOf(step.owner.name, step.owner.kind.kind))),
          jmesPath: ownerOf('@'),
          default: {},
        },
      }
    : { name: 'owner', variable: { jmesPath: ownerOf(TRIGGER) } };
  const { match, exclude, filters } = on(step.trigger, { reapply: reapplied(step) });
  const preconditions: Precondition[] = [
    ...filters,
    ...(step.owner ? [{ key: variable("owner.name || ''"), operator: 'NotEquals', value: '', message: `no ${ownerKind.kind} of the run` } satisfies Precondition] : []),
    ...(step.customTask
      ? ([
          // Only the gate's CustomRuns: other custom tasks may share the task name but not the kind.
          { key: variable("owner.customSpec.apiVersion || ''"), operator: 'Equals', value: step.customTask.apiVersion, message: 'not the gate\'s custom task' },
          { key: variable("owner.customSpec.kind || ''"), operator: 'Equals', value: step.customTask.kind, message: 'not the gate\'s custom task' },
          { key: variable('owner.succeeded'), operator: 'AnyNotIn', value: ['True', 'False'], message: 'the gate has ended' },
        ] satisfies Precondition[])
      : []),
  ];
  return {
    name: step.rule,
    match,
    ...(exclude ? { exclude } : {}),
    ...(preconditions.length > 0 ? { preconditions: all(preconditions) } : {}),
    context: [owner, ...context],
    generate: {
      apiVersion: step.workload.apiVersion,
      kind: step.workload.kind,
      name: variable('owner.name'),
      namespace: variable(`${TRIGGER}.metadata.namespace`),
      // An ownerReference, not synchronize, ties the Workload to the run: Kueue owns its spec afterwards.
      // Without it, a Workload there already is left as it is.
      synchronize: false,
      // Made for runs as they come; for the runs there are when the policy is applied and at each
      // periodic re-apply only by a level trigger, for runs still waiting.
      generateExisting: reapplied(step),
      data: {
        metadata: {
          labels: { ...step.labels, [step.runLabel.key]: variable(runName) },
          ownerReferences: [{ apiVersion: ownerKind.apiVersion, kind: ownerKind.kind, name: variable('owner.name'), uid: variable('owner.uid') }],
        },
        spec: variable('workloadSpec'),
      },
    },
  };
}

// --- admit, ready, release, evict, requeue ------------------------------------------------------

type TargetContext = NonNullable<ClusterPolicySpecRulesMutateTargets['context']>;

/** A status step is re-applied to existing objects whenever the policy is (re)applied: a missed event heals then. */
const REAPPLIED = { mutateExistingOnPolicyUpdate: true } as const;

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
      : 'specStatus' in when
        ? { key: variable(runStatus), operator: 'Equals', value: when.specStatus, message: `the ${trigger.kind} is not ${when.specStatus}` }
        : { key: variable(conditionStatus(TRIGGER, when.condition)), operator: 'AnyIn', value: [...when.statuses], message: `the ${trigger.kind} is not ${conditionText(when)}` };
  // Kyverno's periodic re-apply evaluates a step on every object it matches: one that has ended is
  // left out here, on the trigger as it is, so the re-apply costs nothing for the history of runs.
  const ended = endedUnlessReached(when, trigger);
  const live: Precondition[] = ended
    ? [{ key: variable(conditionStatus(TRIGGER, ended.condition)), operator: 'AnyNotIn', value: [...ended.statuses], message: `the ${trigger.kind} has ended` }]
    : [];
  return all([reached, ...live, { key: variable(targetName), operator: 'NotEquals', value: '', message: `the ${trigger.kind} names no object to change` }]);
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

/**
 * The trigger read again: the event that started the step may be stale by the time it runs. Kyverno
 * may run the step before the API server has stored the update that started it (the request's other
 * webhooks still answering): a read that still gives the object the update replaced
 * (`request.oldObject`'s resourceVersion) is no news, and the update's own conditions stand.
 */
function recheckOf(when: When, trigger: ApiKind): TargetCheck {
  if (!('condition' in when) || !when.recheck) return NO_CHECK;
  const live = (type: string) => variable(`liveConditions[?type==${str(type)}].status | [0] || ''`);
  const stored = { urlPath: apiPath(trigger, variable(`${TRIGGER}.metadata.namespace`), variable(`${TRIGGER}.metadata.name`)), jmesPath: '{resourceVersion: metadata.resourceVersion, conditions: status.conditions}', default: {} };
  const notYetStored = "live.resourceVersion == (request.oldObject.metadata.resourceVersion || '')";
  return {
    context: [
      { name: 'live', apiCall: stored },
      { name: 'liveConditions', variable: { jmesPath: `${notYetStored} && ${TRIGGER}.status.conditions || live.conditions || \`[]\`` } },
    ],
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
  // A dispatched run reads as pending: it is held here while it runs on a worker.
  const statusOf = (run: string) => `${hold.dispatchedBy ? `${run}spec.managedBy == ${str(hold.dispatchedBy)} && ${str(hold.pendingStatus)} || ` : ''}${run}spec.status || ''`;
  // The step changes the run itself: its status is the target's, just read.
  if (sameObject(hold.run, target)) return [{ name: 'holdState', variable: { jmesPath: pendingState(`(${statusOf('target.')})`) } }];
  const run = read('runStatus', hold.run.kind, targetNameOf(hold.run.name, hold.run.kind.kind), statusOf(''), 'Gone');
  return [run, { name: 'holdState', variable: { jmesPath: pendingState('runStatus') } }];
}

function sameObject(a: { kind: ApiKind; name: TargetName }, b: { kind: ApiKind; name: TargetName }): boolean {
  return kindKey(a.kind) === kindKey(b.kind) && JSON.stringify(a.name) === JSON.stringify(b.name);
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
  // One reason whatever the status: a constant.
  const reasons = [...new Set(Object.values(step.set.reasons))];
  const reason =
    reasons.length === 1
      ? str(reasons[0]!)
      : step.read
        ? `lookup(${literal(step.set.reasons)}, read.status) || ''`
        : 'condition' in step.when
          ? `lookup(${literal(step.set.reasons)}, ${conditionStatus(TRIGGER, step.when.condition)}) || ''`
          : str(reasons[0]!);
  const transitionTime =
    step.set.at === 'now'
      ? 'time_now_utc()'
      : step.set.at === 'trigger-completion'
        ? `${TRIGGER}.status.completionTime || time_now_utc()`
        : step.set.at === 'read-completion'
          ? `read.completionTime || time_now_utc()`
          : `${TRIGGER}.status.conditions[?type==${str(step.set.at.lastChangeOf)}].lastTransitionTime | [0] || time_now_utc()`;
  // Read after the trigger's own checks (Kyverno loads a context entry when a precondition first
  // needs it): only the triggers that pass them cost a request.
  const readName = step.read && targetNameOf(step.read.name, step.read.kind.kind);
  const read: { context: ClusterPolicySpecRulesContext[]; preconditions: Precondition[] } = step.read
    ? {
        context: [
          {
            name: 'read',
            apiCall: {
              urlPath: apiPath(step.read.kind, variable(`${TRIGGER}.metadata.namespace`), variable(readName!)),
              jmesPath: `{status: ${conditionStatus('@', step.read.condition)}, completionTime: status.completionTime || ''}`,
              default: {},
            },
          },
        ],
        preconditions: [
          { key: variable(readName!), operator: 'NotEquals', value: '', message: `the ${step.trigger.kind.kind} names no ${step.read.kind.kind}` },
          { key: variable("read.status || ''"), operator: 'AnyIn', value: [...step.read.statuses], message: `the ${step.read.kind.kind} is not ${step.read.condition}=${step.read.statuses.join('|')}` },
        ],
      }
    : { context: [], preconditions: [] };
  const condition = conditionObject({ type: step.set.type, status: str(step.set.status), reason: 'reason', message: str(step.set.message), at: 'transitionTime' });
  const check = combine(recheckOf(step.when, step.trigger.kind), {
    // The whole list is written back: a JSON patch cannot address a condition by its type.
    context: [{ name: 'conditions', variable: { jmesPath: withConditions([step.set.type], [condition]) } }],
    preconditions: [
      { key: variable(conditionStatus('target', step.set.type)), operator: 'AnyNotIn', value: [...step.set.unlessTargetHas], message: `${step.set.type} is set already` },
    ],
  });
  const { match, filters } = on(step.trigger, { reapply: reapplied(step) });
  return {
    name: step.rule,
    match,
    preconditions: { all: [...filters, ...whenTriggerReaches(step.when, step.trigger.kind, targetName).all, ...read.preconditions] },
    context: [
      ...read.context,
      // Computed in the context: a JSON patch is text, and quotes inside its {{ }} would break it.
      { name: 'reason', variable: { jmesPath: reason } },
      { name: 'transitionTime', variable: { jmesPath: transitionTime } },
    ],
    mutate: {
      ...(reapplied(step) ? REAPPLIED : {}),
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
  const { match, filters } = on(step.trigger, { reapply: reapplied(step) });
  return {
    name: step.rule,
    match,
    preconditions: { all: [...filters, ...whenTriggerReaches(step.when, step.trigger.kind, targetName).all] },
    mutate: {
      ...REAPPLIED,
      targets: [mutateTarget(step.target.kind, '', targetName, combine(recheckOf(step.when, step.trigger.kind), check))],
      patchesJson6902: jsonPatch([
        change.type === 'release' ? { op: 'remove', path: '/spec/status' } : { op: 'add', path: '/spec/status', value: change.stopStatus },
      ]),
    },
  };
}

function reserved(workload: string): Precondition {
  return { key: variable(`${workload}.status.admission && 'reserved' || ''`), operator: 'Equals', value: 'reserved', message: 'the Workload holds no reservation' };
}

function requeueWorkloadRule(step: RequeueWorkloadStep): ClusterPolicySpecRules {
  const self = { kind: step.trigger.kind, name: { from: 'self' } as const };
  const evicted = (path: string) => `evicted.${path}`;
  const at = evicted('lastTransitionTime');
  const conditions = withConditions(UNRESERVED_CONDITIONS, [
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
      reserved('target'),
      { key: variable(conditionStatus('target', 'Finished')), operator: 'NotEquals', value: 'True', message: 'the Workload has finished' },
    ],
  });
  const { match, filters } = on(step.trigger, { reapply: reapplied(step) });
  return {
    name: step.rule,
    match,
    // Reserved on the trigger too: a Workload requeued already waits to be admitted again, and
    // Kyverno's periodic re-apply makes no request for it.
    preconditions: { all: [...filters, ...whenTriggerReaches(step.when, step.trigger.kind, `${TRIGGER}.metadata.name`).all, reserved(TRIGGER)] },
    mutate: {
      ...REAPPLIED,
      targets: [mutateTarget(step.trigger.kind, '/status', `${TRIGGER}.metadata.name`, check)],
      patchesJson6902: jsonPatch([
        { op: 'remove', path: '/status/admission' },
        { op: 'add', path: '/status/conditions', value: variable('conditions') },
      ]),
    },
  };
}
