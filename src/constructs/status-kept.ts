import type { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import type { StatusKept as StatusKeptDefinition } from '../guard/model.js';
import { renderStatusKept } from '../guard/validating-admission-policy.js';
import { admissionPolicyObjects } from './tenant-guard.js';

/** Props of a {@link StatusKept}. */
export interface StatusKeptProps {
  /** The status the gate writes, and what of it is another controller's. */
  readonly kept: StatusKeptDefinition;
  /**
   * Labels of the policy and its binding.
   * @default - none
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * A ValidatingAdmissionPolicy and its binding (admissionregistration.k8s.io/v1) by which the API
 * server refuses a write of the gate's that would undo another controller's part of a status (a
 * write Kyverno made from a stale read), so Kyverno runs the step again from a fresh one.
 */
export class StatusKept extends Construct {
  /** The generated policy and binding. */
  readonly objects: ApiObject[];

  constructor(scope: Construct, id: string, props: StatusKeptProps) {
    super(scope, id);
    const { kept } = props;
    if (kept.gate.length === 0) throw new Error(`StatusKept ${id}: name at least one identity of the gate, whose writes are checked`);
    if (kept.labelKeys.length === 0) throw new Error(`StatusKept ${id}: name at least one label key of the gate's objects, or the policy would check every ${kept.kind.kind}`);
    this.objects = admissionPolicyObjects(this, renderStatusKept(kept), props.labels);
  }
}
