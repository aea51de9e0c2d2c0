/**
 * The API access each Kyverno controller needs to run the gate, derived from the steps themselves:
 * a new step cannot ship without the RBAC it needs, and no grant outlives the step that used it.
 */
import type { DialectName } from '../config/config.js';
import type { GateStep, Hold, PolicyDefinition, Target } from './model.js';
import { type ApiKind, groupOf, resourceOf } from './names.js';

/**
 * Kyverno controllers that take extra permissions through aggregated ClusterRoles. The admission
 * controller needs some only for what a rule reads while it admits a request: matching requests and
 * creating UpdateRequests its own role covers.
 */
export type KyvernoController = 'admission-controller' | 'background-controller' | 'reports-controller';

export interface AccessRule {
  readonly apiGroup: string;
  /** Plural resource, with `/status` for the status subresource. */
  readonly resource: string;
  readonly verbs: readonly string[];
}

type Grant = { controller: KyvernoController; kind: ApiKind; subresource?: 'status'; verbs: string[] };

function grantsOf(step: GateStep, dialect: DialectName): Grant[] {
  // The reports controller reads every matched kind to write policy reports.
  const reports: Grant = { controller: 'reports-controller', kind: step.trigger.kind, verbs: ['get', 'list', 'watch'] };
  // Listing triggers lets Kyverno re-apply a status step to existing objects (a ClusterPolicy's
  // mutateExistingOnPolicyUpdate; a CEL -reapply policy lists the objects it changes, its own
  // triggers); getting them lets a step read its trigger again when it runs.
  const triggers: Grant = { controller: 'background-controller', kind: step.trigger.kind, verbs: ['get', 'list', 'watch'] };
  switch (step.type) {
    case 'route-run':
    case 'insert-gate':
    case 'hold-pending':
    case 'hold-user-release':
    case 'release-dispatched':
      // Mutation at admission edits the request itself: no API access.
      return [reports];
    case 'generate-workload':
      return [
        reports,
        // The background controller re-reads the trigger (and reads the owner it names), then
        // creates the Workload if absent. A GeneratingPolicy finds its trigger by listing the
        // trigger's kind; its re-apply lists a namespace's runs and Workloads.
        { controller: 'background-controller', kind: step.trigger.kind, verbs: dialect === 'cel' ? ['get', 'list'] : ['get'] },
        // Kyverno makes a GeneratingPolicy Ready only once the reports controller may read every resource it matches.
        ...(dialect === 'cel' && step.trigger.subresource ? [{ ...reports, subresource: step.trigger.subresource } satisfies Grant] : []),
        ...(step.owner ? [{ controller: 'background-controller', kind: step.owner.kind, verbs: ['get'] } satisfies Grant] : []),
        { controller: 'background-controller', kind: step.workload, verbs: dialect === 'cel' ? ['get', 'list', 'create'] : ['get', 'create'] },
      ];
    case 'set-condition':
      return [
        reports,
        triggers,
        { controller: 'background-controller', kind: step.target.kind, subresource: 'status', verbs: ['get', 'update'] },
        ...targetsListed(step.target, dialect),
        // The object a step reads: a ClusterPolicy's preconditions read it in both controllers, a
        // MutatingPolicy's mutation in the background only.
        ...(step.read ? (dialect === 'cel' ? (['background-controller'] as const) : (['admission-controller', 'background-controller'] as const)).map((controller) => ({ controller, kind: step.read!.kind, verbs: ['get'] })) : []),
      ];
    case 'set-run-status':
      return [
        reports,
        triggers,
        { controller: 'background-controller', kind: step.target.kind, verbs: ['get', 'update'] },
        ...targetsListed(step.target, dialect),
        ...(step.change.type === 'stop' ? readsOf(step.change.hold) : []),
      ];
    case 'requeue-workload':
      return [reports, triggers, { controller: 'background-controller', kind: step.trigger.kind, subresource: 'status', verbs: ['get', 'update'] }, ...readsOf(step.hold)];
    case 'generate-queues':
      // The background controller makes, updates and deletes what it generated: a ClusterPolicy lists
      // it by label when the trigger no longer matches, a GeneratingPolicy watches it. Kyverno refuses
      // a ClusterPolicy's generate rule with synchronize unless the admission controller may read it too.
      return [
        reports,
        triggers,
        ...(dialect === 'clusterpolicy'
          ? [
              { controller: 'background-controller', kind: step.localQueue, verbs: ['create', 'delete', 'get', 'list', 'update'] } satisfies Grant,
              { controller: 'admission-controller', kind: step.localQueue, verbs: ['get', 'list'] } satisfies Grant,
            ]
          : [{ controller: 'background-controller', kind: step.localQueue, verbs: ['create', 'delete', 'get', 'list', 'update', 'watch'] } satisfies Grant]),
      ];
    case 'validate-run':
      // The LocalQueues of the run's namespace and the ClusterQueues, read while the run is admitted.
      return [
        reports,
        { controller: 'admission-controller', kind: step.localQueue, verbs: ['list'] },
        { controller: 'admission-controller', kind: step.clusterQueue, verbs: ['list'] },
      ];
  }
}

/** A CEL -reapply policy of a step on another object than its trigger lists the objects it changes. */
function targetsListed(target: Target, dialect: DialectName): Grant[] {
  return dialect === 'cel' && target.fromTarget ? [{ controller: 'background-controller', kind: target.kind, verbs: ['get', 'list'] }] : [];
}

/** Telling whether a run is still held reads its gate CustomRun or the run itself. */
function readsOf(hold: Hold): Grant[] {
  const kind = hold.by === 'gate' ? hold.gate.kind : hold.run.kind;
  return [{ controller: 'background-controller', kind, verbs: ['get'] }];
}

/** Access rules per controller for the gate rendered in `dialect`, merged by resource, sorted so the output is stable. */
export function requiredAccess(policies: readonly PolicyDefinition[], dialect: DialectName): Map<KyvernoController, AccessRule[]> {
  const merged = new Map<KyvernoController, Map<string, { apiGroup: string; resource: string; verbs: Set<string> }>>();
  for (const grant of policies.flatMap((p) => p.steps.flatMap((step) => grantsOf(step, dialect)))) {
    const resource = resourceOf(grant.kind) + (grant.subresource ? `/${grant.subresource}` : '');
    const apiGroup = groupOf(grant.kind);
    const rules = merged.get(grant.controller) ?? new Map();
    merged.set(grant.controller, rules);
    const key = `${apiGroup}/${resource}`;
    const rule = rules.get(key) ?? { apiGroup, resource, verbs: new Set<string>() };
    rules.set(key, rule);
    grant.verbs.forEach((verb) => rule.verbs.add(verb));
  }
  return new Map(
    [...merged.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([controller, rules]) => [
      controller,
      [...rules.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([, rule]) => ({ apiGroup: rule.apiGroup, resource: rule.resource, verbs: [...rule.verbs].sort() })),
    ]),
  );
}
