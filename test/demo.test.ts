import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from './helpers.js';

const demo = join(root, 'demo', 'demo.sh');

describe('demo/demo.sh', () => {
  it('parses (bash -n)', () => {
    const run = spawnSync('bash', ['-n', demo], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
  });

  it('is shellcheck clean', () => {
    const run = spawnSync('shellcheck', [demo], { encoding: 'utf8' });
    if (run.error) throw new Error('shellcheck is not installed: apt-get install shellcheck (Debian/Ubuntu) or see https://www.shellcheck.net');
    expect(run.status, run.stdout).toBe(0);
  });

  it('checks its prerequisites first and names what is missing', () => {
    const run = spawnSync('/bin/bash', [demo], { encoding: 'utf8', env: { PATH: '/nonexistent', HOME: process.env.HOME } });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('demo.sh needs:');
    expect(run.stderr).toContain('kind (');
    expect(run.stderr).toContain('kubectl (');
    expect(run.stderr).toContain('node 20 or later');
    expect(run.stderr).not.toContain('dist/');
  });
});
