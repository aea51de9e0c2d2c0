import { afterEach, describe, expect, it } from 'vitest';
import { ensureTool, TOOLS, toolDir } from './tools/go-tools.js';
import { tempDir } from './helpers.js';

describe('Go-built test tools', () => {
  const saved = { PATH: process.env.PATH, TKP_TOOLS_DIR: process.env.TKP_TOOLS_DIR };
  afterEach(() => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  it('cache each tool outside the repo under a hash of how it is built', () => {
    const dir = toolDir(TOOLS.kyvernoCli);
    expect(dir).toMatch(/\/kyverno-cli-[0-9a-f]{12}$/);
    expect(dir.startsWith(process.cwd())).toBe(false);
    expect(toolDir(TOOLS.kwok)).not.toBe(toolDir({ ...TOOLS.kwok, version: 'v0.8.1' }));
  });

  it('say how to get Go when one must be built and Go is missing', () => {
    process.env.TKP_TOOLS_DIR = tempDir('tools');
    process.env.PATH = '/nonexistent';
    expect(() => ensureTool(TOOLS.kyvernoCli, () => {})).toThrow(/need Go .* Install Go/);
  });
});
