// The same app as `npm run synth`, for the benchmark's ts-node baseline:
// cdk8s synth --app "node --loader ts-node/esm test/bench/ts-node-app.ts"
import { join } from 'node:path';
import { main } from '../../policies/cli.js';

const root = join(import.meta.dirname, '..', '..');
process.exitCode = await main(['synth', '--out', process.env.CDK8S_OUTDIR ?? join(root, 'dist')], root);
