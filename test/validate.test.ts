import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { crdFolders, loadCrdSchemas } from '../src/validate/crd-schemas.js';
import { ObjectValidator, validateDir } from '../src/validate/validate.js';
import { gatePolicies } from '../policies/bundle.js';
import { WORKLOAD_STATUS_FIELDS } from '../src/gate/names.js';
import { cli, copyOfDist, defaultConfig, defaultConfigObject, exampleConfig, root, tempDir } from './helpers.js';

const validator = new ObjectValidator(loadCrdSchemas(crdFolders(root)));

describe('validate', () => {
  it('knows every field of a Workload\'s status the pinned Kueue has (the policy keeping Kueue\'s part compares them)', () => {
    const workload = loadCrdSchemas(crdFolders(root)).get('kueue.x-k8s.io/v1beta2/Workload') as { properties: { status: { properties: Record<string, unknown> } } };
    expect(Object.keys(workload.properties.status.properties).filter((field) => field !== 'conditions').sort()).toEqual([...WORKLOAD_STATUS_FIELDS].sort());
  });

  it('accepts every object of dist/', () => {
    const { findings, objects } = validateDir(join(root, 'dist'), validator);
    expect(findings).toEqual([]);
    expect(objects).toBeGreaterThan(20);
  });

  it('accepts every policy of the CEL dialect', () => {
    const config = join(tempDir('cel-config'), 'config.yaml');
    writeFileSync(config, YAML.stringify({ ...defaultConfigObject(), dialect: 'cel' }));
    const out = join(tempDir('cel-dist'), 'dist');
    expect(cli(['synth', '--config', config, '--out', out]).status).toBe(0);
    const { findings, objects } = validateDir(join(out, 'policies'), validator);
    expect(findings).toEqual([]);
    // validate-pipelinerun is two policies, one denies, one warns; generate-workload and each status step's policy in
    // CEL (admit-customrun, cancel-customrun, admit-pipelinerun, evict-pipelinerun, ready-workload, release-workload,
    // requeue-workload) one on events, one on re-applies.
    expect(objects).toBe(gatePolicies(defaultConfig()).length + 9);
  });

  it.each(readdirSync(join(root, 'policies', 'examples')).flatMap((example) => ['clusterpolicy', 'cel'].map((dialect) => [example, dialect])))('accepts every object synthesized from the example config %s in the %s dialect', (example, dialect) => {
    const out = join(tempDir('example'), 'dist');
    const run = cli(['synth', '--config', exampleConfig(example, dialect!), '--out', out]);
    expect(run.status, run.stderr).toBe(0);
    const { findings, objects } = validateDir(out, validator);
    expect(findings).toEqual([]);
    expect(objects).toBeGreaterThan(20);
  });

  it('accepts every fixture of the Kyverno suites (inputs and expected outputs are real objects)', () => {
    for (const step of ['mutate-pipelinerun', 'generate-workload', 'admit-customrun', 'admit-pipelinerun', 'release-workload', 'evict-pipelinerun']) {
      const dir = join(root, 'policies', step, 'test');
      for (const file of readdirSync(dir)) {
        // Values files are the CLI's input, no cluster objects.
        const objects = YAML.parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((d) => d.toJS()).filter((o) => !o.apiVersion.startsWith('cli.kyverno.io/'));
        for (const object of objects) expect(validator.check(object), `${step}/test/${file}`).toEqual([]);
      }
    }
  });

  it('rejects unknown fields, as the API server does', () => {
    const [policy] = YAML.parseAllDocuments(readFileSync(join(root, 'dist', 'policies', 'generate-workload.yaml'), 'utf8')).map((d) => d.toJS());
    policy.spec.evaluation.synchronise = { enabled: true };
    expect(validator.check(policy)).toEqual(['/spec/evaluation: must NOT have additional properties "synchronise"']);
  });

  it('rejects wrong types and missing required fields', () => {
    const queue = { apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'LocalQueue', metadata: { name: 'q', namespace: 'ns' }, spec: { clusterQueue: 7 } };
    expect(validator.check(queue)).toEqual(['/spec/clusterQueue: must be string']);
    expect(validator.check({ apiVersion: 'kueue.x-k8s.io/v1beta2', kind: 'WorkloadPriorityClass', metadata: { name: 'p' } })).toEqual([
      "/: must have required property 'value'",
    ]);
  });

  it('rejects kinds and versions the pinned CRDs do not serve', () => {
    expect(validator.check({ apiVersion: 'kueue.x-k8s.io/v1alpha9', kind: 'Workload', metadata: { name: 'w' } })[0]).toContain('no schema for kueue.x-k8s.io/v1alpha9/Workload');
  });

  it('CLI: exits 1 naming file, object and field when dist/ has an invalid object', () => {
    const dist = copyOfDist();
    const file = join(dist, 'kueue', 'queues.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('clusterQueue: pipelines', 'clusterQueue: pipelines\n  queueingStrategy: StrictFIFO'));
    const run = cli(['validate', dist]);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/queues\.yaml: LocalQueue\/ci-team-a\/pipelines: \/spec: must NOT have additional properties "queueingStrategy"/);
    expect(cli(['validate']).status).toBe(0);
  });
});
