/**
 * The gate's steps in CEL, the language of the API server's webhook match conditions and of
 * Kyverno's `policies.kyverno.io` policies. Every field is tested before it is read: an error in a
 * match condition refuses the request when the policy fails closed.
 */
import type { GateStep, Trigger, When } from '../gate/model.js';
import { type ApiKind, endedUnlessReached } from '../gate/names.js';

/** A CEL literal of strings: a string, a list of them, or a map to either (JSON's syntax is CEL's for these). */
export function celLiteral(value: string | readonly string[] | Readonly<Record<string, string | readonly string[]>>): string {
  return JSON.stringify(value);
}

/** `object` (or `oldObject`) has the label or annotation `key`. */
export function celHasKey(object: string, map: 'labels' | 'annotations', key: string): string {
  return `(has(${object}.metadata.${map}) && ${celLiteral(key)} in ${object}.metadata.${map})`;
}

/** `object` has the label or annotation `key` with `value`. */
export function celHasValue(object: string, map: 'labels' | 'annotations', key: string, value: string): string {
  return `(${celHasKey(object, map, key)} && ${object}.metadata.${map}[${celLiteral(key)}] == ${celLiteral(value)})`;
}

/** `object` has every label of `labels`, with its value. */
export function celHasLabels(object: string, labels: Readonly<Record<string, string>> = {}): string {
  return Object.entries(labels).map(([key, value]) => celHasValue(object, 'labels', key, value)).join(' && ');
}

/** `spec.status` of a run, `''` when it has none. */
export function celSpecStatus(object: string): string {
  return `(has(${object}.spec.status) ? ${object}.spec.status : '')`;
}

/** `object` (the request's object unless told) has the condition `type` with one of `statuses`. */
export function celCondition(type: string, statuses: readonly string[], object = 'object'): string {
  return `(has(${object}.status) && has(${object}.status.conditions) && ${object}.status.conditions.exists(c, has(c.type) && c.type == ${celLiteral(type)} && has(c.status) && c.status in ${celLiteral(statuses)}))`;
}

/**
 * When Kyverno evaluates a step: at admission, on its trigger's operations; `reapplied`, also at a
 * ClusterPolicy's or MutatingPolicy's periodic re-apply, with no operation; `listed`, on objects a
 * policy lists itself in a namespace of the step's: neither the request's operation nor its
 * namespace tells anything there.
 */
export type Evaluated = 'admission' | 'reapplied' | 'listed';

/**
 * The step as a CEL expression on the admission request: its trigger, and the trigger's own test
 * of the step (its `when`), so that a status update after which no step can act never reaches
 * Kyverno.
 */
export function celStep(step: GateStep, evaluated: Evaluated = 'admission'): string {
  if (step.type === 'generate-queues') return celLabelledOrUnlabelled(step.trigger);
  const terms = celTrigger(step.trigger, evaluated);
  if ('when' in step) terms.push(...celWhen(step.when, step.trigger.kind));
  if (step.type === 'requeue-workload') terms.push('(has(object.status) && has(object.status.admission))');
  return `(${terms.join(' && ')})`;
}

/**
 * An object that has the trigger's labels, or had them before this update: an object that loses
 * them must reach Kyverno too, which takes back what it generated for it. Kyverno's generation for
 * existing objects evaluates the condition with no operation.
 */
function celLabelledOrUnlabelled(trigger: Trigger): string {
  return `(request.operation in ${celLiteral([...trigger.operations, ''])} && ((${celHasLabels('object', trigger.labels)}) || (request.operation == 'UPDATE' && ${celHasLabels('oldObject', trigger.labels)})))`;
}

function celTrigger(trigger: Trigger, evaluated: Evaluated): string[] {
  const terms = [
    // No operation: Kyverno's periodic re-apply; the API server always sends one.
    ...(evaluated === 'listed' ? [] : [`request.operation in ${celLiteral(evaluated === 'reapplied' ? [...trigger.operations, ''] : trigger.operations)}`]),
    // Namespaces chosen by label are matched by the policy's namespace selector: a match condition cannot see their labels.
    ...(evaluated !== 'listed' && trigger.namespaces && 'names' in trigger.namespaces ? [`request.namespace in ${celLiteral(trigger.namespaces.names)}`] : []),
    ...Object.entries(trigger.labels ?? {}).map(([key, value]) => celHasValue('object', 'labels', key, value)),
    ...Object.entries(trigger.unlessLabels ?? {}).map(([key, value]) => `!${celHasValue('object', 'labels', key, value)}`),
    ...(trigger.labelKeys ?? []).map((key) => celHasKey('object', 'labels', key)),
    ...(trigger.unlessLabelKeys ?? []).map((key) => `!${celHasKey('object', 'labels', key)}`),
    ...(trigger.admissionCheck ? [`(has(object.status) && has(object.status.admissionChecks) && object.status.admissionChecks.exists(c, has(c.name) && c.name == ${celLiteral(trigger.admissionCheck)}))`] : []),
  ];
  const change = trigger.change;
  if (change && 'specStatus' in change) {
    terms.push(`(request.operation != 'UPDATE' || (${celSpecStatus('oldObject')} == ${celLiteral(change.specStatus.from)} && ${celSpecStatus('object')} == ${celLiteral(change.specStatus.to)}))`);
  } else if (change) {
    terms.push(celHasKey('object', 'annotations', change.annotationAdded), `(request.operation != 'UPDATE' || !${celHasKey('oldObject', 'annotations', change.annotationAdded)})`);
  }
  const state = trigger.state;
  if (state && 'heldPending' in state) {
    const { heldBy, pendingStatus } = state.heldPending;
    terms.push(celHasValue('object', 'annotations', heldBy.key, heldBy.value), `${celSpecStatus('object')} == ${celLiteral(pendingStatus)}`);
  } else if (state) {
    const gateChild = `(has(c.pipelineTaskName) && c.pipelineTaskName == ${celLiteral(state.atGate)})`;
    const children = 'object.status.childReferences';
    terms.push(`(has(object.status) && has(${children}) && ${children}.exists(c, ${gateChild}) && ${children}.all(c, ${gateChild}) && !${celCondition('Succeeded', ['True', 'False'])})`);
  }
  return terms;
}

/** The trigger has reached `when`, and has not ended unless that is what it waits for. */
function celWhen(when: When, trigger: ApiKind): string[] {
  const reached =
    'started' in when
      ? `(has(object.status) && has(object.status.childReferences) && object.status.childReferences.exists(c, !(has(c.pipelineTaskName) && c.pipelineTaskName == ${celLiteral(when.started.gateTask)})))`
      : 'specStatus' in when
        ? `${celSpecStatus('object')} == ${celLiteral(when.specStatus)}`
        : celCondition(when.condition, when.statuses);
  const ended = endedUnlessReached(when, trigger);
  return [reached, ...(ended ? [`!${celCondition(ended.condition, ended.statuses)}`] : [])];
}
