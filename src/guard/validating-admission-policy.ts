/**
 * Renders the tenant guard, and the check of the gate's own status writes, as native
 * ValidatingAdmissionPolicies (admissionregistration.k8s.io/v1): CEL that the API server evaluates,
 * with the request's user and an RBAC authorizer, and no webhook. Only this file knows CEL for the
 * guard; what it checks is in ./model.ts.
 */
import { groupOf, namespaceSelectorOf, resourceOf, type ApiKind, type NamespaceSelector } from '../gate/names.js';
import type { StatusKept, TenantGuard } from './model.js';

/** A ValidatingAdmissionPolicy and its binding, as the API server takes them. */
export interface AdmissionPolicy {
  readonly policy: {
    readonly apiVersion: 'admissionregistration.k8s.io/v1';
    readonly kind: 'ValidatingAdmissionPolicy';
    readonly metadata: { readonly name: string };
    readonly spec: {
      readonly failurePolicy: 'Fail';
      readonly matchConstraints: {
        readonly matchPolicy: 'Equivalent';
        readonly resourceRules: readonly { apiGroups: string[]; apiVersions: string[]; operations: string[]; resources: string[] }[];
      };
      readonly matchConditions: readonly { name: string; expression: string }[];
      readonly variables: readonly { name: string; expression: string }[];
      readonly validations: readonly { expression: string; message: string; messageExpression: string; reason: 'Forbidden' | 'Invalid' }[];
    };
  };
  readonly binding: {
    readonly apiVersion: 'admissionregistration.k8s.io/v1';
    readonly kind: 'ValidatingAdmissionPolicyBinding';
    readonly metadata: { readonly name: string };
    readonly spec: {
      readonly policyName: string;
      readonly validationActions: readonly ['Deny'];
      readonly matchResources: { readonly namespaceSelector: NamespaceSelector } | { readonly objectSelector: { readonly matchExpressions: readonly { key: string; operator: 'Exists' }[] } };
    };
  };
}

/** A CEL string literal. */
function q(value: string): string {
  return JSON.stringify(value);
}

function list(values: readonly string[]): string {
  return `[${values.map(q).join(', ')}]`;
}

/** A map field of an object that may be absent (`oldObject` on CREATE, a run without annotations). */
function mapOf(object: string, field: 'labels' | 'annotations'): string {
  return `${object} != null && has(${object}.metadata.${field}) ? ${object}.metadata.${field} : {}`;
}

function valueOf(map: string, key: string): string {
  return `(${q(key)} in ${map} ? ${map}[${q(key)}] : '')`;
}

function specStatus(object: string): string {
  return `${object} != null && has(${object}.spec.status) ? ${object}.spec.status : ''`;
}

interface Rule {
  readonly name: string;
  /** True when the request is allowed. */
  readonly allows: string;
  /** What is wrong and what to do, as a CEL string expression (the user and namespace at hand). */
  readonly says: string;
}

/** A rule as a validation; its refusal starts with the name of what refuses (`by`) and the rule's. */
function validation(by: string, rule: Rule, reason: 'Forbidden' | 'Invalid') {
  const prefix = `${by} (${rule.name}): `;
  return { expression: rule.allows, message: `${prefix}refused`, messageExpression: `${q(prefix)} + ${rule.says}`, reason };
}

/** Requests a policy checks: of these operations on a kind, or on its subresource. */
interface Checked {
  readonly kind: ApiKind;
  readonly subresource?: string;
  readonly operations: string[];
}

/** A policy on requests of `resources` that pass `matchCondition`, and its binding. */
function policyWithBinding(
  name: string,
  resources: readonly Checked[],
  matchCondition: { name: string; expression: string },
  spec: Pick<AdmissionPolicy['policy']['spec'], 'variables' | 'validations'>,
  matchResources: AdmissionPolicy['binding']['spec']['matchResources'],
): AdmissionPolicy {
  return {
    policy: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          // Equivalent: a request in another served version (tekton.dev/v1beta1) is checked as v1.
          matchPolicy: 'Equivalent',
          resourceRules: resources.map((r) => ({
            apiGroups: [groupOf(r.kind)],
            apiVersions: [r.kind.apiVersion.split('/')[1]!],
            operations: r.operations,
            resources: [`${resourceOf(r.kind)}${r.subresource ? `/${r.subresource}` : ''}`],
          })),
        },
        matchConditions: [matchCondition],
        ...spec,
      },
    },
    binding: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name },
      spec: { policyName: name, validationActions: ['Deny'], matchResources },
    },
  };
}

function admissionPolicy(
  guard: TenantGuard,
  name: string,
  resources: readonly Checked[],
  trusted: readonly string[],
  variables: readonly { name: string; expression: string }[],
  rules: readonly Rule[],
): AdmissionPolicy {
  const policyName = `${guard.name}-${name}`;
  return policyWithBinding(
    policyName,
    resources,
    { name: 'not-trusted', expression: `!(request.userInfo.username in ${list(trusted)})` },
    { variables, validations: rules.map((rule) => validation(guard.name, rule, 'Forbidden')) },
    { namespaceSelector: namespaceSelectorOf(guard.namespaces) },
  );
}

/** The guard's policies: runs (all but the gate), children of runs (all but Tekton), gate CustomRuns' status (all but the gate). */
export function renderAdmissionPolicies(guard: TenantGuard): AdmissionPolicy[] {
  const { run, rules, optOut } = guard;
  const user = 'request.userInfo.username';
  const mayOptOut = `authorizer.group(${q(optOut.permission.group)}).resource(${q(optOut.permission.resource)}).namespace(request.namespace).check(${q(optOut.permission.verb)}).allowed()`;
  const grantHint = `' Ask an admin to bind ClusterRole ${optOut.clusterRole} (verb ${optOut.permission.verb} on ${optOut.permission.resource}.${optOut.permission.group}) if it must.'`;
  const isGate = `t.name == ${q(run.gateTask)}`;
  const gated = (tasks: string, finallyTasks: string) =>
    `size(${tasks}) > 0 && ${tasks}[0].name == ${q(run.gateTask)} && has(${tasks}[0].taskSpec) && has(${tasks}[0].taskSpec.kind) && ` +
    `${tasks}[0].taskSpec.kind == ${q(run.customTask.kind)} && ${tasks}[0].taskSpec.apiVersion == ${q(run.customTask.apiVersion)} && ` +
    `${tasks}.all(t, ${isGate} || (has(t.runAfter) && ${q(run.gateTask)} in t.runAfter)) && ` +
    `${finallyTasks}.all(f, has(f.when) && f.when.exists(w, has(w.input) && w.input == ${q(run.finallyWhenInput)}))`;
  const stops = list(run.finallyStatuses);
  const pipelineRuns = admissionPolicy(
    guard,
    'pipelineruns',
    [{ kind: run.kind, operations: ['CREATE', 'UPDATE'] }],
    [...guard.identities.gate, ...(guard.identities.multiKueueManager ?? [])],
    [
      { name: 'labels', expression: mapOf('object', 'labels') },
      { name: 'oldLabels', expression: mapOf('oldObject', 'labels') },
      { name: 'annotations', expression: mapOf('object', 'annotations') },
      { name: 'oldAnnotations', expression: mapOf('oldObject', 'annotations') },
      { name: 'status', expression: specStatus('object') },
      { name: 'oldStatus', expression: specStatus('oldObject') },
      { name: 'gatedBy', expression: valueOf('variables.labels', run.gatedLabel) },
      { name: 'oldGatedBy', expression: valueOf('variables.oldLabels', run.gatedLabel) },
      { name: 'optedOut', expression: `${valueOf('variables.labels', optOut.label)} == 'true'` },
      { name: 'wasOptedOut', expression: `${valueOf('variables.oldLabels', optOut.label)} == 'true'` },
      { name: 'tasks', expression: 'has(object.spec.pipelineSpec) && has(object.spec.pipelineSpec.tasks) ? object.spec.pipelineSpec.tasks : []' },
      { name: 'finallyTasks', expression: "has(object.spec.pipelineSpec) && has(object.spec.pipelineSpec.finally) ? object.spec.pipelineSpec['finally'] : []" },
    ],
    [
      // First: a run that sets the label is refused for it, not for the gate's missing mark.
      ...(run.dispatchedLabel
        ? [
            {
              name: rules.dispatchedByManager,
              allows: `request.operation == 'CREATE' ? !(${q(run.dispatchedLabel)} in variables.labels) : ${valueOf('variables.labels', run.dispatchedLabel)} == ${valueOf('variables.oldLabels', run.dispatchedLabel)}`,
              says:
                `'label ${run.dispatchedLabel} is MultiKueue\\'s: only the manager cluster\\'s Kueue (${(guard.identities.multiKueueManager ?? []).join(', ')}) creates runs with it, copies of runs queued there; ' + ` +
                `${user} + ' may not set or change it. Remove the label: the run then waits in the Kueue queue.'`,
            },
          ]
        : []),
      {
        name: rules.optOutGranted,
        allows: `!variables.optedOut || variables.wasOptedOut || ${mayOptOut}`,
        says: `${user} + ' may not opt a PipelineRun of ' + request.namespace + ' out of the Kueue queue (label ${optOut.label}: "true"). Remove the label.' + ${grantHint}`,
      },
      {
        name: rules.gatedAtCreation,
        allows:
          `request.operation != 'CREATE' || variables.optedOut || ` +
          `(variables.gatedBy == 'pending' && variables.status == ${q(run.pendingStatus)}) || ` +
          `(variables.gatedBy == 'customrun' && ${gated('variables.tasks', 'variables.finallyTasks')})` +
          (run.mechanisms.pending === 'none' ? ' || size(variables.tasks) == 0' : '') +
          ` || variables.status == ${q(run.cancelStatus)}`,
        says: `'the PipelineRun reached the API server without the Kueue gate, so it would start unqueued: the Kyverno policy ${guard.gatePolicy.name} did not run. Check that Kyverno is up and the policy Ready (kubectl get ${guard.gatePolicy.resource} ${guard.gatePolicy.name}).'`,
      },
      {
        name: rules.noStopAtCreation,
        allows: `request.operation != 'CREATE' || !(variables.status in ${stops})`,
        says: `'a PipelineRun created with spec.status ' + variables.status + ' would run its finally tasks without waiting in the Kueue queue. Create it without spec.status, or with ${run.pendingStatus} or ${run.cancelStatus}.'`,
      },
      {
        name: rules.gateLabelKept,
        allows: `request.operation != 'UPDATE' || variables.gatedBy == variables.oldGatedBy`,
        says: `'label ${run.gatedLabel} is the Kueue gate\\'s: ' + ${user} + ' may not change it (it was "' + variables.oldGatedBy + '"). Leave it as it is.'`,
      },
      {
        name: rules.holdKept,
        allows:
          `request.operation != 'UPDATE' || ${valueOf('variables.annotations', run.heldBy.key)} == ${valueOf('variables.oldAnnotations', run.heldBy.key)} || ` +
          `(${valueOf('variables.oldAnnotations', run.heldBy.key)} == '' && ${valueOf('variables.annotations', run.heldBy.key)} == ${q(run.heldBy.value)} && ` +
          `variables.oldStatus == ${q(run.pendingStatus)} && variables.status == ${q(run.pendingStatus)})`,
        says: `'annotation ${run.heldBy.key} is the Kueue gate\\'s: ' + ${user} + ' may not remove or change it. Leave it as it is.'`,
      },
      {
        name: rules.releasedByGate,
        allows: `request.operation != 'UPDATE' || variables.oldGatedBy != 'pending' || variables.oldStatus != ${q(run.pendingStatus)} || variables.status in [${q(run.pendingStatus)}, ${q(run.cancelStatus)}]`,
        says:
          `'PipelineRun ' + object.metadata.name + ' waits in the Kueue queue: only the gate releases it, when Kueue admits it; ' + ${user} + ' may cancel it (spec.status: ${run.cancelStatus}). ' + ` +
          `(variables.status in ${stops} ? variables.status + ' would run its finally tasks without admission.' : 'spec.status "' + variables.status + '" would start it unqueued.')`,
      },
      {
        name: rules.gateTaskKept,
        allows: `request.operation != 'UPDATE' || variables.oldGatedBy != 'customrun' || (${gated('variables.tasks', 'variables.finallyTasks')})`,
        says: `'PipelineRun ' + object.metadata.name + ' waits for its ${run.gateTask} task: its tasks and finally tasks must keep waiting for it. Leave them as they are.'`,
      },
    ],
  );
  const children = admissionPolicy(
    guard,
    'children',
    [guard.taskRun, guard.customRun].map((kind) => ({ kind, operations: ['CREATE'] })),
    guard.identities.tekton,
    [],
    [
      {
        name: rules.childrenByTekton,
        allows: mayOptOut,
        says:
          `${user} + ' may not create ' + request.kind.kind + 's in ' + request.namespace + ': there, Tekton makes them for PipelineRuns, which wait in the Kueue queue. ' + ` +
          `'Run it in a PipelineRun.' + ${grantHint}`,
      },
    ],
  );
  const gateStatus = admissionPolicy(
    guard,
    'gate-status',
    [{ kind: guard.customRun, subresource: 'status', operations: ['UPDATE'] }],
    guard.identities.gate,
    [
      { name: 'isGate', expression: `has(object.spec.customSpec) && has(object.spec.customSpec.kind) && object.spec.customSpec.kind == ${q(run.customTask.kind)}` },
      { name: 'opened', expression: "has(object.status) && has(object.status.conditions) && object.status.conditions.exists(c, c.type == 'Succeeded' && c.status == 'True')" },
      {
        name: 'wasOpened',
        expression: "has(oldObject.status) && has(oldObject.status.conditions) && oldObject.status.conditions.exists(c, c.type == 'Succeeded' && c.status == 'True')",
      },
    ],
    [
      {
        name: rules.gateOpenedByGate,
        allows: '!variables.isGate || !variables.opened || variables.wasOpened',
        says: `${user} + ' may not open the Kueue gate of a PipelineRun (CustomRun ' + object.metadata.name + ' Succeeded=True): the gate opens it when Kueue admits the run.'`,
      },
    ],
  );
  return [pipelineRuns, children, gateStatus];
}

/**
 * The policy that keeps another controller's part of a status from the gate's writes: the gate may
 * change the conditions its steps set, and, while the object as stored is in a state a step acts
 * in, what that step changes. A write made from a stale read changes more, and is refused.
 */
export function renderStatusKept(kept: StatusKept): AdmissionPolicy {
  const { writes } = kept;
  // A variable per state, named after its condition (`whileEvicted`).
  const stateVariable = (index: number) => `while${writes.inState[index]!.condition}`;
  const inState = (index: number) => `variables.${stateVariable(index)}`;
  if (new Set(writes.inState.map((state) => state.condition)).size < writes.inState.length) throw new Error(`${kept.name}: the steps write in several states of one condition`);
  const others = (object: string) => `${object}.?status.?conditions.orValue([]).filter(c, !(c.type in variables.gateConditions))`;
  const unchanged = (name: string) => {
    const removable = writes.inState.flatMap((state, index) => (state.removes.includes(name) ? [inState(index)] : []));
    const removed = removable.length > 0 ? ` || (!object.?status.?${name}.hasValue() && ${removable.join(' || ')})` : '';
    return `object.?status.?${name} == oldObject.?status.?${name}${removed}`;
  };
  const changes = [
    `(${others('object')} == ${others('oldObject')} ? [] : [${q('status.conditions')}])`,
    ...kept.fields.map((name) => `(${unchanged(name)} ? [] : [${q(`status.${name}`)}])`),
  ];
  const rule: Rule = {
    name: 'kept',
    allows: 'size(variables.undone) == 0',
    says:
      `'the gate (' + request.userInfo.username + ') wrote the status of ${kept.kind.kind} ' + object.metadata.name + ' from a stale read: ` +
      `it would undo ${kept.owner}\\'s ' + variables.undone.join(', ') + '. Kyverno runs the step again from a fresh read.'`,
  };
  return policyWithBinding(
    kept.name,
    [{ kind: kept.kind, subresource: 'status', operations: ['UPDATE'] }],
    { name: 'the-gate', expression: `request.userInfo.username in ${list(kept.gate)}` },
    {
      variables: [
        ...writes.inState.map((state, index) => ({
          name: stateVariable(index),
          expression: `oldObject.?status.?conditions.orValue([]).exists(c, c.type == ${q(state.condition)} && c.status in ${list(state.statuses)})`,
        })),
        { name: 'gateConditions', expression: [list(writes.conditions), ...writes.inState.map((state, index) => `(${inState(index)} ? ${list(state.conditions)} : [])`)].join(' + ') },
        // What the write changes beyond that: the conditions the gate does not set, the other fields.
        { name: 'undone', expression: changes.join(' + ') },
      ],
      validations: [validation(kept.name, rule, 'Invalid')],
    },
    { objectSelector: { matchExpressions: kept.labelKeys.map((key) => ({ key, operator: 'Exists' as const })) } },
  );
}
