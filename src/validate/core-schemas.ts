/**
 * Strict schemas for the few core Kubernetes kinds the bundle emits (no CRD describes them).
 * Written from the Kubernetes API reference for the fields a bundle may set.
 */
type Schema = Record<string, unknown>;

const strings = { type: 'array', items: { type: 'string' } };
const base = (extra: Schema, required: string[] = []): Schema => ({
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'metadata', ...required],
  properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' }, ...extra },
});

export const CORE_SCHEMAS: ReadonlyMap<string, Schema> = new Map([
  ['v1/Namespace', base({ spec: { type: 'object', additionalProperties: false, properties: { finalizers: strings } } })],
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
]);
