import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { APPLIED_COMPONENTS, buildBundle, gatePolicies } from '../policies/bundle.js';
import { loadConfig, parseConfig } from '../src/config/load.js';
import { requiredAccess } from '../src/gate/access.js';
import { GATED_LABEL } from '../src/gate/names.js';
import { DIALECTS } from '../src/kyverno/dialect.js';
import { renderFiles } from '../src/synth.js';
import { defaultConfig, defaultConfigObject, exampleConfig, readTree, root } from './helpers.js';

/** The objects of one file of a synthesized bundle. */
const objectsIn = (rendered: ReadonlyMap<string, string>, path: string) => YAML.parseAllDocuments(rendered.get(path)!).map((d) => d.toJS());
/** The bundle of policies/config.yaml, as dist/ ships it. */
const shipped = renderFiles(buildBundle(defaultConfig()), APPLIED_COMPONENTS);
/** The same config in the ClusterPolicy dialect, whose rules the field checks below read (the CEL dialect's are compared with them). */
const files = renderFiles(buildBundle(parseConfig({ ...defaultConfigObject(), dialect: 'clusterpolicy' }, 'clusterpolicy.yaml')), APPLIED_COMPONENTS);
const objects = (path: string) => objectsIn(files, path);
type Rule = { name: string; match: { any: { resources: { kinds: string[]; operations: string[]; namespaces: string[] } }[] } };
const policy = (name: string) => objects(`policies/${name}.yaml`)[0] as { metadata: { annotations: Record<string, string> }; spec: { failurePolicy: string; rules: Rule[] } & Record<string, unknown> };

it('the library (src/) never imports the app (policies/): the CLI gets the bundle from policies/cli.ts', () => {
  const sources = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  const importers = sources.filter((file) => /from '(\.\.\/)+policies\//.test(readFileSync(join(root, 'src', file), 'utf8')));
  expect(sources.length).toBeGreaterThan(10);
  expect(importers).toEqual([]);
});

describe('dist/', () => {
  it('is what `npm run synth` writes from policies/config.yaml (commit a fresh synth)', () => {
    expect(readTree(join(root, 'dist'))).toEqual(shipped);
  });

  it('matches the snapshot', () => {
    expect(Object.fromEntries(shipped)).toMatchSnapshot();
  });

  it('has a folder per component, each with a kustomization, and a root kustomization of the applied ones', () => {
    const folders = new Set([...shipped.keys()].filter((p) => p.includes('/')).map((p) => p.split('/')[0]));
    for (const folder of folders) {
      const kustomization = objectsIn(shipped, `${folder}/kustomization.yaml`)[0];
      const inFolder = [...shipped.keys()].filter((p) => p.startsWith(`${folder}/`) && !p.endsWith('kustomization.yaml'));
      expect(kustomization.resources.map((r: string) => `${folder}/${r}`).sort()).toEqual(inFolder.sort());
    }
    expect(objectsIn(shipped, 'kustomization.yaml')[0].resources).toEqual(['namespaces', 'kueue', 'rbac', 'policies', 'guard']);
    expect(folders).toContain('samples');
  });
});

describe('the steps of the flow', () => {
  it('are one ClusterPolicy each, named after the step, with the catalogue annotations', () => {
    for (const { name } of gatePolicies(defaultConfig())) {
      const p = policy(name);
      for (const key of ['title', 'category', 'subject', 'description', 'minversion']) {
        expect(p.metadata.annotations[`policies.kyverno.io/${key}`], `${name} ${key}`).toBeTruthy();
      }
    }
  });

  it('are rendered in the configured dialect: with cel, the admission steps are CEL policies that fail closed, a status step on its own trigger or one that names its trigger back two that fail open, generate-workload two GeneratingPolicies; no ClusterPolicy is left', () => {
    const kinds = (dialect: string) => {
      const files = renderFiles(buildBundle(parseConfig({ ...defaultConfigObject(), dialect }, 'c.yaml')), APPLIED_COMPONENTS);
      type Policy = { apiVersion: string; kind: string; metadata: { name: string }; spec: any };
      return Object.fromEntries(
        gatePolicies(defaultConfig()).flatMap((p) => YAML.parseAllDocuments(files.get(`policies/${p.name}.yaml`)!).map((d) => [(d.toJS() as Policy).metadata.name, d.toJS() as Policy])),
      ) as Record<string, Policy>;
    };
    const cel = kinds('cel');
    expect(Object.entries(cel).map(([name, p]) => `${name}: ${p.apiVersion} ${p.kind} ${p.spec.validationActions ?? ''}`)).toEqual([
      'mutate-pipelinerun: policies.kyverno.io/v1 MutatingPolicy ',
      'validate-pipelinerun: policies.kyverno.io/v1 ValidatingPolicy Deny',
      // A policy denies or warns: the rule that only warns has its own.
      'validate-pipelinerun-known-priority: policies.kyverno.io/v1 ValidatingPolicy Warn',
      'generate-workload: policies.kyverno.io/v1 GeneratingPolicy ',
      'generate-workload-reapply: policies.kyverno.io/v1 GeneratingPolicy ',
      'admit-customrun: policies.kyverno.io/v1 MutatingPolicy ',
      'admit-customrun-reapply: policies.kyverno.io/v1 MutatingPolicy ',
      'cancel-customrun: policies.kyverno.io/v1 MutatingPolicy ',
      'cancel-customrun-reapply: policies.kyverno.io/v1 MutatingPolicy ',
      'admit-pipelinerun: policies.kyverno.io/v1 MutatingPolicy ',
      'admit-pipelinerun-reapply: policies.kyverno.io/v1 MutatingPolicy ',
      'ready-workload: policies.kyverno.io/v1 MutatingPolicy ',
      'ready-workload-reapply: policies.kyverno.io/v1 MutatingPolicy ',
      'release-workload: policies.kyverno.io/v1 MutatingPolicy ',
      'release-workload-reapply: policies.kyverno.io/v1 MutatingPolicy ',
      'evict-pipelinerun: policies.kyverno.io/v1 MutatingPolicy ',
      'evict-pipelinerun-reapply: policies.kyverno.io/v1 MutatingPolicy ',
      'requeue-workload: policies.kyverno.io/v1 MutatingPolicy ',
      'requeue-workload-reapply: policies.kyverno.io/v1 MutatingPolicy ',
    ]);
    for (const name of ['mutate-pipelinerun', 'validate-pipelinerun', 'validate-pipelinerun-known-priority']) expect(cel[name]!.spec.failurePolicy, name).toBe('Fail');
    expect(cel['validate-pipelinerun']!.spec.validations.map((v: { expression: string }) => v.expression.split('\n')[0])).toEqual(['// known-queue', '// request-quantities', '// covered-requests', '// max-execution-time']);
    // Every rule of the model, in its order, one mutation each.
    expect(cel['mutate-pipelinerun']!.spec.mutations.map((m: { jsonPatch: { expression: string } }) => m.jsonPatch.expression.split('\n')[0])).toEqual(
      policy('mutate-pipelinerun').spec.rules.map((r) => `// ${r.name}`),
    );
    // The same requests reach Kyverno in both dialects.
    expect(cel['mutate-pipelinerun']!.spec.matchConditions).toEqual((policy('mutate-pipelinerun').spec.webhookConfiguration as { matchConditions: unknown }).matchConditions);
    // A status step: on each event (its webhook passes what the ClusterPolicy's does, but for
    // Kyverno's re-apply), and at each re-apply (no webhook); the same mutations, fail open.
    const [onEvent, onReapply] = [cel['cancel-customrun']!, cel['cancel-customrun-reapply']!];
    expect([onEvent.spec.evaluation, onReapply.spec.evaluation].map((e) => `${e.admission.enabled} ${e.mutateExisting.enabled}`)).toEqual(['true true', 'false true']);
    expect([onEvent.spec.failurePolicy, onReapply.spec.failurePolicy]).toEqual(['Ignore', 'Ignore']);
    expect(onReapply.spec.mutations).toEqual(onEvent.spec.mutations);
    // Kyverno makes an UpdateRequest for each object the event policy's constraints select when its background controller starts: the gate's only.
    expect(onEvent.spec.matchConstraints.objectSelector).toEqual({ matchExpressions: [{ key: 'tekton.dev/pipelineTask', operator: 'In', values: ['kueue-gate'] }] });
    expect(onEvent.spec.mutations.map((m: { jsonPatch: { expression: string } }) => m.jsonPatch.expression.split('\n')[0])).toEqual(policy('cancel-customrun').spec.rules.map((r) => `// ${r.name}`));
    const clusterPolicyConditions = (policy('cancel-customrun').spec.webhookConfiguration as { matchConditions: { expression: string }[] }).matchConditions;
    expect(onReapply.spec.targetMatchConditions[0].expression).toBe(clusterPolicyConditions[0]!.expression.replace('request.operation in ["UPDATE",""]', 'request.operation in ["UPDATE"]'));
    // Kyverno tests them again on its read of the object, which may not have the update yet: the mutations decide there.
    expect(onEvent.spec.matchConditions[0].expression).toBe(`oldObject == null || ${onReapply.spec.targetMatchConditions[0].expression}`);
    // Each rule acts on the update the admission request holds when Kyverno's read has the version it replaced, and writes the status it acted on.
    for (const { jsonPatch } of onEvent.spec.mutations as { jsonPatch: { expression: string } }[]) {
      expect(jsonPatch.expression.split('\n')[1]).toBe(`cel.bind(object, request.?oldObject.?metadata.?resourceVersion.orValue('') == object.metadata.?resourceVersion.orValue('-') ? request.object : object,`);
      expect(jsonPatch.expression).toContain('[JSONPatch{op: "add", path: "/status", value: object.?status.orValue({})}] + ');
    }
    expect(onEvent.spec.targetMatchConstraints.expression).toContain('resource.Get("tekton.dev/v1beta1", "customruns", object.metadata.namespace, object.metadata.name)');
    expect(onReapply.spec.targetMatchConstraints).toEqual({
      objectSelector: { matchExpressions: [{ key: 'tekton.dev/pipelineTask', operator: 'In', values: ['kueue-gate'] }] },
      resourceRules: [expect.objectContaining({ resources: ['customruns/status'] })],
    });
    // A step on another object: the event's target is the one its trigger names; the re-apply lists
    // the targets still to be set, by their labels, and each reads its trigger back.
    const [admitOnEvent, admitOnReapply] = [cel['admit-customrun']!, cel['admit-customrun-reapply']!];
    expect(admitOnEvent.spec.targetMatchConstraints.expression).toBe(
      `cel.bind(name, object.metadata.?ownerReferences.orValue([]).filter(r, has(r.kind) && r.kind == "CustomRun").map(r, r.name)[?0].orValue(''), name == '' ? {"items": dyn([])} : resource.Get("tekton.dev/v1beta1", "customruns", object.metadata.namespace, name))`,
    );
    expect(admitOnReapply.spec.targetMatchConstraints).toEqual({
      objectSelector: { matchExpressions: [{ key: 'tekton.dev/pipelineTask', operator: 'In', values: ['kueue-gate'] }] },
      resourceRules: [expect.objectContaining({ resources: ['customruns/status'] })],
    });
    const gateUnset = '(((has(object.metadata.labels) && "tekton.dev/pipelineTask" in object.metadata.labels) && object.metadata.labels["tekton.dev/pipelineTask"] == "kueue-gate") && !(has(object.status) && has(object.status.conditions) && object.status.conditions.exists(c, has(c.type) && c.type == "Succeeded" && has(c.status) && c.status in ["True","False"])))';
    expect(admitOnReapply.spec.targetMatchConditions).toEqual([{ name: 'target-to-change', expression: gateUnset }]);
    expect(admitOnReapply.spec.mutations).toEqual(admitOnEvent.spec.mutations);
    const [admitted] = admitOnEvent.spec.mutations as { jsonPatch: { expression: string } }[];
    // The Workload is read back only for a target the step would still change.
    expect(admitted!.jsonPatch.expression.split('\n').slice(0, 2)).toEqual([
      '// set-customrun-succeeded',
      `cel.bind(trigger, ${gateUnset} ? cel.bind(read, cel.bind(name, object.metadata.name, name == '' ? null : dyn(resource.Get("kueue.x-k8s.io/v1beta2", "workloads", object.metadata.namespace, name))), read == null ? null : request.?oldObject.?metadata.?resourceVersion.orValue('') == read.metadata.?resourceVersion.orValue('-') ? request.object : read) : null,`,
    ]);
    // The Workload is still admitted, not evicted nor finished, as the ClusterPolicy reads it again.
    for (const type of ['Admitted', 'Evicted', 'Finished']) expect(admitted!.jsonPatch.expression).toContain(`c.type == "${type}"`);
    // A step on a run's spec.status writes the run, not its status; the re-apply lists the gated runs of every step.
    for (const name of ['admit-pipelinerun', 'evict-pipelinerun']) {
      const [onEvent, onReapply] = [cel[name]!, cel[`${name}-reapply`]!];
      expect(onEvent.spec.targetMatchConstraints.resourceRules, name).toEqual([expect.objectContaining({ resources: ['pipelineruns'] })]);
      expect(onReapply.spec.mutations, name).toEqual(onEvent.spec.mutations);
      expect(onEvent.spec.mutations.map((m: { jsonPatch: { expression: string } }) => m.jsonPatch.expression.split('\n')[0]), name).toEqual(policy(name).spec.rules.map((r) => `// ${r.name}`));
    }
    expect(cel['admit-pipelinerun']!.spec.targetMatchConstraints.expression).toContain('r.kind == "PipelineRun"');
    expect(cel['admit-pipelinerun-reapply']!.spec.targetMatchConstraints.objectSelector).toEqual({ matchExpressions: [{ key: GATED_LABEL, operator: 'In', values: ['pending'] }] });
    // Released only if the gate made it pending and it still is; stopped only if it runs, unfinished, and its gate let it go.
    expect(cel['admit-pipelinerun']!.spec.mutations[0].jsonPatch.expression).toMatch(/pending-set-by-gate.*"PipelineRunPending"\) \? cel\.bind\(read,[^]*\[JSONPatch\{op: "remove", path: "\/spec\/status"\}\] : \[\]\)$/);
    expect(cel['evict-pipelinerun-reapply']!.spec.targetMatchConstraints.objectSelector).toEqual({ matchExpressions: [{ key: GATED_LABEL, operator: 'In', values: ['customrun', 'pending'] }] });
    const [stopCustomRun, stopPending] = (cel['evict-pipelinerun']!.spec.mutations as { jsonPatch: { expression: string } }[]).map((m) => m.jsonPatch.expression);
    expect(stopCustomRun).toContain('resource.Get("tekton.dev/v1beta1", "customruns", object.metadata.namespace, name)), read != null && (has(read.status) && has(read.status.conditions) && read.status.conditions.exists(c, has(c.type) && c.type == "Succeeded" && has(c.status) && c.status in ["True"]))');
    expect(stopPending).toContain(`read != null && !((has(read.spec.status) ? read.spec.status : '') == "PipelineRunPending")`);
    for (const stop of [stopCustomRun, stopPending]) expect(stop).toMatch(/\[JSONPatch\{op: "add", path: "\/spec\/status", value: "StoppedRunFinally"\}\] : \[\]\)$/);
    // Steps that name their target differently (the gate's child, or the run's own name) tell their triggers apart by label.
    expect(cel['ready-workload']!.spec.targetMatchConstraints.expression).toMatch(/^cel\.bind\(name, \(\(\(has\(object\.metadata\.labels\).*== "customrun"\) \? object\.\?status\.\?childReferences.* : \(\(\(has.*== "pending"\) \? object\.metadata\.name : ''\)\), name == ''/);
    expect(cel['ready-workload-reapply']!.spec.targetMatchConstraints.objectSelector).toEqual({ matchExpressions: [{ key: GATED_LABEL, operator: 'In', values: ['customrun', 'pending'] }] });
    // Steps on a run's Workload and on the Workload itself, which reads its run: a Workload is its own target, a run names its
    // own; each step on requests of its trigger's kind; the re-apply lists the Workloads either would finish.
    const [release, releaseReapply] = [cel['release-workload']!, cel['release-workload-reapply']!];
    expect(release.spec.matchConstraints.resourceRules.map((r: { resources: string[] }) => r.resources)).toEqual([['pipelineruns', 'pipelineruns/status'], ['workloads', 'workloads/status']]);
    expect(release.spec.matchConditions[0].expression).toMatch(/^oldObject == null \|\| \(request\.kind\.group == "tekton\.dev" && request\.kind\.kind == "PipelineRun" && .* \|\| \(request\.kind\.group == "kueue\.x-k8s\.io" && request\.kind\.kind == "Workload" && /);
    expect(release.spec.targetMatchConstraints.expression).toMatch(/^object\.apiVersion == "kueue\.x-k8s\.io\/v1beta2" && object\.kind == "Workload" \? resource\.Get\("kueue\.x-k8s\.io\/v1beta2", "workloads", object\.metadata\.namespace, object\.metadata\.name\) : cel\.bind\(name, /);
    expect(releaseReapply.spec.targetMatchConstraints.objectSelector).toEqual({ matchExpressions: [{ key: GATED_LABEL, operator: 'In', values: ['customrun', 'pending'] }] });
    expect(releaseReapply.spec.targetMatchConditions.map((c: { name: string }) => c.name)).toEqual(['target-to-change']);
    expect(release.spec.mutations.map((m: { jsonPatch: { expression: string } }) => m.jsonPatch.expression.split('\n')[0])).toEqual(policy('release-workload').spec.rules.map((r) => `// ${r.name}`));
    // Seen from the Workload: finished when its run, read now, has ended; the reason and time are the run's.
    const ofEndedRun = release.spec.mutations[1].jsonPatch.expression as string;
    expect(ofEndedRun.split('\n')[2]).toBe(`cel.bind(read, cel.bind(name, object.metadata.?labels.orValue({})[?"tekton.dev/pipelineRun"].orValue(''), name == '' ? null : dyn(resource.Get("tekton.dev/v1", "pipelineruns", object.metadata.namespace, name))),`);
    expect(ofEndedRun).toContain('[?read.?status.?conditions.orValue([]).filter(c, has(c.type) && c.type == "Succeeded")[?0].?status.orValue(\'\')]');
    expect(ofEndedRun).toContain('"lastTransitionTime": string(read.?status.?completionTime.orValue(');
    // Its objects are the triggers' of every step: the Workloads of both mechanisms.
    expect(cel['requeue-workload-reapply']!.spec.targetMatchConstraints.objectSelector).toEqual({ matchExpressions: [{ key: GATED_LABEL, operator: 'In', values: ['customrun', 'pending'] }] });
    // generate-workload: a generation per rule of the model, on its triggers' requests (status updates of a run too), making
    // the Workload only where there is none (Kyverno rewrites one it generated for the same trigger); the steps on a waiting
    // run again at each re-apply, with no webhook, for each managed namespace, from the namespace's runs and Workloads
    // listed once, each run's owner read only for a run whose Workload is missing.
    const [generate, generateReapply] = [cel['generate-workload']!, cel['generate-workload-reapply']!];
    const firstLines = (p: { spec: { generate: { expression: string }[] } }) => p.spec.generate.map((g) => g.expression.split('\n')[0]);
    expect(firstLines(generate)).toEqual(policy('generate-workload').spec.rules.map((r) => `// ${r.name}`));
    expect(generate.spec.matchConstraints.resourceRules.map((r: { resources: string[] }) => r.resources)).toEqual([['customruns'], ['pipelineruns', 'pipelineruns/status']]);
    for (const { expression } of generate.spec.generate as { expression: string }[]) {
      expect(expression).toContain('dyn(resource.Get("kueue.x-k8s.io/v1beta2", "workloads", object.metadata.namespace, owner.metadata.name)) == null ?');
    }
    expect(firstLines(generateReapply)).toEqual(['// missed-workload-for-customrun', '// missed-workload-for-pipelinerun']);
    expect([generate, generateReapply].map((p) => p.spec.evaluation)).toEqual(
      [true, false].map((events) => ({ admission: { enabled: events }, generateExisting: { enabled: !events }, synchronize: { enabled: false }, orphanDownstreamOnPolicyDelete: { enabled: true } })),
    );
    expect(generateReapply.spec.matchConstraints).toEqual({
      resourceRules: [expect.objectContaining({ resources: ['namespaces'], operations: ['CREATE'] })],
      objectSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['ci-team-a', 'ci-team-b'] }] },
    });
    const [reapplyCustomRun] = (generateReapply.spec.generate as { expression: string }[]).map((g) => g.expression);
    expect(reapplyCustomRun!.split('\n')[1]).toMatch(/^generator\.Apply\(variables\.namespace, resource\.List\("tekton\.dev\/v1", "pipelineruns", variables\.namespace, \{"tekton-kueue-policies\.dev\/gate":"customrun"\}\).*\.filter\(run, cel\.bind\(object, run, .* && !\(object\.\?status\.\?childReferences.* in variables\.workloads\)\)\)$/);
    expect(reapplyCustomRun!.split('\n')[2]).toMatch(/^\.map\(run, cel\.bind\(object, run, cel\.bind\(owner, .*resource\.Get\("tekton\.dev\/v1beta1", "customruns"/);
    expect(Object.values(kinds('clusterpolicy')).every((p) => p.kind === 'ClusterPolicy')).toBe(true);
    // The tenant guard's refusal of an ungated run names the policy as it is.
    const guard = renderFiles(buildBundle(parseConfig({ ...defaultConfigObject(), dialect: 'cel' }, 'c.yaml')), APPLIED_COMPONENTS).get('guard/tenant-guard.yaml')!;
    expect(guard).toContain('kubectl get mutatingpolicy mutate-pipelinerun');
  });

  it('of steps the CEL dialect cannot render together are refused, naming the policy and the steps, not left as ClusterPolicies', () => {
    const [mutate, validate] = gatePolicies(defaultConfig());
    expect(() => DIALECTS.cel({ ...mutate!, steps: [...mutate!.steps, ...validate!.steps] })).toThrow('mutate-pipelinerun: the CEL dialect renders no policy of steps route-run, insert-gate, hold-pending, hold-user-release, validate-run together');
  });

  it('are chosen by the strategy', () => {
    const names = (strategy: string) => gatePolicies(parseConfig({ ...defaultConfigObject(), strategy }, 'c.yaml')).map((p) => p.name);
    const after = ['ready-workload', 'release-workload', 'evict-pipelinerun', 'requeue-workload'];
    const before = ['mutate-pipelinerun', 'validate-pipelinerun', 'generate-workload'];
    expect(names('auto')).toEqual([...before, 'admit-customrun', 'cancel-customrun', 'admit-pipelinerun', ...after]);
    expect(names('customrun')).toEqual([...before, 'admit-customrun', 'cancel-customrun', ...after]);
    expect(names('pending')).toEqual([...before, 'admit-pipelinerun', ...after]);
  });

  it('fail closed on CREATE and open on status updates, which are re-applied to existing objects (but the release on a run\'s end, which its Workload backs up)', () => {
    const failurePolicy = (name: string) => (policy(name).spec.webhookConfiguration as { failurePolicy: string }).failurePolicy;
    expect(failurePolicy('mutate-pipelinerun')).toBe('Fail');
    expect(failurePolicy('validate-pipelinerun')).toBe('Fail');
    expect(failurePolicy('generate-workload')).toBe('Fail');
    for (const name of ['admit-customrun', 'cancel-customrun', 'admit-pipelinerun', 'ready-workload', 'release-workload', 'evict-pipelinerun', 'requeue-workload']) {
      expect(failurePolicy(name), name).toBe('Ignore');
      for (const rule of policy(name).spec.rules as unknown as { name: string; mutate: { mutateExistingOnPolicyUpdate?: boolean } }[]) {
        const onRunEnd = ['finish-customrun-workload', 'finish-pipelinerun-workload'].includes(rule.name);
        expect(rule.mutate.mutateExistingOnPolicyUpdate, `${name} ${rule.name}`).toBe(onRunEnd ? undefined : true);
      }
    }
  });

  it('let the API server keep from Kyverno the requests no step reacts to', () => {
    const conditions = (name: string) => (policy(name).spec.webhookConfiguration as { matchConditions: { expression: string }[] }).matchConditions;
    // Status updates of objects the gate did not label never reach Kyverno.
    expect(conditions('release-workload')[0]!.expression).toContain('object.metadata.labels["tekton-kueue-policies.dev/gate"] == "customrun"');
    // Updates of runs reach it only when a user releases a run they held.
    expect(conditions('mutate-pipelinerun')[0]!.expression).toContain('oldObject.spec.status : \'\') == "PipelineRunPending"');
    // A status step hears only the updates of an object in the state its rule acts on.
    const admit = conditions('admit-customrun')[0]!.expression;
    expect(admit).toContain('c.type == "Admitted" && has(c.status) && c.status in ["True"]');
    expect(admit).toContain('!(has(object.status) && has(object.status.conditions) && object.status.conditions.exists(c, has(c.type) && c.type == "Finished"');
    expect(conditions('requeue-workload')[0]!.expression).toContain('has(object.status.admission)');
    expect(conditions('ready-workload')[0]!.expression).toContain('!(has(c.pipelineTaskName) && c.pipelineTaskName == "kueue-gate")');
  });

  it('let a run go only on an admission that still holds: the Workload is read again when the step runs', () => {
    for (const name of ['admit-customrun', 'admit-pipelinerun']) {
      const target = (policy(name).spec.rules[0] as unknown as { mutate: { targets: { context: { apiCall?: { urlPath: string } }[] }[] } }).mutate.targets[0]!;
      expect(target.context.map((c) => c.apiCall?.urlPath).filter(Boolean), name).toEqual([
        '/apis/kueue.x-k8s.io/v1beta2/namespaces/{{ request.object.metadata.namespace }}/workloads/{{ request.object.metadata.name }}',
      ]);
    }
  });

  it('match status updates, not only the main resource', () => {
    expect(policy('release-workload').spec.rules[0]!.match.any[0]!.resources.kinds).toEqual(['tekton.dev/v1/PipelineRun', 'tekton.dev/v1/PipelineRun/status']);
    expect(policy('admit-customrun').spec.rules[0]!.match.any[0]!.resources.kinds).toContain('kueue.x-k8s.io/v1beta2/Workload/status');
  });

  it('act only in the managed namespaces', () => {
    for (const p of gatePolicies(defaultConfig())) {
      for (const s of p.steps) expect(s.trigger.namespaces).toEqual({ names: ['ci-team-a', 'ci-team-b'] });
    }
  });

  it('never rebuild a child name: the Workload is named after the CustomRun, the release reads childReferences', () => {
    const rules = (policy('generate-workload').spec as unknown as { rules: { name: string; context: { name: string }[]; generate: { name: string } }[] }).rules;
    const owner = (rule: string) => JSON.stringify(rules.find((r) => r.name === rule)!.context.find((c) => c.name === 'owner'));
    for (const rule of rules) expect(rule.generate.name, rule.name).toBe('{{ owner.name }}');
    expect(owner('workload-for-customrun')).toContain('{name: request.object.metadata.name');
    expect(owner('missed-workload-for-customrun')).toContain("customruns/{{ request.object.status.childReferences[?pipelineTaskName=='kueue-gate'].name");
    const release = JSON.stringify(policy('release-workload').spec);
    expect(release).toContain("status.childReferences[?pipelineTaskName=='kueue-gate'].name");
  });
});

describe('RBAC', () => {
  const roles = objects('rbac/kyverno-access.yaml') as { metadata: { name: string; labels: Record<string, string> }; rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }[];
  const grants = (controller: string) =>
    Object.fromEntries(roles.find((r) => r.metadata.name.endsWith(controller))!.rules.map((r) => [`${r.apiGroups[0]}/${r.resources[0]}`, r.verbs]));

  it('is aggregated to Kyverno controllers', () => {
    expect(roles.map((r) => Object.keys(r.metadata.labels).find((l) => l.startsWith('rbac.kyverno.io/')))).toEqual([
      'rbac.kyverno.io/aggregate-to-admission-controller',
      'rbac.kyverno.io/aggregate-to-background-controller',
      'rbac.kyverno.io/aggregate-to-reports-controller',
    ]);
  });

  it('lets the admission controller list the queues a run is checked against, read the run of a Workload (a ClusterPolicy reads it in its preconditions), and nothing else', () => {
    expect(grants('admission-controller')).toEqual({ 'kueue.x-k8s.io/clusterqueues': ['list'], 'kueue.x-k8s.io/localqueues': ['list'], 'tekton.dev/pipelineruns': ['get'] });
    const cel = parseConfig({ ...defaultConfigObject(), dialect: 'cel' }, 'c.yaml');
    const celGrants = requiredAccess(gatePolicies(cel), 'cel').get('admission-controller')!.map((r) => `${r.apiGroup}/${r.resource} ${r.verbs.join(',')}`);
    expect(celGrants).toEqual(['kueue.x-k8s.io/clusterqueues list', 'kueue.x-k8s.io/localqueues list']);
  });

  it('grants the background controller exactly what the steps use', () => {
    expect(grants('background-controller')).toEqual({
      'kueue.x-k8s.io/workloads': ['create', 'get', 'list', 'watch'],
      'kueue.x-k8s.io/workloads/status': ['get', 'update'],
      // list, watch: the cancelled gate CustomRuns, re-examined when the policy is (re)applied.
      'tekton.dev/customruns': ['get', 'list', 'watch'],
      'tekton.dev/customruns/status': ['get', 'update'],
      // update: clearing spec.status on admission (pending) and stopping evicted runs.
      'tekton.dev/pipelineruns': ['get', 'list', 'update', 'watch'],
    });
  });

  it('follows the strategy: no grant for a mechanism the bundle does not use', () => {
    const accessOf = (strategy: string) => {
      const config = parseConfig({ ...defaultConfigObject(), strategy }, 'c.yaml');
      return Object.fromEntries(requiredAccess(gatePolicies(config), config.dialect).get('background-controller')!.map((r) => [`${r.apiGroup}/${r.resource}`, r.verbs]));
    };
    const customRun = accessOf('customrun');
    expect(customRun['tekton.dev/pipelineruns']).toEqual(['get', 'list', 'update', 'watch']); // stopping evicted runs
    expect(customRun['tekton.dev/customruns/status']).toEqual(['get', 'update']);
    const pending = accessOf('pending');
    expect(Object.keys(pending).filter((k) => k.includes('customruns'))).toEqual([]);
  });

  it('has no wildcard', () => {
    expect(readFileSync(join(root, 'dist', 'rbac', 'kyverno-access.yaml'), 'utf8')).not.toContain('*');
  });
});

describe('tenant guard', () => {
  const guard = objects('guard/tenant-guard.yaml') as { kind: string; metadata: { name: string }; spec: Record<string, any> }[];
  const policies = guard.filter((o) => o.kind === 'ValidatingAdmissionPolicy');

  it('is ValidatingAdmissionPolicies the API server evaluates itself, failing closed, each bound to the managed namespaces', () => {
    expect(policies.map((p) => p.metadata.name)).toEqual(['tekton-kueue-policies-guard-pipelineruns', 'tekton-kueue-policies-guard-children', 'tekton-kueue-policies-guard-gate-status']);
    for (const policy of policies) {
      expect(policy.spec.failurePolicy, policy.metadata.name).toBe('Fail');
      const binding = guard.find((o) => o.kind === 'ValidatingAdmissionPolicyBinding' && o.spec.policyName === policy.metadata.name)!;
      expect(binding.spec.validationActions).toEqual(['Deny']);
      expect(binding.spec.matchResources.namespaceSelector.matchExpressions[0].values).toEqual(['ci-team-a', 'ci-team-b']);
    }
  });

  it('trusts the configured identities only: the gate for runs and gate statuses, Tekton for TaskRuns and CustomRuns', () => {
    const trusted = (name: string) => policies.find((p) => p.metadata.name.endsWith(name))!.spec.matchConditions[0].expression;
    expect(trusted('pipelineruns')).toBe('!(request.userInfo.username in ["system:serviceaccount:kyverno:kyverno-background-controller"])');
    expect(trusted('children')).toBe('!(request.userInfo.username in ["system:serviceaccount:tekton-pipelines:tekton-pipelines-controller"])');
    expect(trusted('gate-status')).toBe(trusted('pipelineruns'));
  });

  it('names each refusal after its rule', () => {
    const names = policies.flatMap((p) => p.spec.validations.map((v: { messageExpression: string }) => /\((.*?)\): /.exec(v.messageExpression)![1]));
    expect(names).toEqual(['opt-out-granted', 'gated-at-creation', 'no-stop-at-creation', 'gate-label-kept', 'hold-kept', 'released-by-gate', 'gate-task-kept', 'children-by-tekton', 'gate-opened-by-gate']);
  });

  it('grants the opt-out to nobody by default, and to the configured subjects in every managed namespace', () => {
    expect(objects('rbac/opt-out.yaml').map((o) => o.kind)).toEqual(['ClusterRole']);
    const config = parseConfig({ ...defaultConfigObject(), optOut: { subjects: [{ kind: 'Group', name: 'platform-admins' }, { kind: 'ServiceAccount', name: 'release-bot', namespace: 'ci-team-a' }] } }, 'c.yaml');
    const granted = renderFiles(buildBundle(config), APPLIED_COMPONENTS).get('rbac/opt-out.yaml')!;
    const binding = YAML.parseAllDocuments(granted).map((d) => d.toJS()).find((o) => o.kind === 'ClusterRoleBinding');
    expect(binding.roleRef.name).toBe('tekton-kueue-policies:opt-out');
    expect(binding.subjects).toEqual([
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'platform-admins' },
      { apiGroup: '', kind: 'ServiceAccount', name: 'release-bot', namespace: 'ci-team-a' },
    ]);
  });
});

describe('Kueue objects', () => {
  const queues = objects('kueue/queues.yaml') as { kind: string; metadata: { name: string; namespace?: string }; spec: Record<string, unknown> }[];

  it('has a ClusterQueue quota on tekton.dev/pipelineruns covering every default request', () => {
    const cq = queues.find((o) => o.kind === 'ClusterQueue' && o.metadata.name === 'pipelines')!;
    const group = (cq.spec.resourceGroups as { coveredResources: string[]; flavors: { resources: { name: string; nominalQuota: unknown }[] }[] }[])[0]!;
    expect(group.coveredResources).toEqual(['cpu', 'memory', 'tekton.dev/pipelineruns']);
    expect(group.flavors[0]!.resources.find((r) => r.name === 'tekton.dev/pipelineruns')!.nominalQuota).toBe('2');
  });

  it('lets a high-priority run preempt a low one where configured', () => {
    const preemption = (name: string) => queues.find((o) => o.kind === 'ClusterQueue' && o.metadata.name === name)!.spec.preemption;
    expect(preemption('pipelines')).toEqual({ withinClusterQueue: 'LowerPriority' });
    expect(preemption('releases')).toEqual({ withinClusterQueue: 'Never' });
  });

  it('has a LocalQueue per namespace queue', () => {
    expect(queues.filter((o) => o.kind === 'LocalQueue').map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual([
      'ci-team-a/pipelines',
      'ci-team-a/releases',
      'ci-team-b/pipelines',
    ]);
  });

  it('has the priority classes', () => {
    expect(objects('kueue/priority-classes.yaml').map((o) => [o.metadata.name, o.value])).toEqual([['high', 1000], ['low', 100]]);
  });
});

describe('samples', () => {
  it('are inline-spec runs, one per queue and priority, steps with explicit scripts', () => {
    const runs = [...files.keys()].filter((p) => p.startsWith('samples/') && !p.endsWith('kustomization.yaml')).sort().flatMap(objects);
    expect(runs.map((r) => `${r.metadata.namespace}/${r.metadata.name}`)).toEqual([
      'ci-team-a/sample-pipelines-high',
      'ci-team-a/sample-pipelines-low',
      'ci-team-a/sample-releases-high',
      'ci-team-a/sample-releases-low',
      'ci-team-b/sample-pipelines-high',
      'ci-team-b/sample-pipelines-low',
    ]);
    for (const run of runs) {
      expect(run.spec.pipelineSpec.tasks.length).toBeGreaterThan(0);
      for (const task of [...run.spec.pipelineSpec.tasks, ...run.spec.pipelineSpec.finally]) {
        for (const step of task.taskSpec.steps) expect(step.script).toMatch(/^#!\/bin\/sh/);
      }
    }
  });
});

describe('tenant namespaces (chosen by label)', () => {
  const TENANT = { 'ci.example.com/tenant': 'true' };
  const configOf = (dialect: string) =>
    parseConfig(
      {
        ...defaultConfigObject(),
        dialect,
        tenantNamespaces: { namespaceSelector: { matchLabels: TENANT }, queues: [{ name: 'pipelines', clusterQueue: 'pipelines' }, { name: 'releases', clusterQueue: 'releases' }] },
      },
      'tenants.yaml',
    );
  const config = configOf('clusterpolicy');
  const tenantFiles = renderFiles(buildBundle(config), APPLIED_COMPONENTS);
  const docs = (path: string) => objectsIn(tenantFiles, path);

  it('select every managed namespace by the labels, and the listed namespaces carry them', () => {
    const policies = gatePolicies(config);
    expect(policies[0]!.name).toBe('generate-localqueues');
    for (const p of policies.slice(1)) for (const s of p.steps) expect(s.trigger.namespaces, `${p.name} ${s.rule}`).toEqual({ labels: TENANT });
    expect(docs('namespaces/namespaces.yaml').map((ns) => ns.metadata.labels)).toEqual([
      { 'app.kubernetes.io/part-of': 'tekton-kueue-policies', ...TENANT },
      { 'app.kubernetes.io/part-of': 'tekton-kueue-policies', ...TENANT },
    ]);
    const rule = docs('policies/mutate-pipelinerun.yaml')[0].spec.rules[0];
    expect(rule.match.any[0].resources.namespaceSelector).toEqual({ matchLabels: TENANT });
    expect(rule.match.any[0].resources.namespaces).toBeUndefined();
    // The API server cannot see a namespace's labels in a match condition; Kyverno tests the selector.
    expect(docs('policies/mutate-pipelinerun.yaml')[0].spec.webhookConfiguration.matchConditions[0].expression).not.toContain('request.namespace');
  });

  it('bind the tenant guard and the ClusterQueues by the labels', () => {
    const guard = docs('guard/tenant-guard.yaml').filter((o) => o.kind === 'ValidatingAdmissionPolicyBinding');
    expect(guard.map((b) => b.spec.matchResources.namespaceSelector)).toEqual(guard.map(() => ({ matchLabels: TENANT })));
    const queues = docs('kueue/queues.yaml');
    expect(queues.filter((o) => o.kind === 'ClusterQueue').map((cq) => cq.spec.namespaceSelector)).toEqual([{ matchLabels: TENANT }, { matchLabels: TENANT }]);
    // The listed namespaces' LocalQueues are the bundle's; the tenants' are Kyverno's to make.
    expect(queues.filter((o) => o.kind === 'LocalQueue').map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual(['ci-team-a/pipelines', 'ci-team-a/releases', 'ci-team-b/pipelines']);
  });

  it('give a labelled namespace its LocalQueues, also one labelled before, and take them back with the label; the bundle\'s own namespaces keep theirs', () => {
    const localQueues = docs('policies/generate-localqueues.yaml')[0];
    expect(localQueues.spec.webhookConfiguration.failurePolicy).toBe('Fail');
    expect(localQueues.spec.rules.map((r: any) => [r.name, r.generate.name, r.generate.data.spec.clusterQueue, r.generate.synchronize, r.generate.generateExisting, r.generate.orphanDownstreamOnPolicyDelete])).toEqual([
      ['localqueue-pipelines', 'pipelines', 'pipelines', true, true, true],
      ['localqueue-releases', 'releases', 'releases', true, true, true],
    ]);
    const rule = localQueues.spec.rules[0];
    expect(rule.generate.namespace).toBe('{{ request.object.metadata.name }}');
    expect(rule.match.any[0].resources).toEqual({ kinds: ['v1/Namespace'], selector: { matchLabels: TENANT } });
    expect(rule.exclude.any[0].resources.selector.matchLabels).toEqual({ 'app.kubernetes.io/part-of': 'tekton-kueue-policies' });
    // A namespace losing the label must reach Kyverno, which then deletes its LocalQueues.
    expect(localQueues.spec.webhookConfiguration.matchConditions[0].expression).toContain("request.operation == 'UPDATE' && ((has(oldObject.metadata.labels)");
    const background = docs('rbac/kyverno-access.yaml').find((r) => r.metadata.name.endsWith('background-controller'));
    expect(background.rules.find((r: any) => r.resources[0] === 'localqueues').verbs).toEqual(['create', 'delete', 'get', 'list', 'update']);
  });

  it('are given their LocalQueues by a GeneratingPolicy in the CEL dialect, which Kyverno watches them for', () => {
    const cel = renderFiles(buildBundle(configOf('cel')), APPLIED_COMPONENTS);
    const policy = objectsIn(cel, 'policies/generate-localqueues.yaml');
    expect(policy.map((p) => `${p.apiVersion} ${p.kind}`)).toEqual(['policies.kyverno.io/v1 GeneratingPolicy']);
    const { spec } = policy[0];
    expect(spec.evaluation).toEqual({ synchronize: { enabled: true }, generateExisting: { enabled: true }, orphanDownstreamOnPolicyDelete: { enabled: true } });
    expect(policy[0].metadata.annotations['policies.kyverno.io/minversion']).toBe('1.19.1');
    // Namespaces are listed by the selector at each re-apply; the bundle's own keep their listed queues.
    expect(spec.matchConstraints.objectSelector).toEqual({ matchLabels: TENANT, matchExpressions: [{ key: 'app.kubernetes.io/part-of', operator: 'NotIn', values: ['tekton-kueue-policies'] }] });
    expect(spec.matchConditions.map((c: any) => c.name)).toEqual(['localqueue']);
    expect(spec.generate.map((g: any) => g.expression.split('\n')[0])).toEqual(['// localqueue-pipelines', '// localqueue-releases']);
    expect(spec.generate[0].expression).toContain('generator.Apply(object.metadata.name, [{"apiVersion": dyn("kueue.x-k8s.io/v1beta2"), "kind": dyn("LocalQueue"), "metadata": dyn({"name": dyn("pipelines")}), "spec": dyn({"clusterQueue": dyn("pipelines")})}])');
    const access = objectsIn(cel, 'rbac/kyverno-access.yaml');
    const rulesOf = (controller: string) => access.find((r) => r.metadata.name.endsWith(controller)).rules;
    expect(rulesOf('background-controller').find((r: any) => r.resources[0] === 'localqueues').verbs).toEqual(['create', 'delete', 'get', 'list', 'update', 'watch']);
    expect(rulesOf('admission-controller').find((r: any) => r.resources[0] === 'localqueues').verbs).toEqual(['list']);
  });

  it('size a run of a namespace not listed by the tenant defaults, in both dialects', () => {
    const context = docs('policies/generate-workload.yaml')[0].spec.rules[0].context;
    expect(context.find((c: any) => c.name === 'queueName').variable.jmesPath).toMatch(/\|\| lookup\(defaultQueues, request.object.metadata.namespace\) \|\| 'pipelines'$/);
    expect(context.find((c: any) => c.name === 'tenantQueueDefaults').variable.value).toEqual({ pipelines: { cpu: '500m', memory: '512Mi' }, releases: { cpu: '2', memory: '4Gi' } });
    const cel = renderFiles(buildBundle(configOf('cel')), APPLIED_COMPONENTS);
    const validate = YAML.parse(cel.get('policies/validate-pipelinerun.yaml')!.split('\n---\n')[0]!);
    expect(validate.kind).toBe('ValidatingPolicy');
    expect(validate.spec.matchConstraints.namespaceSelector).toEqual({ matchLabels: TENANT });
    expect(validate.spec.variables.find((v: any) => v.name === 'queueName').expression).toContain(".orValue(\"pipelines\")");
    expect(validate.spec.variables.find((v: any) => v.name === 'requested').expression).toContain('.or({"pipelines":["cpu","memory"],"releases":["cpu","memory"]}[?variables.queueName])');
  });
});

describe('MultiKueue', () => {
  /** The objects of a file of the bundle of an example config, in the ClusterPolicy dialect (the CEL one's are checked beside). */
  const bundleOf = (role: 'manager' | 'worker') => {
    const rendered = renderFiles(buildBundle(loadConfig(exampleConfig(`multikueue-${role}.yaml`, 'clusterpolicy'))), APPLIED_COMPONENTS);
    return (path: string) => objectsIn(rendered, path);
  };
  const managerDocs = bundleOf('manager');
  const workerDocs = bundleOf('worker');

  it('a manager dispatches through an AdmissionCheck of MultiKueue that its dispatching ClusterQueues require, to the workers of the config', () => {
    const docs = managerDocs;
    const objects = docs('kueue/multikueue.yaml').map((o) => `${o.kind} ${o.metadata.name}`);
    expect(objects).toEqual(['MultiKueueCluster worker-1', 'MultiKueueCluster worker-2', 'MultiKueueConfig tekton-kueue-policies-multikueue', 'AdmissionCheck tekton-kueue-policies-multikueue']);
    const [cluster] = docs('kueue/multikueue.yaml');
    expect(cluster.spec.clusterSource.kubeConfig).toEqual({ locationType: 'Secret', location: 'worker-1-kubeconfig' });
    const check = docs('kueue/multikueue.yaml')[3];
    expect(check.spec).toEqual({ controllerName: 'kueue.x-k8s.io/multikueue', parameters: { apiGroup: 'kueue.x-k8s.io', kind: 'MultiKueueConfig', name: 'tekton-kueue-policies-multikueue' } });
    const checks = docs('kueue/queues.yaml').filter((o) => o.kind === 'ClusterQueue').map((cq) => [cq.metadata.name, cq.spec.admissionChecksStrategy?.admissionChecks]);
    expect(checks).toEqual([['shared', [{ name: 'tekton-kueue-policies-multikueue' }]], ['nightly', undefined]]);
  });

  it('a manager marks the runs of its dispatching queues, and counts them as held when Kueue evicts their Workloads (they never run there)', () => {
    const docs = managerDocs;
    const rule = docs('policies/mutate-pipelinerun.yaml')[0].spec.rules.find((r: any) => r.name === 'dispatch-to-worker');
    expect(rule.preconditions.all[1].value).toEqual(['team-a-ci/pipelines']);
    expect(rule.mutate.patchesJson6902).toContain('path: /spec/managedBy');
    const held = (policy: string, name: string) => docs(`policies/${policy}.yaml`)[0].spec.rules[0].mutate.targets[0].context.find((c: any) => c.name === name);
    expect(held('requeue-workload', 'runStatus').apiCall.jmesPath).toBe("spec.managedBy == 'kueue.x-k8s.io/multikueue' && 'PipelineRunPending' || spec.status || ''");
    expect(held('evict-pipelinerun', 'holdState').variable.jmesPath).toMatch(/^\(target\.spec\.managedBy == 'kueue\.x-k8s\.io\/multikueue' && 'PipelineRunPending' \|\| target\.spec\.status/);
  });

  it("a manager's run whose Workload waits for MultiKueue shows Tekton's pending condition, and Kyverno may write it", () => {
    const rules = (docs: typeof managerDocs) => docs('policies/admit-pipelinerun.yaml')[0].spec.rules;
    const pending = rules(managerDocs).find((r: any) => r.name === 'show-dispatched-run-pending');
    expect(pending.match.any[0].resources.kinds).toEqual(['kueue.x-k8s.io/v1beta2/Workload', 'kueue.x-k8s.io/v1beta2/Workload/status']);
    expect(pending.preconditions.all[1].key).toBe("{{ length(request.object.status.admissionChecks[?name=='tekton-kueue-policies-multikueue'] || `[]`) }}");
    const [target] = pending.mutate.targets;
    expect(target.kind).toBe('PipelineRun/status');
    expect(target.preconditions.all.map((p: any) => p.message)).toEqual([
      'the Workload is no longer QuotaReserved=True|False',
      'the Workload became Admitted=True meanwhile',
      'the Workload became Finished=True meanwhile',
      'Succeeded is set already',
    ]);
    expect(target.preconditions.all[3].value).toEqual(['True', 'False', 'Unknown']);
    expect(managerDocs('rbac/kyverno-access.yaml').some((o) => o.rules?.some((r: any) => r.resources.includes('pipelineruns/status') && r.verbs.includes('update')))).toBe(true);
    expect(rules(workerDocs).map((r: any) => r.name)).toEqual(['release-pending-run']);
  });

  it("a manager's admit-pipelinerun in CEL is a pair of policies per route Kyverno writes through: the run (release), its status (shown pending)", () => {
    const config = loadConfig(join(root, 'policies', 'examples', 'multikueue-manager.yaml'));
    const cel = objectsIn(renderFiles(buildBundle({ ...config, dialect: 'cel' }), APPLIED_COMPONENTS), 'policies/admit-pipelinerun.yaml');
    const writes = (p: any) => p.spec.targetMatchConstraints.resourceRules[0].resources.join();
    const rules = (p: any) => p.spec.mutations.map((m: any) => m.jsonPatch.expression.split('\n')[0]).join();
    expect(cel.map((p) => `${p.kind} ${p.metadata.name}: ${writes(p)} ${rules(p)}`)).toEqual([
      'MutatingPolicy admit-pipelinerun: pipelineruns // release-pending-run',
      'MutatingPolicy admit-pipelinerun-reapply: pipelineruns // release-pending-run',
      'MutatingPolicy admit-pipelinerun-status: pipelineruns/status // show-dispatched-run-pending',
      'MutatingPolicy admit-pipelinerun-status-reapply: pipelineruns/status // show-dispatched-run-pending',
    ]);
    // Each on the requests of its own steps: the MultiKueue check's Workloads for the one that shows them pending.
    expect(cel[2]!.spec.matchConditions[0].expression).toContain('c.name == "tekton-kueue-policies-multikueue"');
    expect(cel[0]!.spec.matchConditions[0].expression).not.toContain('tekton-kueue-policies-multikueue');
  });

  it("a worker gives the manager's ServiceAccount what MultiKueue does there, trusts it with runs, and keeps MultiKueue's label its own", () => {
    const docs = workerDocs;
    const [account, role, binding] = docs('rbac/multikueue-manager.yaml');
    expect(account.metadata).toMatchObject({ name: 'tekton-kueue-policies-multikueue', namespace: 'kueue-system' });
    expect(role.rules.map((r: any) => `${r.apiGroups[0]}/${r.resources[0]}: ${r.verbs.join(',')}`)).toEqual([
      'kueue.x-k8s.io/workloads: create,delete,get,list,watch,patch,update',
      'kueue.x-k8s.io/workloads/status: get,patch,update',
      'tekton.dev/pipelineruns: create,delete,get,list,watch',
      'tekton.dev/pipelineruns/status: get',
      'batch/jobs: list,watch',
    ]);
    expect(binding.subjects).toEqual([{ apiGroup: '', kind: 'ServiceAccount', name: 'tekton-kueue-policies-multikueue', namespace: 'kueue-system' }]);
    const runs = docs('guard/tenant-guard.yaml').find((o) => o.metadata.name === 'tekton-kueue-policies-guard-pipelineruns' && o.kind === 'ValidatingAdmissionPolicy');
    expect(runs.spec.matchConditions[0].expression).toContain('system:serviceaccount:kueue-system:tekton-kueue-policies-multikueue');
    expect(runs.spec.validations[0].messageExpression).toContain('(dispatched-by-manager)');
    // The copies MultiKueue makes are left alone by every step at a run's creation but the one that releases them.
    const mutate = docs('policies/mutate-pipelinerun.yaml')[0].spec.rules;
    expect(mutate.map((r: any) => [r.name, r.exclude?.any.some((e: any) => e.resources.selector.matchExpressions?.[0].key === 'kueue.x-k8s.io/multikueue-origin') ?? false])).toEqual([
      ['release-dispatched-run', false],
      ['hold-pending', true],
      ['label-user-pending', true],
      ['hold-user-release', false],
    ]);
    const generate = docs('policies/generate-workload.yaml')[0].spec.rules.find((r: any) => r.name === 'workload-for-pipelinerun');
    expect(generate.exclude.any.map((e: any) => e.resources.selector.matchExpressions?.[0].key)).toContain('kueue.x-k8s.io/multikueue-origin');
  });
});
