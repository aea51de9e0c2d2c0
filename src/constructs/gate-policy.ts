import { Construct } from 'constructs';
import type { ApiObject } from 'cdk8s';
import { ClusterPolicy } from '../../imports/kyverno-kyverno.io.js';
import { GeneratingPolicy, MutatingPolicy, ValidatingPolicy } from '../../imports/kyverno-policies.kyverno.io.js';
import type { DialectName } from '../config/config.js';
import type { PolicyDefinition } from '../gate/model.js';
import { DIALECTS } from '../kyverno/dialect.js';
import { MIN_VERSION_ANNOTATION } from '../operate/bundle-dir.js';

/** Props of a {@link GatePolicy}. */
export interface GatePolicyProps {
  /** The step of the flow this policy carries out, with its name, title and description. */
  readonly definition: PolicyDefinition;
  /**
   * `policies.kyverno.io/category` of the policy.
   * @default 'Tekton, Kueue'
   */
  readonly category?: string;
  /**
   * Oldest Kyverno version the policy is known to work with (`policies.kyverno.io/minversion`).
   * @default '1.19.0', or the newer release a policy of the dialect needs
   */
  readonly minVersion?: string;
  /**
   * Kyverno's policy language to render the policy in.
   * @default 'cel'
   */
  readonly dialect?: DialectName;
  /**
   * Labels of the policy.
   * @default - none
   */
  readonly labels?: Readonly<Record<string, string>>;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * One step of the gate as a Kyverno policy of the chosen dialect (a `kyverno.io/v1` ClusterPolicy,
 * or a `policies.kyverno.io/v1` policy), with the standard `policies.kyverno.io/*` annotations of
 * the kyverno/policies catalogue.
 */
export class GatePolicy extends Construct {
  /** The generated L1 objects: one, but where the dialect needs more than one policy for a step. */
  readonly policies: ApiObject[];

  constructor(scope: Construct, id: string, props: GatePolicyProps) {
    super(scope, id);
    const { definition } = props;
    if (!NAME.test(definition.name)) {
      throw new Error(`GatePolicy ${id}: name "${definition.name}" is not a valid Kubernetes name (lower-case letters, digits, "-")`);
    }
    const rendered = DIALECTS[props.dialect ?? 'cel'](definition);
    const metadata = ({ name, minVersion }: { name: string; minVersion?: string }) => ({
      name,
      labels: { ...props.labels },
      annotations: {
        'policies.kyverno.io/title': definition.title,
        'policies.kyverno.io/category': props.category ?? 'Tekton, Kueue',
        'policies.kyverno.io/subject': [...new Set(definition.steps.map((s) => s.trigger.kind.kind))].join(', '),
        [MIN_VERSION_ANNOTATION]: props.minVersion ?? minVersion ?? '1.19.0',
        'policies.kyverno.io/description': definition.description,
      },
    });
    this.policies = rendered.map((policy, i) => {
      const id = i === 0 ? 'Resource' : `Resource-${policy.name}`;
      switch (policy.kind) {
        case 'ClusterPolicy':
          return new ClusterPolicy(this, id, { metadata: metadata(policy), spec: policy.spec });
        case 'MutatingPolicy':
          return new MutatingPolicy(this, id, { metadata: metadata(policy), spec: policy.spec });
        case 'ValidatingPolicy':
          return new ValidatingPolicy(this, id, { metadata: metadata(policy), spec: policy.spec });
        case 'GeneratingPolicy':
          return new GeneratingPolicy(this, id, { metadata: metadata(policy), spec: policy.spec });
      }
    });
    this.node.addValidation({
      validate: () => {
        const names = ruleNames(definition);
        return names.length === 0
          ? [`${definition.name}: a policy needs at least one rule`]
          : names.filter((n, i) => names.indexOf(n) !== i).map((n) => `${definition.name}: rule name "${n}" is used twice`);
      },
    });
  }
}

/** The rule names of the model's steps (a step's own, and those of its parts), which every dialect keeps. */
function ruleNames(definition: PolicyDefinition): string[] {
  return definition.steps.flatMap((s) => [s.rule, ...('rules' in s ? Object.values(s.rules) : []), ...(s.type === 'hold-pending' ? [s.userPendingRule, ...(s.dispatch ? [s.dispatch.rule] : [])] : [])]);
}
