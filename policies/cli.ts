/** The project's CLI: the library's commands (src/cli.ts) over this folder's bundle. */
import { main as run } from '../src/cli.js';
import { APPLIED_COMPONENTS, buildBundle } from './bundle.js';

/** `root` holds policies/ and dist/; `cacheDir` keeps generated code between runs (none: nothing is cached). */
export function main(argv: readonly string[], root: string, cacheDir?: string): Promise<number> {
  return run(argv, { root, cacheDir, buildBundle, appliedComponents: APPLIED_COMPONENTS });
}
