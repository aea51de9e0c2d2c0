import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Ajv, type AnySchema, type ValidateFunction } from 'ajv';
import standalone from 'ajv/dist/standalone/index.js';

/**
 * An ajv validator of `schema`. Generating a validator is a third of synth's start-up, so with a
 * `cacheDir` the generated code is kept there, under a hash of the schema, and reused.
 */
export function schemaValidator<T>(schema: AnySchema, cacheDir?: string): ValidateFunction<T> {
  const options = { allErrors: false, strict: true, verbose: true, code: { source: true } } as const;
  if (!cacheDir) return new Ajv(options).compile<T>(schema);
  const hash = createHash('sha256').update(JSON.stringify(schema)).digest('hex').slice(0, 16);
  const cached = join(cacheDir, `validator-${hash}.cjs`);
  if (existsSync(cached)) return createRequire(cached)(cached) as ValidateFunction<T>;
  const ajv = new Ajv(options);
  const validate = ajv.compile<T>(schema);
  mkdirSync(cacheDir, { recursive: true });
  // Written beside and renamed: parallel runs never load half a file.
  writeFileSync(`${cached}.${process.pid}`, standalone.default(ajv, validate));
  renameSync(`${cached}.${process.pid}`, cached);
  return validate;
}
