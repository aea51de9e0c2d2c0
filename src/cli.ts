import { join, relative, resolve } from 'node:path';
import type { App } from 'cdk8s';
import { Command, CommanderError } from 'commander';
import type { Config } from './config/config.js';
import { ConfigError, loadConfig } from './config/load.js';
import { BundleError, readBundle } from './operate/bundle-dir.js';
import type { ClusterOptions } from './operate/cluster.js';
import { renderFiles, writeFiles } from './synth.js';
import { crdFolders, loadCrdSchemas } from './validate/crd-schemas.js';
import { ObjectValidator, validateDir } from './validate/validate.js';

/**
 * Exit codes: 0 ok, 1 invalid output, a failed apply or internal error, 2 bad input (config,
 * bundle folder, usage). `diff` exits as `kubectl diff`: 0 no difference, 1 differences, 2 error.
 */
export const EXIT = { ok: 0, invalid: 1, badInput: 2 } as const;

/** What the CLI builds, and where: the app side (policies/) hands it in; the library never imports it. */
export interface Project {
  /** The folder that holds policies/ and dist/. */
  readonly root: string;
  /**
   * Where generated code may be kept between runs.
   * @default nothing is cached
   */
  readonly cacheDir?: string;
  /** The cdk8s app of a config. */
  readonly buildBundle: (config: Config) => App;
  /** The charts the root kustomization.yaml applies, in order. */
  readonly appliedComponents: readonly string[];
}

/** Runs the CLI over the project's bundle; returns the exit code. */
export async function main(argv: readonly string[], { root, cacheDir, buildBundle, appliedComponents }: Project): Promise<number> {
  const display = (path: string) => {
    const shown = relative(process.cwd(), path) || '.';
    return shown.startsWith('..') ? resolve(path) : shown;
  };
  let code: number = EXIT.ok;
  let failure: number = EXIT.invalid;
  const program = new Command('tekton-kueue-policies')
    .description('Synthesize and check the Kyverno + Kueue + Tekton bundle that queues PipelineRuns in Kueue.')
    .exitOverride()
    .showHelpAfterError();

  program
    .command('synth')
    .description('build the bundle from a config file and write it to the output folder (replaced as a whole)')
    .option('-c, --config <file>', 'config file', join(root, 'policies', 'config.yaml'))
    .option('-o, --out <dir>', 'output folder', join(root, 'dist'))
    .action((options: { config: string; out: string }) => {
      const config = loadConfig(display(options.config), cacheDir);
      const files = renderFiles(buildBundle(config), appliedComponents);
      const outcome = writeFiles(files, options.out);
      console.log(outcome === 'written' ? `wrote ${files.size} files to ${display(options.out)}` : `${display(options.out)} is up to date (${files.size} files)`);
    });

  program
    .command('validate')
    .description('check every object under DIR against the pinned CRD schemas, rejecting unknown fields')
    .argument('[dir]', 'folder of YAML files', join(root, 'dist'))
    .option('--crds <dir>', 'folder of CRDs (default: ../shared/crds beside the project, else the Go module cache)')
    .action((dir: string, options: { crds?: string }) => {
      const validator = new ObjectValidator(loadCrdSchemas(crdFolders(root, options.crds)));
      const { findings, objects } = validateDir(dir, validator);
      for (const f of findings) console.error(`${f.file}: ${f.object}: ${f.message}`);
      if (findings.length > 0) {
        console.error(`${findings.length} problem(s) in ${display(dir)}`);
        code = EXIT.invalid;
      } else {
        console.log(`${objects} objects in ${display(dir)} are valid`);
      }
    });

  const withCluster = (command: Command) =>
    command
      .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster)')
      .option('--context <name>', 'kubeconfig context (default: the current one)');

  withCluster(
    program
      .command('apply')
      .description('server-side apply the bundle in DIR in dependency order, waiting for RBAC aggregation and for every policy to be Ready')
      .argument('[dir]', 'bundle folder', join(root, 'dist'))
      .option('--dry-run <mode>', '"server": the API server and its webhooks check every write, nothing is stored')
      .option('--prune', `delete objects labelled part of the bundle that it no longer has (never namespaces)`)
      .option('--timeout <seconds>', 'how long each wait may take', '120'),
  ).action(async (dir: string, options: ClusterOptions & { dryRun?: string; prune?: boolean; timeout: string }) => {
    if (options.dryRun !== undefined && options.dryRun !== 'server') throw new UsageError(`--dry-run ${options.dryRun}: the only mode is "server"`);
    const timeoutSeconds = Number(options.timeout);
    if (!(timeoutSeconds > 0)) throw new UsageError(`--timeout ${options.timeout}: give a number of seconds above 0`);
    const components = readBundle(display(dir));
    // Loaded by the commands that talk to a cluster only: synth does not pay for the Kubernetes client.
    const [{ applyBundle }, { connect }] = await Promise.all([import('./operate/apply.js'), import('./operate/cluster.js')]);
    await applyBundle(connect(options).api, components, { dryRun: options.dryRun === 'server', prune: options.prune === true, timeoutSeconds, log: (line) => console.log(line) });
  });

  withCluster(
    program
      .command('diff')
      .description('show what apply would change (exit 0: nothing, 1: differences, 2: error)')
      .argument('[dir]', 'bundle folder', join(root, 'dist'))
      .option('--prune', 'also list the objects apply --prune would delete'),
  ).action(async (dir: string, options: ClusterOptions & { prune?: boolean }) => {
    // A failed diff is an error (2), not a difference (1), as for kubectl diff.
    failure = EXIT.badInput;
    const components = readBundle(display(dir));
    const [{ diffBundle, formatDifferences }, { connect }] = await Promise.all([import('./operate/diff.js'), import('./operate/cluster.js')]);
    const differences = await diffBundle(connect(options).api, components, options.prune === true);
    for (const line of formatDifferences(differences)) console.log(line);
    if (differences.length > 0) code = EXIT.invalid;
  });

  withCluster(
    program
      .command('doctor')
      .description('check the cluster against the bundle in DIR and say what to fix (exit 0: healthy, 1: problems found)')
      .argument('[dir]', 'bundle folder', join(root, 'dist')),
  ).action(async (dir: string, options: ClusterOptions) => {
    const components = readBundle(display(dir));
    const [{ diagnose, formatFindings }, { connect }] = await Promise.all([import('./operate/doctor.js'), import('./operate/cluster.js')]);
    const findings = await diagnose(connect(options), components);
    for (const line of formatFindings(findings)) console.log(line);
    if (findings.some((f) => f.severity === 'problem')) code = EXIT.invalid;
  });

  withCluster(
    program
      .command('status')
      .description('every gated PipelineRun (queue, priority, state, place in the queue, how long it waited) and what each ClusterQueue uses of its quota')
      .option('-n, --namespace <name>', 'only the runs of this namespace (default: every namespace)')
      .option('-o, --output <format>', '"table" for people, "json" for scripts', 'table')
      .option('-w, --watch', `print it again every ${WATCH_SECONDS} s until interrupted`),
  ).action(async (options: ClusterOptions & { namespace?: string; output: string; watch?: boolean }) => {
    if (options.output !== 'table' && options.output !== 'json') throw new UsageError(`-o ${options.output}: give "table" or "json"`);
    const [{ gatherStatus, formatStatus }, { connect }] = await Promise.all([import('./operate/status.js'), import('./operate/cluster.js')]);
    const cluster = connect(options);
    for (;;) {
      const report = await gatherStatus(cluster, options.namespace);
      if (options.output === 'json') console.log(JSON.stringify(report, null, options.watch ? undefined : 2));
      else console.log([...(options.watch ? [`--- ${new Date().toISOString()}`] : []), ...formatStatus(report)].join('\n'));
      if (!options.watch) return;
      await new Promise((resolve) => setTimeout(resolve, WATCH_SECONDS * 1000));
    }
  });

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    }
    if (err instanceof ConfigError || err instanceof BundleError || err instanceof UsageError) {
      console.error(`error: ${err.message}`);
      return EXIT.badInput;
    }
    console.error(`error: ${(err as Error).message}`);
    return failure;
  }
  return code;
}

/** How often `status --watch` reads the cluster again. */
const WATCH_SECONDS = 2;

/** Flags that cannot go together or values out of range. */
class UsageError extends Error {}
