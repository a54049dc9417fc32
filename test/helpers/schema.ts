// Validates custody records and log lines against the JSON Schemas in schema/.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './cli.js';

const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
const load = (f: string) => JSON.parse(readFileSync(path.join(REPO_ROOT, 'schema', f), 'utf8')) as object;
ajv.addSchema(load('custody.schema.json'));
ajv.addSchema(load('event.schema.json'));

function check(id: string, value: unknown): string[] {
  const validate = ajv.getSchema(id);
  if (!validate) throw new Error(`no schema ${id}`);
  return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}

export const custodyProblems = (v: unknown) => check('https://custos.invalid/schema/custody.schema.json', v);
export const eventProblems = (v: unknown) => check('https://custos.invalid/schema/event.schema.json', v);
