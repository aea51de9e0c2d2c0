import { E2E_TOOLS, ensureTool } from '../tools/go-tools.js';

/**
 * Builds every engine of the control plane before any e2e suite runs: a cold build takes about
 * 20 minutes on 2 cores, longer than any hook should wait.
 */
export default function setup(): void {
  for (const tool of E2E_TOOLS) ensureTool(tool);
}
