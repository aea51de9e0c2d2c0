import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { ensureTool, TOOLS } from '../tools/go-tools.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kyvernoCli: string;
  }
}

/** Builds the Kyverno CLI once per `npm test`, before any suite runs. */
export default function setup(project: TestProject): void {
  project.provide('kyvernoCli', ensureTool(TOOLS.kyvernoCli).kyverno);
}
