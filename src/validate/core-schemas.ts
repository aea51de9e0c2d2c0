/**
 * Strict schemas for the few core Kubernetes kinds the bundle emits (no CRD describes them).
 * Written from the Kubernetes API reference (v1.30+) for the fields a bundle may set.
 */
type Schema = Record<string, unknown>;

const strings = { type: 'array', items: { type: 'string' } };
const object = (properties: Schema, required: string[] = []): Schema => ({ type: 'object', additionalProperties: false, required, properties });
const named = (extra: Schema, required: string[]) => ({ type: 'array', items: object({ name: { type: 'string' }, ...extra }, ['name', ...required]) });
const labelSelector = object({
  matchLabels: { type: 'object', additionalProperties: { type: 'string' } },
  matchExpressions: { type: 'array', items: object({ key: { type: 'string' }, operator: { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }, values: strings }, ['key', 'operator']) },
});
const roleRef = object({ apiGroup: { type: 'string' }, kind: { enum: ['Role', 'ClusterRole'] }, name: { type: 'string' } }, ['apiGroup', 'kind', 'name']);
const subjects = { type: 'array', items: object({ kind: { enum: ['User', 'Group', 'ServiceAccount'] }, name: { type: 'string' }, namespace: { type: 'string' }, apiGroup: { type: 'string' } }, ['kind', 'name']) };
const base = (extra: Schema, required: string[] = []): Schema => ({
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'metadata', ...required],
  properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' }, ...extra },
});

export const CORE_SCHEMAS: ReadonlyMap<string, Schema> = new Map([
  ['v1/Namespace', base({ spec: { type: 'object', additionalProperties: false, properties: { finalizers: strings } } })],
  ['v1/ServiceAccount', base({ automountServiceAccountToken: { type: 'boolean' }, imagePullSecrets: named({}, []), secrets: named({ namespace: { type: 'string' } }, []) })],
  [
    'rbac.authorization.k8s.io/v1/ClusterRole',
    base({
      aggregationRule: { type: 'object' },
      rules: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['verbs'],
          properties: { apiGroups: strings, resources: strings, resourceNames: strings, nonResourceURLs: strings, verbs: { ...strings, minItems: 1 } },
        },
      },
    }),
  ],
  ['rbac.authorization.k8s.io/v1/ClusterRoleBinding', base({ roleRef, subjects }, ['roleRef'])],
  [
    'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy',
    base(
      {
        spec: object(
          {
            failurePolicy: { enum: ['Ignore', 'Fail'] },
            paramKind: object({ apiVersion: { type: 'string' }, kind: { type: 'string' } }),
            matchConstraints: object({
              matchPolicy: { enum: ['Exact', 'Equivalent'] },
              namespaceSelector: labelSelector,
              objectSelector: labelSelector,
              resourceRules: {
                type: 'array',
                items: object({ apiGroups: strings, apiVersions: strings, operations: strings, resources: strings, resourceNames: strings, scope: { enum: ['Cluster', 'Namespaced', '*'] } }),
              },
            }),
            matchConditions: named({ expression: { type: 'string' } }, ['expression']),
            variables: named({ expression: { type: 'string' } }, ['expression']),
            validations: {
              type: 'array',
              items: object({ expression: { type: 'string' }, message: { type: 'string' }, messageExpression: { type: 'string' }, reason: { type: 'string' } }, ['expression']),
            },
            auditAnnotations: { type: 'array', items: object({ key: { type: 'string' }, valueExpression: { type: 'string' } }, ['key', 'valueExpression']) },
          },
          ['matchConstraints', 'validations'],
        ),
      },
      ['spec'],
    ),
  ],
  [
    'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding',
    base(
      {
        spec: object(
          {
            policyName: { type: 'string' },
            validationActions: { type: 'array', minItems: 1, items: { enum: ['Deny', 'Warn', 'Audit'] } },
            paramRef: { type: 'object' },
            matchResources: object({ namespaceSelector: labelSelector, objectSelector: labelSelector, matchPolicy: { enum: ['Exact', 'Equivalent'] } }),
          },
          ['policyName', 'validationActions'],
        ),
      },
      ['spec'],
    ),
  ],
]);
