import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import type { TenantGuard as TenantGuardDefinition } from '../guard/model.js';
import { type AdmissionPolicy, renderAdmissionPolicies } from '../guard/validating-admission-policy.js';

/** Props of a {@link TenantGuard}. */
export interface TenantGuardProps {
  /** Who may do what to the gate's objects in the managed namespaces. */
  readonly guard: TenantGuardDefinition;
  /**
   * Labels of every policy and binding.
   * @default - none
   */
  readonly labels?: Readonly<Record<string, string>>;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The tenant guard as ValidatingAdmissionPolicies and their bindings (admissionregistration.k8s.io/v1,
 * Kubernetes 1.30 or later): the API server itself refuses what would let a run skip the queue, with
 * no webhook, so the guard holds while Kyverno is down.
 */
export class TenantGuard extends Construct {
  /** The generated objects: a policy and its binding for each kind of request guarded. */
  readonly objects: ApiObject[];

  constructor(scope: Construct, id: string, props: TenantGuardProps) {
    super(scope, id);
    const { guard } = props;
    if (!NAME.test(guard.name)) {
      throw new Error(`TenantGuard ${id}: name "${guard.name}" is not a valid Kubernetes name (lower-case letters, digits, "-")`);
    }
    if (guard.identities.gate.length === 0 || guard.identities.tekton.length === 0) {
      throw new Error(`TenantGuard ${id}: trust at least one identity for the gate and one for Tekton, or no run could be released or started`);
    }
    this.objects = renderAdmissionPolicies(guard).flatMap((rendered) => admissionPolicyObjects(this, rendered, props.labels));
  }
}

/** A rendered policy and its binding as objects of `scope`, each with `labels`. */
export function admissionPolicyObjects(scope: Construct, { policy, binding }: AdmissionPolicy, labels?: Readonly<Record<string, string>>): ApiObject[] {
  return [
    new ApiObject(scope, policy.metadata.name, { ...policy, metadata: { ...policy.metadata, labels: { ...labels } } }),
    new ApiObject(scope, `${binding.metadata.name}-binding`, { ...binding, metadata: { ...binding.metadata, labels: { ...labels } } }),
  ];
}
