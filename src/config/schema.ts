/**
 * JSON Schema of the user config file (`policies/config.yaml`), checked with ajv before anything is
 * built: the one source of the file's type (`FromSchema`) and of each field's default.
 */

const dnsLabel = { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 } as const;
const qualifiedName = {
  type: 'string',
  pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$',
  maxLength: 316,
} as const;
/** Kubernetes' resource quantity as text. */
export const QUANTITY_PATTERN = '^[+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$';
const quantity = {
  oneOf: [
    { type: 'string', pattern: QUANTITY_PATTERN },
    { type: 'integer', minimum: 0 },
  ],
} as const;
const resourceList = {
  type: 'object',
  propertyNames: qualifiedName,
  additionalProperties: quantity,
} as const;
/** A value a rule matches exactly: Kyverno would read `*` and `?` in it as wildcards, CEL would not. */
const matchValue = { type: 'string', minLength: 1, pattern: '^[^*?]+$' } as const;
/** A label or annotation value a rule matches: one, or any of a list. */
const matchValues = {
  oneOf: [matchValue, { type: 'array', minItems: 1, items: matchValue }],
} as const;
/** A label value, as Kubernetes allows it. */
const labelValue = { type: 'string', pattern: '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$', maxLength: 63 } as const;
/** A non-empty list of named entries, each naming an object of another kind in `ref`. */
function namedRefs<Ref extends string>(ref: Ref) {
  return {
    type: 'array',
    minItems: 1,
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['name', ref] as const,
      properties: { name: dnsLabel, ...({ [ref]: dnsLabel } as { readonly [key in Ref]: typeof dnsLabel }) },
    },
  } as const;
}
/** The LocalQueues of a namespace and the ClusterQueue each feeds. */
const queues = namedRefs('clusterQueue');
const matchMap = { type: 'object', propertyNames: qualifiedName, additionalProperties: matchValues } as const;

export const configSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'tekton-kueue-policies config',
  type: 'object',
  additionalProperties: false,
  required: ['clusterQueues'],
  properties: {
    strategy: { enum: ['customrun', 'pending', 'auto'], default: 'auto' },
    dialect: { enum: ['clusterpolicy', 'cel'], default: 'cel' },
    optOut: {
      type: 'object',
      additionalProperties: false,
      properties: {
        label: { ...qualifiedName, default: 'tekton-kueue-policies.dev/opt-out' },
        subjects: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['kind', 'name'],
            properties: { kind: { enum: ['User', 'Group', 'ServiceAccount'] }, name: { type: 'string', minLength: 1 }, namespace: dnsLabel },
          },
        },
      },
    },
    trustedIdentities: {
      type: 'object',
      additionalProperties: false,
      properties: {
        gate: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, default: ['system:serviceaccount:kyverno:kyverno-background-controller'] },
        tekton: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, default: ['system:serviceaccount:tekton-pipelines:tekton-pipelines-controller'] },
      },
    },
    resourceFlavor: { ...dnsLabel, default: 'default-flavor' },
    requests: {
      type: 'object',
      additionalProperties: false,
      properties: {
        annotationPrefix: { type: 'string', pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)[-A-Za-z0-9_.]*$', default: 'kueue.konflux-ci.dev/requests-' },
        defaults: { ...resourceList, default: { cpu: '1', memory: '1Gi' } },
      },
    },
    clusterQueues: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'quota'],
        properties: {
          name: dnsLabel,
          quota: { ...resourceList, minProperties: 1 },
          defaultRequests: resourceList,
          preemption: { enum: ['Never', 'LowerPriority', 'LowerOrNewerEqualPriority'], default: 'Never' },
          cohort: dnsLabel,
          borrowingLimit: { ...resourceList, minProperties: 1 },
          lendingLimit: { ...resourceList, minProperties: 1 },
          reclaimWithinCohort: { enum: ['Never', 'LowerPriority', 'Any'], default: 'Never' },
          borrowWithinCohort: { enum: ['Never', 'LowerPriority'], default: 'Never' },
          fairSharing: { type: 'object', additionalProperties: false, required: ['weight'], properties: { weight: quantity } },
          queueingStrategy: { enum: ['BestEffortFIFO', 'StrictFIFO'], default: 'BestEffortFIFO' },
        },
      },
    },
    namespaces: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'queues'],
        properties: { name: dnsLabel, queues, defaultQueue: dnsLabel },
      },
    },
    tenantNamespaces: {
      type: 'object',
      additionalProperties: false,
      required: ['namespaceSelector', 'queues'],
      properties: {
        namespaceSelector: {
          type: 'object',
          additionalProperties: false,
          required: ['matchLabels'],
          properties: {
            matchLabels: { type: 'object', minProperties: 1, propertyNames: qualifiedName, additionalProperties: labelValue },
          },
        },
        queues,
        defaultQueue: dnsLabel,
      },
    },
    priorities: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'value'],
        properties: {
          name: dnsLabel,
          value: { type: 'integer', minimum: -2147483648, maximum: 1000000000 },
          description: { type: 'string' },
        },
      },
    },
    defaultPriority: dnsLabel,
    rules: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'set'],
        properties: {
          name: dnsLabel,
          match: {
            type: 'object',
            additionalProperties: false,
            properties: {
              namespaces: { type: 'array', minItems: 1, items: dnsLabel },
              labels: matchMap,
              annotations: matchMap,
              pipelineRef: {
                type: 'object',
                additionalProperties: false,
                minProperties: 1,
                properties: { name: matchValue, resolver: matchValue },
              },
            },
          },
          set: {
            type: 'object',
            additionalProperties: false,
            minProperties: 1,
            properties: { queue: dnsLabel, priorityClass: dnsLabel, requests: { ...resourceList, minProperties: 1 } },
          },
          enforce: { type: 'boolean', default: false },
        },
      },
    },
    multiKueue: {
      type: 'object',
      additionalProperties: false,
      required: ['role'],
      properties: {
        role: { enum: ['manager', 'worker'] },
        workers: namedRefs('kubeconfigSecret'),
        clusterQueues: { type: 'array', minItems: 1, items: dnsLabel },
        kueueNamespace: { ...dnsLabel, default: 'kueue-system' },
      },
    },
    samples: { type: 'boolean', default: true },
  },
} as const;
