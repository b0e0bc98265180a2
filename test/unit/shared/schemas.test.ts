import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderSchemas } from '../../../scripts/export-schemas';

describe('shared JSON schemas', () => {
  it('are committed exactly as generated from shared/schemas.ts (run `npm run schemas` after a change)', () => {
    for (const [file, text] of Object.entries(renderSchemas())) {
      expect(readFileSync(join(__dirname, '../../../schemas', file), 'utf8')).toBe(text);
    }
  });
});
