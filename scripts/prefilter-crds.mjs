// Writes single-version copies of the pinned upstream CRDs to .crds/ (git-ignored) for `cdk8s import`.
// cdk8s import gives the plain class name to the FIRST version in a CRD, and Tekton and Kueue list
// their old version first, so each CRD is cut down to the one version the bundle emits.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const crds = resolve(process.env.TKP_CRDS_DIR ?? join(root, '..', 'shared', 'crds'));

/** import name → [CRD file under the pinned folder, version to keep] */
const groups = {
  kyverno: [
    ['kyverno-v1.19.0/kyverno.io_clusterpolicies.yaml', 'v1'],
    ['kyverno-v1.19.0/policies.kyverno.io_mutatingpolicies.yaml', 'v1'],
    ['kyverno-v1.19.0/policies.kyverno.io_validatingpolicies.yaml', 'v1'],
    ['kyverno-v1.19.0/policies.kyverno.io_generatingpolicies.yaml', 'v1'],
  ],
  kueue: [
    ['kueue-v0.19.2/kueue.x-k8s.io_resourceflavors.yaml', 'v1beta2'],
    ['kueue-v0.19.2/kueue.x-k8s.io_clusterqueues.yaml', 'v1beta2'],
    ['kueue-v0.19.2/kueue.x-k8s.io_localqueues.yaml', 'v1beta2'],
    ['kueue-v0.19.2/kueue.x-k8s.io_workloadpriorityclasses.yaml', 'v1beta2'],
    ['kueue-v0.19.2/kueue.x-k8s.io_admissionchecks.yaml', 'v1beta2'],
    ['kueue-v0.19.2/kueue.x-k8s.io_multikueueconfigs.yaml', 'v1beta2'],
    ['kueue-v0.19.2/kueue.x-k8s.io_multikueueclusters.yaml', 'v1beta2'],
  ],
  tekton: [
    ['tekton-pipeline-v1.15.0/300-pipelinerun.yaml', 'v1'],
    ['tekton-pipeline-v1.15.0/300-customrun.yaml', 'v1beta1'],
  ],
};

mkdirSync(join(root, '.crds'), { recursive: true });
for (const [name, files] of Object.entries(groups)) {
  const docs = files.map(([file, version]) => {
    const crd = YAML.parse(readFileSync(join(crds, file), 'utf8'));
    const kept = crd.spec.versions.filter((v) => v.name === version);
    if (kept.length !== 1) throw new Error(`${file}: no version ${version} to import`);
    return YAML.stringify({ ...crd, spec: { ...crd.spec, versions: kept } });
  });
  writeFileSync(join(root, '.crds', `${name}.yaml`), docs.join('---\n'));
}
