import { afterEach, describe, expect, it } from 'vitest';
import { ensureKyvernoCli, kyvernoCliPath } from './tools/kyverno-cli.js';
import { tempDir } from './helpers.js';

describe('Kyverno CLI tooling', () => {
  const saved = { PATH: process.env.PATH, TKP_TOOLS_DIR: process.env.TKP_TOOLS_DIR };
  afterEach(() => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  it('names the binary after the pinned version, outside the repo', () => {
    expect(kyvernoCliPath()).toMatch(/\/kyverno-v1\.19\.0-[0-9a-f]{12}$/);
    expect(kyvernoCliPath().startsWith(process.cwd())).toBe(false);
  });

  it('says how to get Go when it has to build the CLI and Go is missing', () => {
    process.env.TKP_TOOLS_DIR = tempDir('tools');
    process.env.PATH = '/nonexistent';
    expect(() => ensureKyvernoCli(() => {})).toThrow(/need Go .* Install Go/);
  });
});
