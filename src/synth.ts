import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ApiObject, type App, Chart } from 'cdk8s';
import YAML from 'yaml';

/** dist/ as relative path → file text. */
export type Files = Map<string, string>;

const KUSTOMIZATION = { apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization' };

function toYaml(objects: unknown[]): string {
  return objects.map((o) => YAML.stringify(o, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
}

/** Every construct validation error of the app (cdk8s runs these on synth; so do we). */
export function validationErrors(app: App): string[] {
  return app.node.findAll().flatMap((c) => c.node.validate().map((message) => `${c.node.path}: ${message}`));
}

/**
 * Lays the app out for GitOps: a folder per chart, a file per top-level construct of the chart,
 * a kustomization.yaml in each folder, and a root kustomization.yaml over `applied` charts.
 */
export function renderFiles(app: App, applied: readonly string[]): Files {
  const errors = validationErrors(app);
  if (errors.length > 0) throw new Error(`the bundle is invalid:\n  ${errors.join('\n  ')}`);
  const files: Files = new Map();
  for (const chart of app.node.children.filter(Chart.isChart)) {
    const names: string[] = [];
    for (const child of chart.node.children) {
      const objects = child.node.findAll().filter(ApiObject.isApiObject).map((o) => o.toJson());
      if (objects.length === 0) continue;
      names.push(`${child.node.id}.yaml`);
      files.set(`${chart.node.id}/${child.node.id}.yaml`, toYaml(objects));
    }
    files.set(`${chart.node.id}/kustomization.yaml`, toYaml([{ ...KUSTOMIZATION, resources: names }]));
  }
  files.set('kustomization.yaml', toYaml([{ ...KUSTOMIZATION, resources: [...applied] }]));
  return files;
}

/** Whether `dir` holds exactly `files`, so a synth that changes nothing writes nothing. */
function sameTree(files: Files, dir: string): boolean {
  if (!existsSync(dir)) return false;
  const existing = listFiles(dir);
  return existing.length === files.size && existing.every((path) => files.get(path) === readFileSync(join(dir, path), 'utf8'));
}

function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((entry) => {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    return entry.isDirectory() ? listFiles(dir, path) : [path];
  });
}

/**
 * Replaces `outDir` with `files`, unless it holds them already. Everything is written to a
 * sibling temp folder first, so a failure leaves the old output as it was.
 */
export function writeFiles(files: Files, outDir: string): 'written' | 'unchanged' {
  const target = resolve(outDir);
  if (sameTree(files, target)) return 'unchanged';
  const parent = dirname(target);
  mkdirSync(parent, { recursive: true });
  const staging = join(parent, `.${basename(target)}.staging-${process.pid}`);
  const previous = join(parent, `.${basename(target)}.previous-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  try {
    for (const [path, text] of files) {
      mkdirSync(dirname(join(staging, path)), { recursive: true });
      writeFileSync(join(staging, path), text);
    }
    if (existsSync(target)) renameSync(target, previous);
    renameSync(staging, target);
    rmSync(previous, { recursive: true, force: true });
    return 'written';
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    if (existsSync(previous) && !existsSync(target)) renameSync(previous, target);
    throw err;
  }
}
