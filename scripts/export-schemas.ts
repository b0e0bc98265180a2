/** Writes the shared zod schemas as JSON Schema files, and the artifact key layout, under schemas/ (run: npm run schemas). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { artifactLayoutDocument } from '../shared/artifact-keys';
import { sharedSchemas } from '../shared/schemas';
import { trainerPresetsDocument } from '../shared/trainer-presets';

export function renderSchemas(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, schema] of Object.entries(sharedSchemas)) {
    out[`${name}.schema.json`] = `${JSON.stringify(z.toJSONSchema(schema, { io: 'input' }), null, 2)}\n`;
  }
  out['artifact-keys.json'] = artifactLayoutDocument();
  out['trainer-presets.json'] = trainerPresetsDocument();
  return out;
}

if (require.main === module) {
  const dir = join(__dirname, '..', 'schemas');
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(renderSchemas())) writeFileSync(join(dir, file), text);
  console.log(`wrote ${Object.keys(sharedSchemas).length} schemas to ${dir}`);
}
