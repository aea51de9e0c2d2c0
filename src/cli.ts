import { join, relative, resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { APPLIED_COMPONENTS, buildBundle } from '../policies/bundle.js';
import { ConfigError, loadConfig } from './config/load.js';
import { renderFiles, writeFiles } from './synth.js';
import { crdFolders, loadCrdSchemas } from './validate/crd-schemas.js';
import { ObjectValidator, validateDir } from './validate/validate.js';

/** Exit codes: 0 ok, 1 invalid output or internal error, 2 bad input (config, usage). */
export const EXIT = { ok: 0, invalid: 1, badInput: 2 } as const;

/**
 * Runs the CLI; `root` is the project folder that holds policies/ and dist/, `cacheDir` where
 * generated code may be kept between runs (none: nothing is cached). Returns the exit code.
 */
export async function main(argv: readonly string[], root: string, cacheDir?: string): Promise<number> {
  const display = (path: string) => {
    const shown = relative(process.cwd(), path) || '.';
    return shown.startsWith('..') ? resolve(path) : shown;
  };
  let code: number = EXIT.ok;
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
      const files = renderFiles(buildBundle(config), APPLIED_COMPONENTS);
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

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    }
    if (err instanceof ConfigError) {
      console.error(`error: ${err.message}`);
      return EXIT.badInput;
    }
    console.error(`error: ${(err as Error).message}`);
    return EXIT.invalid;
  }
  return code;
}
