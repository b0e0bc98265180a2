/** Reading the JSON documents the pipeline stores: bytes -> JSON -> a zod schema, in one step. */
import type { z } from 'zod';

/** Parses `body` (an object's bytes or text) as JSON and validates it with `schema`. */
export function parseJsonObject<S extends z.ZodType>(body: Buffer | string, schema: S): z.output<S> {
  return schema.parse(JSON.parse(typeof body === 'string' ? body : body.toString('utf8')));
}
