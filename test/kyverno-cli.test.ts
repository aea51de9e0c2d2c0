/**
 * Tier 1 proof: the real Kyverno engine (CLI v1.19.1) runs every rule of the synthesized policies
 * against the suites beside them (policies/<step>/kyverno-test.yaml).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import YAML from 'yaml';
import { APPLIED_COMPONENTS, buildBundle, gatePolicies } from '../policies/bundle.js';
import type { Config } from '../src/config/config.js';
import { loadConfig, parseConfig } from '../src/config/load.js';
import { renderFiles } from '../src/synth.js';
import { crdFolders, yamlFiles } from '../src/validate/crd-schemas.js';
import { defaultConfig, defaultConfigObject, root } from './helpers.js';

/** The shipped config in the ClusterPolicy dialect, whose policies the suites beside each step run. */
const clusterPolicyConfig = parseConfig({ ...defaultConfigObject(), dialect: 'clusterpolicy' }, 'clusterpolicy.yaml');

/** A config choosing tenant namespaces by label, whose generate-localqueues the suites run too. */
const tenantExample = loadConfig(join(root, 'policies', 'examples', 'multi-team-ci.yaml'));

/** A MultiKueue manager: its admit-pipelinerun has a step of its own. */
const managerExample = loadConfig(join(root, 'policies', 'examples', 'multikueue-manager.yaml'));

/** The policy files (name, YAML) of dist/, as it ships (the CEL dialect). */
const shipped = readdirSync(join(root, 'dist', 'policies')).map((file): [string, string] => [file, readFileSync(join(root, 'dist', 'policies', file), 'utf8')]);

/** The policy files (name, YAML) of the bundle of `config`. */
function policiesOf(config: Config): [string, string][] {
  return [...renderFiles(buildBundle(config), APPLIED_COMPONENTS)].filter(([path]) => path.startsWith('policies/')).map(([path, text]): [string, string] => [path.slice('policies/'.length), text]);
}

/**
 * The suites run on a copy of the project in which dist/'s policies have no webhook match
 * conditions: the Kyverno v1.19 CLI crashes on any policy that has them (it checks the server's
 * version through a client it does not have). The API server evaluates those conditions; the
 * end-to-end suite runs them.
 */
function projectForTheCli(): string {
  const copy = mkdtempSync(join(tmpdir(), 'tkp-cli-'));
  cpSync(join(root, 'policies'), join(copy, 'policies'), { recursive: true });
  writePolicies(join(copy, 'dist'), shipped);
  writePolicies(join(copy, 'dist-clusterpolicy'), policiesOf(clusterPolicyConfig));
  // The policies of a config choosing tenant namespaces by label (the shipped one lists them).
  writePolicies(join(copy, 'dist-tenants'), policiesOf({ ...tenantExample, dialect: 'clusterpolicy' }));
  writePolicies(join(copy, 'dist-tenants-cel'), policiesOf({ ...tenantExample, dialect: 'cel' }));
  // The policies of a MultiKueue manager, whose own step a suite runs.
  writePolicies(join(copy, 'dist-multikueue-manager'), policiesOf({ ...managerExample, dialect: 'clusterpolicy' }));
  return copy;
}

/** Writes the policy files (name, YAML) into `<bundle>/policies/`, without their webhook match conditions. */
function writePolicies(bundle: string, files: readonly [string, string][]): void {
  mkdirSync(join(bundle, 'policies'), { recursive: true });
  for (const [file, text] of files.filter(([file]) => file !== 'kustomization.yaml')) {
    const policies = docsOf(text) as { spec: { webhookConfiguration?: { matchConditions?: unknown } } }[];
    for (const policy of policies) delete policy.spec.webhookConfiguration?.matchConditions;
    writeFileSync(join(bundle, 'policies', file), policies.map((policy) => YAML.stringify(policy)).join('---\n'));
  }
}

const copy = projectForTheCli();
const policiesDir = join(copy, 'policies');
const suites = readdirSync(policiesDir, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .filter((name) => readdirSync(join(policiesDir, name)).includes('kyverno-test.yaml'));

function kyverno(...args: string[]) {
  const run = spawnSync(inject('kyvernoCli'), args, { encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}`, stdout: run.stdout };
}

type Row = { RESOURCE: string; RESULT: string; REASON: string; Message: string };

/** The result rows of a suite, with the engine's message for each. */
function detailedResults(suite: string, fileName = 'kyverno-test.yaml'): { rows: Row[]; status: number | null; output: string } {
  const { status, output, stdout } = kyverno('test', join(policiesDir, suite), '--file-name', fileName, '--detailed-results', '--remove-color', '-o', 'json');
  const json = stdout.slice(stdout.indexOf('\n[') + 1, stdout.lastIndexOf(']') + 1);
  return { rows: JSON.parse(json) as Row[], status, output };
}

/** Every expected result of the suite holds, and each resource of `reasonsOf` was skipped or refused for its reason. */
function expectSuiteHolds(suite: string, fileName: string, reasonsOf: Readonly<Record<string, string>>): void {
  const test = YAML.parse(readFileSync(join(policiesDir, suite, fileName), 'utf8')) as { results: { resources: string[] }[] };
  const expected = test.results.reduce((n, r) => n + r.resources.length, 0);
  const { rows, status, output } = detailedResults(suite, fileName);
  // The CLI passes silently over a result it cannot pair with a resource: count them too.
  expect(output, output).toContain(`Test Summary: ${expected} tests passed and 0 tests failed`);
  expect(status, output).toBe(0);
  // ...and counts a rule of a policy it found invalid as passed.
  expect(rows.filter((r) => r.RESULT !== 'Pass'), output).toEqual([]);
  for (const [resource, reason] of Object.entries(reasonsOf)) {
    const row = rows.find((r) => r.RESOURCE.endsWith(`/${resource}`) && !r.Message.startsWith('validation rule'));
    expect(row?.Message, `${suite} ${resource}`).toContain(reason);
  }
}

/**
 * Why a rule skipped or refused a resource. A skip must happen for one reason and not another (a
 * step that skips because an API read failed would pass a skip expectation too): the message of the
 * precondition that stopped it. A refusal must tell the user what is wrong and what would do.
 * (The CLI gives no reason for a skipped generate rule: generate-workload's suite makes each run
 * that skips differ from one that passes in one way only.)
 */
const reasons: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  'admit-customrun': {
    'preempted-kueue-gate': 'the Workload became Evicted=True meanwhile',
    'cancelled-kueue-gate': 'Succeeded is set already',
    'reopened-kueue-gate': 'Succeeded is set already',
  },
  'admit-pipelinerun': { 'deploy-e5': 'the Workload became Evicted=True meanwhile', 'user-held': 'the gate did not make the run pending' },
  'ready-workload': { 'lint-r2d2': 'the PipelineRun has not started', 'test-m3': 'PodsReady is set already' },
  'mutate-pipelinerun': {
    'released-by-gate': 'the gate holds the run',
    'cancelled-by-user': 'spec.status is not empty',
    'ci-team-a/pr-asks-high': 'an earlier rule routed the run',
    'ci-team-b/release': 'not in namespace ci-team-a',
    'ci-team-a/release': 'no tekton-kueue-policies.dev/route annotation',
  },
  'release-workload': { 'live-k2-kueue-gate': 'the PipelineRun is not Succeeded=True|False', 'done-k4-kueue-gate': 'the Workload has ended' },
  'cancel-customrun': { 'opened-kueue-gate': 'the CustomRun has ended', 'waiting-kueue-gate': 'the CustomRun is not RunCancelled' },
  'evict-pipelinerun': {
    'docs-x1-kueue-gate': 'the run is still held',
    'deploy-w2': 'the run is still held',
    'e2e-f4-kueue-gate': 'the run has finished',
  },
  'requeue-workload': {
    'lint-r2d2-kueue-gate': 'the run is no longer held',
    'fresh-k9-kueue-gate': 'the run is no longer held',
    'deploy-q8z4m': 'the run is no longer held',
    'deploy-v3': 'the Workload holds no reservation',
  },
  'validate-pipelinerun': {
    'unknown-queue': 'queue "nightly" (label kueue.x-k8s.io/queue-name, or the default of the namespace) is no LocalQueue of namespace ci-team-a; its LocalQueues: pipelines, releases, shared.',
    'lots-of-cpu': 'annotation kueue.konflux-ci.dev/requests-cpu: "lots" is not a resource quantity; write one such as 2, 500m or 4Gi.',
    'wants-scratch': 'the run asks for ephemeral-storage, which ClusterQueue pipelines of its queue pipelines does not cover, so Kueue would never admit it; it covers cpu, memory, tekton.dev/pipelineruns.',
    'an-hour': 'label kueue.x-k8s.io/max-exec-time-seconds: "1h" is not a whole number of seconds above 0',
    urgent: 'label kueue.x-k8s.io/priority-class: "urgent" names no priority class of the gate (high, low); the run gets low.',
  },
};

describe('Kyverno CLI suites', () => {
  it.each([
    ['dist', shipped],
    ['dist-clusterpolicy', policiesOf(clusterPolicyConfig)],
  ])('run every policy as %s has it, but for the webhook match conditions of a ClusterPolicy', (bundle, files) => {
    for (const [file, text] of files.filter(([file]) => file !== 'kustomization.yaml')) {
      const rendered = docsOf(text) as { kind: string; spec: { webhookConfiguration?: { matchConditions?: unknown } } }[];
      for (const policy of rendered.filter((p) => p.kind === 'ClusterPolicy')) {
        expect(policy.spec.webhookConfiguration!.matchConditions, file).toHaveLength(1);
        delete policy.spec.webhookConfiguration!.matchConditions;
      }
      expect(docsOf(readFileSync(join(copy, bundle, 'policies', file), 'utf8')), file).toEqual(rendered);
    }
  });

  it('cover every policy of the bundle, and of one with tenant namespaces', () => {
    expect(suites.sort()).toEqual([...new Set([...gatePolicies(defaultConfig()), ...gatePolicies(tenantExample)].map((p) => p.name))].sort());
  });

  // The CLI labels what a ClusterPolicy generates as Kyverno does, and what a GeneratingPolicy does
  // not at all: the queues themselves must be the same.
  it.each([
    ['clusterpolicy', 'dist-tenants', (queue: Doc) => queue],
    ['cel', 'dist-tenants-cel', ({ apiVersion, kind, metadata: { name, namespace }, spec }: Doc) => ({ apiVersion, kind, metadata: { name, namespace }, spec })],
  ])('generate-localqueues (%s) gives the labelled namespace its LocalQueues, and no other namespace any', (_dialect, bundle, compared) => {
    const out = mkdtempSync(join(tmpdir(), 'tkp-localqueues-'));
    const dir = join(policiesDir, 'generate-localqueues');
    const { status, output } = kyverno('apply', join(copy, bundle, 'policies', 'generate-localqueues.yaml'), '--resource', join(dir, 'test', 'resources.yaml'), '-o', out);
    expect(status, output).toBe(0);
    const generated = readdirSync(out).flatMap((f) => docsOf(readFileSync(join(out, f), 'utf8')));
    const expected = ['localqueue-pipelines.yaml', 'localqueue-releases.yaml'].map((f) => YAML.parse(readFileSync(join(dir, 'test', f), 'utf8')) as Doc);
    expect(generated.map(compared)).toEqual(expected.map(compared));
  });

  it.each(suites)('%s: every expected result holds, each skip for its reason', (suite) => {
    expectSuiteHolds(suite, 'kyverno-test.yaml', reasons[suite] ?? {});
  });

  it("admit-pipelinerun of a MultiKueue manager shows Tekton's pending condition on a run whose Workload waits for MultiKueue, and on no other", () => {
    expectSuiteHolds('admit-pipelinerun', 'kyverno-test-multikueue.yaml', {
      'local-m3': 'the Workload is not held to AdmissionCheck tekton-kueue-policies-multikueue',
      'admitted-m4': 'the Workload became Admitted=True meanwhile',
      'shown-m5': 'Succeeded is set already',
      'new-m6': 'the Workload is not QuotaReserved=True|False',
    });
  });

  it.each(['dist-clusterpolicy', 'dist'])('mutate-pipelinerun of %s gates a generateName run and keeps text that looks like a variable', (bundle) => {
    const dir = join(policiesDir, 'mutate-pipelinerun', 'test');
    const out = join(mkdtempSync(join(tmpdir(), 'tkp-mutate-')), 'out.yaml');
    const { status, output } = kyverno('apply', join(policiesDir, '..', bundle, 'policies', 'mutate-pipelinerun.yaml'), '--resource', join(dir, 'generate-name.yaml'), '-o', out);
    expect(status, output).toBe(0);
    const mutated = YAML.parseAllDocuments(readFileSync(out, 'utf8')).map((d) => d.toJS()).filter(Boolean);
    expect(mutated).toEqual([YAML.parse(readFileSync(join(dir, 'patched-generate-name.yaml'), 'utf8'))]);
  });

  // A manager marks the runs of its dispatching queues for MultiKueue; a worker lets the copies
  // MultiKueue makes of them start, and gates its own runs.
  it.each(['manager', 'worker'].flatMap((role) => ['clusterpolicy', 'cel'].map((dialect) => [role, dialect])))('mutate-pipelinerun of a MultiKueue %s (%s) as the example config makes it', (role, dialect) => {
    const example = YAML.parse(readFileSync(join(root, 'policies', 'examples', `multikueue-${role}.yaml`), 'utf8'));
    const bundle = mkdtempSync(join(tmpdir(), 'tkp-multikueue-'));
    writePolicies(bundle, policiesOf(parseConfig({ ...example, dialect }, `multikueue-${role}.yaml`)).filter(([file]) => file === 'mutate-pipelinerun.yaml'));
    const dir = join(policiesDir, 'mutate-pipelinerun', 'test');
    const out = join(bundle, 'out.yaml');
    const { status, output } = kyverno('apply', join(bundle, 'policies', 'mutate-pipelinerun.yaml'), '--resource', join(dir, `multikueue-${role}.yaml`), '-o', out);
    expect(status, output).toBe(0);
    const docs = (file: string) => docsOf(readFileSync(file, 'utf8'));
    expect(docs(out)).toEqual(docs(join(dir, `patched-multikueue-${role}.yaml`)));
  });

  // `kyverno test` passes a generate result that generated nothing, so the suite's expected
  // Workloads are compared with what `kyverno apply` really generates.
  it('generate-workload makes exactly the Workloads its suite expects, and no other', () => {
    const out = mkdtempSync(join(tmpdir(), 'tkp-generate-'));
    const dir = join(policiesDir, 'generate-workload');
    const suite = YAML.parse(readFileSync(join(dir, 'kyverno-test.yaml'), 'utf8')) as { resources: string[]; variables: string; results: { generatedResource?: string }[] };
    // The suite's values, and what its API responses would give where `kyverno apply` makes no call.
    const values = YAML.parse(readFileSync(join(dir, suite.variables), 'utf8'));
    const owners = YAML.parse(readFileSync(join(dir, 'test', 'owners.yaml'), 'utf8'));
    const resources = values.policies[0].resources as { name: string; values: Record<string, unknown> }[];
    for (const { name, values: given } of owners.policies[0].resources as { name: string; values: Record<string, unknown> }[]) {
      Object.assign(resources.find((r) => r.name === name)!.values, given);
    }
    writeFileSync(join(out, 'values.yaml'), YAML.stringify(values));
    const { status, output } = kyverno(
      'apply',
      join(policiesDir, '..', 'dist-clusterpolicy', 'policies', 'generate-workload.yaml'),
      ...suite.resources.flatMap((r) => ['--resource', join(dir, r)]),
      '--values-file',
      join(out, 'values.yaml'),
      '-o',
      join(out, 'generated'),
    );
    expect(status, output).toBe(0);
    const byName = (docs: { metadata: { name: string } }[]) => docs.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const generated = readdirSync(join(out, 'generated')).flatMap((f) => YAML.parseAllDocuments(readFileSync(join(out, 'generated', f), 'utf8')).map((d) => d.toJS()).filter(Boolean));
    const expected = suite.results.filter((r) => r.generatedResource).map((r) => YAML.parse(readFileSync(join(dir, r.generatedResource!), 'utf8')));
    expect(expected.length).toBeGreaterThan(0);
    expect(byName(generated)).toEqual(byName(expected));
  });

  // The CLI compares a rule that changes its own trigger with the trigger as it came, so what such
  // a step writes is checked here: its context, evaluated in order by the engine's JMESPath on the
  // suite's own resource, gives the conditions the step writes.
  it.each([
    ['requeue-workload', 'evict-pipelinerun/test/resources.yaml', 'docs-x1-kueue-gate', 'requeue-workload/test/patched-docs-x1-kueue-gate.yaml'],
    ['requeue-workload', 'evict-pipelinerun/test/resources.yaml', 'deploy-w2', 'requeue-workload/test/patched-deploy-w2.yaml'],
    ['cancel-customrun', 'cancel-customrun/test/resources.yaml', 'queued-kueue-gate', 'cancel-customrun/test/patched-queued-kueue-gate.yaml'],
  ])('%s writes the conditions of %s (%s) as expected', (policyName, resources, name, patched) => {
    const trigger = YAML.parseAllDocuments(readFileSync(join(policiesDir, resources), 'utf8'))
      .map((d) => d.toJS())
      .find((o) => o?.metadata.name === name);
    const policy = YAML.parse(readFileSync(join(policiesDir, '..', 'dist-clusterpolicy', 'policies', `${policyName}.yaml`), 'utf8'));
    const rule = policy.spec.rules.find((r: { match: { any: { resources: { selector?: { matchLabels: Record<string, string> } } }[] } }) =>
      Object.entries(r.match.any[0]!.resources.selector?.matchLabels ?? {}).every(([k, v]) => trigger.metadata.labels[k] === v),
    );
    type Entry = { name: string; variable?: { jmesPath: string } };
    const entries = [...((rule.context ?? []) as Entry[]), ...(rule.mutate.targets[0].context as Entry[])].filter((e) => e.variable?.jmesPath);
    const input: Record<string, unknown> = { request: { object: trigger }, target: trigger };
    const dir = mkdtempSync(join(tmpdir(), 'tkp-jp-'));
    for (const entry of entries) {
      writeFileSync(join(dir, 'input.json'), JSON.stringify(input));
      const { status, stdout, output } = kyverno('jp', 'query', '-i', join(dir, 'input.json'), entry.variable!.jmesPath);
      expect(status, output).toBe(0);
      input[entry.name] = JSON.parse(stdout.slice(stdout.indexOf('\n') + 1));
    }
    const expected = YAML.parse(readFileSync(join(policiesDir, patched), 'utf8'));
    const written = (input.conditions as { lastTransitionTime: string }[]).map((c) =>
      // A step that writes the time it runs: any time of the last minute will do.
      expected.status.conditions.some((e: { lastTransitionTime: string }) => e.lastTransitionTime === 'now') && Date.now() - Date.parse(c.lastTransitionTime) < 60_000 ? { ...c, lastTransitionTime: 'now' } : c,
    );
    expect(written).toEqual(expected.status.conditions);
    expect(rule.mutate.patchesJson6902).toContain('path: /status/conditions');
  });
});

// --- the CEL dialect ------------------------------------------------------------------------------

interface Suite {
  resources: string[];
  variables?: string;
  apiCallResponses?: { urlPath: string; response: { body: { items: Record<string, unknown>[] } | Record<string, unknown> } }[];
  results: { rule: string; resources: string[]; result: string; patchedResources?: string; generatedResource?: string }[];
}

type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec: Record<string, unknown> };
type Crd = { kind: string; spec: { group: string; names: { kind: string; plural: string }; versions: { name: string }[] } };

/** dist/'s policies, in the CEL dialect: file name → its policies. */
const celFiles = new Map(
  shipped
    .filter(([file]) => file !== 'kustomization.yaml')
    .map(([file, text]) => [file.slice(0, -'.yaml'.length), docsOf(text)]),
);
/**
 * The CEL policies that mutate existing objects, which the Kyverno 1.19 CLI cannot run as they
 * ship: it matches no target to a rule on a subresource (it gives targets none), and its fake
 * cluster holds each object once, so a step's trigger cannot also be its target, nor be read back
 * other than the request has it (it panics on the second copy), which the suites' fixtures of a
 * stale event need. Tried on admit-pipelinerun, whose target is a run: it also reports each
 * trigger against each target. The end-to-end suite runs them.
 */
const mutatesExisting = (suite: string) => celFiles.get(suite)?.some((p) => p.kind === 'MutatingPolicy' && (p.spec.evaluation as { mutateExisting?: { enabled?: boolean } } | undefined)?.mutateExisting?.enabled);
/** The CEL policies that generate, whose suites compare what they generate (below). */
const generates = (suite: string) => celFiles.get(suite)?.some((p) => p.kind === 'GeneratingPolicy');
const celSuites = suites.filter((suite) => celFiles.get(suite)?.some((p) => p.kind !== 'ClusterPolicy') && !mutatesExisting(suite) && !generates(suite));

function docsOf(text: string): Doc[] {
  return YAML.parseAllDocuments(text)
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null);
}

const crds = crdFolders(root)
  .flatMap(yamlFiles)
  .flatMap((file) => docsOf(readFileSync(file, 'utf8')).map((doc) => ({ file, crd: doc as unknown as Crd })))
  .filter(({ crd }) => crd.kind === 'CustomResourceDefinition');

/** The head of a document of the Kyverno CLI. */
function stub(kind: string, name: string) {
  return { apiVersion: 'cli.kyverno.io/v1alpha1', kind, metadata: { name } };
}

/** `namespace/name` of the resources a suite's values make the CLI update, not create. */
function updatedIn(suite: string, test: Suite): Set<string> {
  if (!test.variables) return new Set();
  const values = YAML.parse(readFileSync(join(policiesDir, suite, test.variables), 'utf8')) as { policies?: { resources: { name: string; values: Record<string, unknown> }[] }[] };
  const names = (values.policies ?? []).flatMap((p) => p.resources.filter((r) => r.values['request.operation'] === 'UPDATE').map((r) => r.name));
  return new Set(test.results.flatMap((r) => r.resources).filter((res) => names.includes(res.split('/').pop()!)));
}

/** The objects a suite's API responses list or read, as the CLI gives CEL policies the cluster's objects. */
function listedObjects(test: Suite): Doc[] {
  return (test.apiCallResponses ?? []).flatMap(({ urlPath, response }) => {
    const [, , group, version, ...rest] = urlPath.split('/');
    const namespace = rest[0] === 'namespaces' ? rest[1] : undefined;
    const [plural, name] = namespace ? rest.slice(2) : rest;
    const { crd } = crds.find(({ crd }) => crd.spec.group === group && crd.spec.names.plural === plural)!;
    const items = name ? [response.body as Record<string, unknown>] : (response.body as { items: Record<string, unknown>[] }).items;
    return items.map((item) => ({ ...item, apiVersion: `${group}/${version}`, kind: crd.spec.names.kind, metadata: { ...(item.metadata as object), ...(namespace ? { namespace } : {}) } }) as Doc);
  });
}

/**
 * Writes `cluster.yaml` beside a suite: the cluster the CLI runs CEL policies against, of the CRDs
 * of the kinds of `objects` and the suite's API responses, their namespaces (unless the suite's
 * resources are the namespaces: the CLI stores those too), and the objects the responses list or
 * read and `stored` (which `resource.List` and `resource.Get` read).
 */
function writeCluster(dir: string, test: Suite, objects: readonly Doc[], { stored = [], withNamespaces = true }: { stored?: readonly Doc[]; withNamespaces?: boolean } = {}): void {
  const listed = [...listedObjects(test), ...stored];
  const kinds = new Set([...objects, ...listed].map((doc) => `${doc.apiVersion.split('/')[0]}/${doc.kind}`));
  const used = [...new Set(crds.filter(({ crd }) => kinds.has(`${crd.spec.group}/${crd.spec.names.kind}`)).map(({ file }) => file))];
  mkdirSync(join(dir, 'crds'), { recursive: true });
  for (const file of used) cpSync(file, join(dir, 'crds', file.split('/').pop()!));
  const namespaces = withNamespaces ? [...new Set([...objects, ...listed].map((doc) => doc.metadata.namespace).filter((ns): ns is string => ns !== undefined))] : [];
  writeFileSync(
    join(dir, 'cluster.yaml'),
    YAML.stringify({
      ...stub('ClusterResource', 'cluster'),
      spec: { crds: used.map((file) => `crds/${file.split('/').pop()}`), resources: [...namespaces.map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })), ...listed] },
    }),
  );
}

/** What a CEL suite expects of a resource: the CLI's result, and whether no verdict (a skip) would do as well. */
interface Expected {
  readonly policy: string;
  readonly resource: string;
  readonly result: 'pass' | 'fail';
  readonly patchedResources?: string;
  /** The ClusterPolicy suite expects no change nor refusal: a CEL policy whose match conditions leave it out skips it, as well. */
  readonly orSkip: boolean;
}

/**
 * What the ClusterPolicy suite expects, as the CEL policies of the suite report it: a
 * MutatingPolicy by object (patched, or unchanged), a ValidatingPolicy by policy (refused when a rule
 * refuses; a rule that audits is a policy that warns, named `<policy>-<rule>`, whose failures the
 * CLI reports as it reports a refusal).
 */
function expectationsOf(suite: string, test: Suite, resources: readonly string[], fileOf: (resource: string) => string): Expected[] {
  const [main, ...others] = celFiles.get(suite)!;
  const resultsOf = (resource: string, rules?: (rule: string) => boolean) => test.results.filter((r) => r.resources.includes(resource) && (!rules || rules(r.rule)));
  if (main!.kind === 'MutatingPolicy') {
    return resources.map((resource) => {
      const patched = resultsOf(resource).find((r) => r.result === 'pass' && r.patchedResources)?.patchedResources;
      return { policy: main!.metadata.name, resource, result: 'pass', patchedResources: patched ?? fileOf(resource), orSkip: !patched };
    });
  }
  const warning = (rule: string) => others.some((p) => p.metadata.name === `${suite}-${rule}`);
  const verdict = (results: Suite['results']): Pick<Expected, 'result' | 'orSkip'> =>
    results.some((r) => r.result === 'fail') ? { result: 'fail', orSkip: false } : { result: 'pass', orSkip: results.every((r) => r.result === 'skip') };
  return resources.flatMap((resource) => [
    { policy: suite, resource, ...verdict(resultsOf(resource, (rule) => !warning(rule))) },
    ...others.map((p) => ({ policy: p.metadata.name, resource, ...verdict(resultsOf(resource, (rule) => p.metadata.name === `${suite}-${rule}`)) })),
  ]);
}

/**
 * Writes `kyverno-test-cel.yaml` beside a suite: the CEL policies on the suite's resources, each
 * expected to come out as the ClusterPolicy suite expects it. The CLI runs CEL policies against the
 * cluster it is given: the CRDs, the namespaces, and the objects the suite's API calls list (which
 * `resource.List` reads).
 */
function writeCelSuite(suite: string): { expected: Expected[]; updated: Set<string> } {
  const dir = join(policiesDir, suite);
  const test = YAML.parse(readFileSync(join(dir, 'kyverno-test.yaml'), 'utf8')) as Suite;
  const docs = test.resources.flatMap((file) => docsOf(readFileSync(join(dir, file), 'utf8')).map((doc) => ({ doc, file })));
  const find = (resource: string) => docs.find(({ doc }) => `${doc.metadata.namespace}/${doc.metadata.name}` === resource)!;
  const updated = updatedIn(suite, test);
  const resources = [...new Set(test.results.flatMap((r) => r.resources))].filter((res) => !updated.has(res)).sort();
  const expected = expectationsOf(suite, test, resources, (res) => find(res).file);

  writeCluster(dir, test, docs.map(({ doc }) => doc));
  const kindOf = (policy: string) => celFiles.get(suite)!.find((p) => p.metadata.name === policy)!.kind;
  writeFileSync(
    join(dir, 'kyverno-test-cel.yaml'),
    YAML.stringify({
      ...stub('Test', `${suite}-cel`),
      policies: [`../../dist/policies/${suite}.yaml`],
      resources: test.resources,
      clusterResources: ['cluster.yaml'],
      results: expected.map((e) => ({
        policy: e.policy,
        [`is${kindOf(e.policy)}`]: true,
        kind: find(e.resource).doc.kind,
        resources: [e.resource],
        result: e.result,
        ...(e.patchedResources ? { patchedResources: e.patchedResources } : {}),
      })),
    }),
  );
  return { expected, updated };
}

describe('Kyverno CLI suites of the CEL dialect', () => {
  it('render the admission steps in CEL; the status steps in CEL are the control plane\'s to run', () => {
    expect(celSuites).toEqual(['mutate-pipelinerun', 'validate-pipelinerun']);
    expect(suites.filter(generates)).toEqual(['generate-workload']);
    expect(suites.filter(mutatesExisting)).toEqual(['admit-customrun', 'admit-pipelinerun', 'cancel-customrun', 'evict-pipelinerun', 'ready-workload', 'release-workload', 'requeue-workload']);
    expect(celFiles.get('mutate-pipelinerun')!.map((p) => `${p.apiVersion} ${p.kind} ${p.metadata.name}`)).toEqual(['policies.kyverno.io/v1 MutatingPolicy mutate-pipelinerun']);
    expect(celFiles.get('validate-pipelinerun')!.map((p) => `${p.kind} ${p.metadata.name}`)).toEqual(['ValidatingPolicy validate-pipelinerun', 'ValidatingPolicy validate-pipelinerun-known-priority']);
  });

  // The CLI compares what a GeneratingPolicy generates with the ClusterPolicy suite's files, but for
  // the labels Kyverno adds (generate.kyverno.io/*), which differ by kind of policy.
  it("generate-localqueues: the GeneratingPolicy generates each queue the ClusterPolicy suite expects, and no other", () => {
    const suite = 'generate-localqueues';
    const test = YAML.parse(readFileSync(join(policiesDir, suite, 'kyverno-test.yaml'), 'utf8')) as Omit<Suite, 'results'> & { results: { resources: string[]; generatedResource: string }[] };
    const resources = [...new Set(test.results.flatMap((r) => r.resources))];
    writeFileSync(
      join(policiesDir, suite, 'kyverno-test-cel.yaml'),
      YAML.stringify({
        ...stub('Test', `${suite}-cel`),
        policies: [`../../dist-tenants-cel/policies/${suite}.yaml`],
        resources: test.resources,
        results: resources.map((resource) => ({
          policy: suite,
          isGeneratingPolicy: true,
          kind: 'Namespace',
          resources: [resource],
          generatedResources: test.results.filter((r) => r.resources.includes(resource)).map((r) => r.generatedResource),
          result: 'pass',
        })),
      }),
    );
    const { rows, status, output } = detailedResults(suite, 'kyverno-test-cel.yaml');
    expect(status, output).toBe(0);
    // A row per queue generated, named after it.
    expect(rows.map((r) => `${r.RESOURCE.split('/').pop()} ${r.RESULT}`).sort(), output).toEqual(test.results.map((r) => `${YAML.parse(readFileSync(join(policiesDir, suite, r.generatedResource), 'utf8')).metadata.name} Pass`).sort());
  });

  describe('generate-workload', () => {
    const suite = 'generate-workload';
    const dir = join(policiesDir, suite);
    const test = YAML.parse(readFileSync(join(dir, 'kyverno-test.yaml'), 'utf8')) as Suite;
    const docs = test.resources.flatMap((file) => docsOf(readFileSync(join(dir, file), 'utf8')));
    const docOf = (resource: string) => docs.find((doc) => `${doc.metadata.namespace}/${doc.metadata.name}` === resource)!;
    /** The steps on a waiting run, which the re-apply policy has too. */
    const onState = new Set(gatePolicies(defaultConfig()).find((p) => p.name === suite)!.steps.filter((step) => step.trigger.state).map((step) => step.rule));
    const resourcesOf = (onWaitingRun: boolean) => [...new Set(test.results.filter((r) => onState.has(r.rule) === onWaitingRun).flatMap((r) => r.resources))];
    /** The Workloads the ClusterPolicy suite expects of a resource, of the steps on a waiting run or the others. */
    const generatedOf = (resource: string, onWaitingRun: boolean) =>
      [...new Set(test.results.filter((r) => r.resources.includes(resource) && r.generatedResource && onState.has(r.rule) === onWaitingRun).map((r) => r.generatedResource!))];

    /**
     * Runs one GeneratingPolicy of dist/'s generate-workload on `resources` (`namespace/name`, or a
     * namespace's name), expecting each to generate `generated` of it. A row per Workload generated,
     * named after it, compared with the suite's file but for the labels Kyverno adds; a resource for
     * which nothing is made has a row of its own, or none when the policy's match conditions leave
     * it out. Returns the rows of what was generated, as `<name> <result>`.
     */
    function generatedBy(policyName: string, resources: readonly string[], kindOf: (resource: string) => string, generated: (resource: string) => string[], suiteResources: string[]): string[] {
      mkdirSync(join(copy, 'dist-cel-policies'), { recursive: true });
      writeFileSync(join(copy, 'dist-cel-policies', `${policyName}.yaml`), YAML.stringify(celFiles.get(suite)!.find((p) => p.metadata.name === policyName)));
      writeFileSync(
        join(dir, 'kyverno-test-cel.yaml'),
        YAML.stringify({
          ...stub('Test', `${policyName}-cel`),
          policies: [`../../dist-cel-policies/${policyName}.yaml`],
          resources: suiteResources,
          clusterResources: ['cluster.yaml'],
          results: resources.map((resource) => ({
            policy: policyName,
            isGeneratingPolicy: true,
            kind: kindOf(resource),
            resources: [resource],
            ...(generated(resource).length > 0 ? { generatedResources: generated(resource) } : {}),
            result: 'pass',
          })),
        }),
      );
      const { rows, output } = detailedResults(suite, 'kyverno-test-cel.yaml');
      // A generated Workload's row names it alone; a resource's own row has its kind.
      const isGenerated = (row: Row) => row.RESOURCE.startsWith('/');
      const madeNothing = rows.filter((row) => !isGenerated(row));
      expect(madeNothing.filter((row) => row.RESULT !== 'Pass' && row.REASON !== 'Not found'), output).toEqual([]);
      for (const row of madeNothing) expect(generated(row.RESOURCE.split('/').slice(-2).join('/').replace(/^Namespace\//, '')), row.RESOURCE).toEqual([]);
      return rows.filter(isGenerated).map((row) => `${row.RESOURCE.slice(1)} ${row.RESULT}`).sort();
    }

    const named = (files: readonly string[]) => files.map((file) => `${(YAML.parse(readFileSync(join(dir, file), 'utf8')) as Doc).metadata.name} Pass`).sort();

    // `kyverno test` creates each resource, and updates one with itself as the old object: the
    // policy on events runs on the resources the ClusterPolicy suite creates; the status updates of
    // a waiting run are the control plane's to run.
    it('generate-workload generates, for each resource the ClusterPolicy suite creates, the Workload that suite expects, and no other', () => {
      writeCluster(dir, test, docs);
      const updated = updatedIn(suite, test);
      const created = resourcesOf(false).filter((resource) => !updated.has(resource));
      const ofCreation = (resource: string) => generatedOf(resource, false);
      const expected = created.flatMap(ofCreation);
      expect(expected.length).toBeGreaterThan(0);
      expect(generatedBy(suite, created, (resource) => docOf(resource).kind, ofCreation, test.resources)).toEqual(named(expected));
    });

    // The re-apply generates for each namespace, from the runs and Workloads it lists there: the
    // cluster holds the runs the suite's steps on a waiting run are given, and the Workloads the
    // suite's other steps make of them (made once: the re-apply leaves them as they are).
    it('generate-workload-reapply generates, for each namespace, the Workloads the ClusterPolicy suite expects of its runs still waiting, and no other', () => {
      const waiting = resourcesOf(true);
      const runs = waiting.map(docOf);
      const made = waiting.flatMap((resource) => generatedOf(resource, false)).map((file) => YAML.parse(readFileSync(join(dir, file), 'utf8')) as Doc);
      expect(made.length).toBeGreaterThan(0);
      writeCluster(dir, test, runs, { stored: [...runs, ...made], withNamespaces: false });
      const namespaces = [...new Set(runs.map((run) => run.metadata.namespace!))].sort();
      // As the API server labels every namespace: the policy selects its namespaces by that label.
      writeFileSync(join(dir, 'namespaces.yaml'), namespaces.map((name) => YAML.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name } } })).join('---\n'));
      const ofNamespace = (namespace: string) => waiting.filter((resource) => resource.startsWith(`${namespace}/`)).flatMap((resource) => generatedOf(resource, true));
      const expected = namespaces.flatMap(ofNamespace);
      expect(expected.length).toBeGreaterThan(0);
      expect(generatedBy(`${suite}-reapply`, namespaces, () => 'Namespace', ofNamespace, ['namespaces.yaml'])).toEqual(named(expected));
    });
  });

  it.each(celSuites)('%s: every resource of the ClusterPolicy suite comes out as that suite expects it, refused for the same reason', (suite) => {
    const { expected, updated } = writeCelSuite(suite);
    const { rows, output } = detailedResults(suite, 'kyverno-test-cel.yaml');
    const key = (policy: string, resource: string) => `${policy} ${resource}`;
    const expectations = new Map(expected.map((e) => [key(e.policy, e.resource), e]));
    const rowKey = (row: Row & { POLICY: string }) => key(row.POLICY, row.RESOURCE.split('/').slice(-2).join('/'));
    const wrong = (rows as (Row & { POLICY: string })[]).filter((row) => row.RESULT !== 'Pass' && !(expectations.get(rowKey(row))?.orSkip && row.REASON === `Want ${expectations.get(rowKey(row))!.result}, got skip`));
    expect(wrong, output).toEqual([]);
    expect(rows.length, output).toBe(expected.length);
    // A refusal says why in both dialects; a skipped rule of a MutatingPolicy is a patch that was not made, with no message.
    const refusals = celFiles.get(suite)![0]!.kind === 'MutatingPolicy' ? {} : (reasons[suite] ?? {});
    for (const [resource, reason] of Object.entries(refusals)) {
      if ([...updated].some((u) => u.endsWith(`/${resource}`))) continue;
      const row = (rows as (Row & { POLICY: string })[]).find((r) => r.RESOURCE.endsWith(`/${resource}`) && expectations.get(rowKey(r))?.result !== 'pass');
      expect(row?.Message, `${suite} ${resource}`).toContain(reason);
    }
    // The CLI updates an object with itself as the old object: a user's release needs the e2e suite.
    expect([...updated].sort()).toEqual(suite === 'mutate-pipelinerun' ? ['ci-team-b/cancelled-by-user', 'ci-team-b/released-by-gate', 'ci-team-b/released-by-user'] : []);
  });
});
