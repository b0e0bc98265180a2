/** api: the HTTP routes of the user contract, one use case per route. */
import { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { z } from 'zod';
import { BadRequestError, MethodNotAllowedError, NotFoundError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../../shared/errors';
import { API_ROUTES, type ApiRouteKey, routeKey } from '../../shared/api-routes';
import { LabelValueSchema } from '../../shared/schemas';
import { MAX_LABELS_PER_REQUEST, putLabels, type LabelDeps } from '../../shared/use-cases/labels';
import { neighborsOfImage, neighborsOfKey, type QueryDeps } from '../../shared/use-cases/query';
import { health, imageStatus, modelReport, modelsView, type StatusDeps } from '../../shared/use-cases/status';
import { listDeadLetters, redriveDeadLetters, type DeadLetterDeps } from '../../shared/use-cases/dead-letters';
import { rollback } from '../../shared/use-cases/rollback';
import { startTraining, type TrainingDeps } from '../../shared/use-cases/training';
import { importModel, parseInputSize } from '../../shared/use-cases/import-model';
import { listImages } from '../../shared/use-cases/catalog';
import { labelQueue } from '../../shared/use-cases/label-queue';
import { thumbnailOf } from '../../shared/use-cases/thumbnails';
import { bodyBytes, errorResponse, header, json, jsonBody, routePath, SEARCH_MAX_IMAGE_BYTES } from './http';

export type ApiDeps = QueryDeps & StatusDeps & LabelDeps & Omit<TrainingDeps, 'policy'> & DeadLetterDeps;
export type ApiHandler = (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;

const KeySchema = z.string().min(1, 'key is required').max(1024, 'key is at most 1024 bytes');
const KSchema = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined) return 10;
    const k = Number(v);
    if (!/^\d+$/.test(v) || k < 1 || k > 100) {
      ctx.addIssue({ code: 'custom', message: 'k must be an integer from 1 to 100' });
      return z.NEVER;
    }
    return k;
  });
const NeighborsQuery = z.object({ key: KeySchema, k: KSchema, label: LabelValueSchema.optional() });
const SearchQuery = z.object({ k: KSchema, label: LabelValueSchema.optional() });
const LabelItem = z.object({ key: KeySchema, label: LabelValueSchema }).strict();
const LabelsBody = z.union([z.object({ labels: z.array(LabelItem).min(1).max(MAX_LABELS_PER_REQUEST) }).strict(), LabelItem]);
const MaxMinutes = z
  .number()
  .positive()
  .max(24 * 60)
  .optional();
const TrainBody = z.object({ maxMinutes: MaxMinutes }).strict();
const Limit = z
  .string()
  .regex(/^\d+$/, 'limit must be an integer from 1 to 100')
  .transform(Number)
  .pipe(z.number().int().min(1, 'limit must be an integer from 1 to 100').max(100, 'limit must be an integer from 1 to 100'))
  .optional();
const DeadLettersQuery = z.object({ limit: Limit }).strict();
const ImagesQuery = z
  .object({
    prefix: z.string().min(1).max(1024).optional(),
    state: z.enum(['pending', 'indexed', 'quarantined']).optional(),
    label: LabelValueSchema.optional(),
    limit: Limit,
    cursor: z.string().min(1).max(2048).optional(),
  })
  .strict();
const LabelQueueQuery = z.object({ limit: Limit }).strict();
/** Thumbnails change only when their image is uploaded again: browsers may reuse one for 5 minutes, then revalidate. */
const THUMBNAIL_CACHE_CONTROL = 'private, max-age=300';
const RedriveBody = z.object({ queue: z.enum(['ingest', 'embed']).optional() }).strict();
const Numbers = z.array(z.number()).min(1).max(3);
const ImportBody = z
  .object({
    source: z.string().min(1, 'source is the ONNX key under imports/<importId>/ in the artifacts bucket'),
    inputSize: z.union([z.number().int(), z.string()]),
    mean: Numbers.optional(),
    std: Numbers.optional(),
    resize: z.enum(['cover', 'contain', 'fill']).optional(),
    weights: z.string().min(1).optional(),
    arch: z.string().min(1).optional(),
    maxMinutes: MaxMinutes,
  })
  .strict();
const SearchJson = z.object({ image: z.string().min(1, 'image must be base64 image bytes') }).strict();

type Route = (deps: ApiDeps, event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>;

/** One handler per contract route: a route missing here, or one not in the contract, does not compile. */
const handlers: Record<ApiRouteKey, Route> = {
  'GET /health': async (deps) => json(200, await health(deps)),
  'GET /images': async (deps, event) => {
    const q = query(event);
    if (q.key !== undefined) return json(200, await imageStatus(deps, z.object({ key: KeySchema }).parse(q).key));
    const { limit, ...rest } = ImagesQuery.parse(q);
    return json(200, await listImages(deps, { ...rest, limit: limit ?? 50 }));
  },
  'GET /thumbnails': async (deps, event) => {
    const thumb = await thumbnailOf(deps, z.object({ key: KeySchema }).parse(query(event)).key);
    const headers = { etag: thumb.etag, 'cache-control': THUMBNAIL_CACHE_CONTROL };
    if (
      header(event, 'if-none-match')
        ?.split(',')
        .some((t) => t.trim() === thumb.etag)
    )
      return { statusCode: 304, headers, body: '' };
    return { statusCode: 200, headers: { ...headers, 'content-type': 'image/webp' }, body: thumb.webp.toString('base64'), isBase64Encoded: true };
  },
  'GET /label-queue': async (deps, event) => json(200, await labelQueue(deps, LabelQueueQuery.parse(query(event)).limit ?? 20)),
  'GET /neighbors': async (deps, event) => json(200, await neighborsOfKey(deps, NeighborsQuery.parse(query(event)))),
  'POST /search': async (deps, event) => {
    const q = SearchQuery.parse(query(event));
    return json(200, await neighborsOfImage(deps, { ...q, bytes: searchImage(event) }));
  },
  'PUT /labels': async (deps, event) => {
    const body = LabelsBody.parse(jsonBody(event));
    return json(200, await putLabels(deps, 'labels' in body ? body.labels : [body]));
  },
  'GET /models': async (deps) => json(200, await modelsView(deps)),
  'GET /models/report': async (deps, event) =>
    json(200, await modelReport(deps, z.object({ version: z.string().regex(/^v\d+$/, 'version is like v3') }).parse(query(event)).version)),
  'POST /models/rollback': async (deps) => json(200, await rollback(deps)),
  'POST /models/import': async (deps, event) => {
    const { inputSize, ...body } = ImportBody.parse(jsonBody(event));
    return json(202, await importModel(deps, { ...body, ...parseInputSize(inputSize) }));
  },
  'GET /dead-letters': async (deps, event) => json(200, await listDeadLetters(deps, DeadLettersQuery.parse(query(event)).limit ?? 20)),
  'POST /dead-letters/redrive': async (deps, event) =>
    json(200, await redriveDeadLetters(deps, RedriveBody.parse(jsonBody(event, { optional: true }) ?? {}).queue)),
  'POST /train': async (deps, event) =>
    json(202, await startTraining({ ...deps, policy: deps.settings.retrain }, TrainBody.parse(jsonBody(event, { optional: true }) ?? {}))),
};

/** Methods by path, from the contract's route list. */
const routes = new Map<string, Map<string, Route>>();
for (const route of API_ROUTES) {
  const methods = routes.get(route.path) ?? new Map<string, Route>();
  methods.set(route.method, handlers[routeKey(route)]);
  routes.set(route.path, methods);
}

export function createApiHandler(deps: ApiDeps, logger = new Logger({ serviceName: 'api' })): ApiHandler {
  return async (event) => {
    try {
      const methods = routes.get(routePath(event));
      if (!methods) throw new NotFoundError(`no route ${event.httpMethod} ${event.path}`);
      const route = methods.get(event.httpMethod);
      if (!route) throw new MethodNotAllowedError(`${event.httpMethod} is not allowed on ${routePath(event)}; use ${[...methods.keys()].join(', ')}`);
      return await route(deps, event);
    } catch (err) {
      return errorResponse(err, logger);
    }
  };
}

function query(event: APIGatewayProxyEvent): Record<string, string | undefined> {
  return { ...(event.queryStringParameters ?? {}) };
}

function searchImage(event: APIGatewayProxyEvent): Buffer {
  const type = (header(event, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type.startsWith('image/')) {
    const bytes = bodyBytes(event);
    if (bytes.length === 0) throw new BadRequestError('the request body is empty; send the image bytes');
    return withinSearchLimit(bytes);
  }
  if (type === 'application/json') {
    const { image } = SearchJson.parse(jsonBody(event));
    if (!/^[A-Za-z0-9+/=\s_-]+$/.test(image)) throw new BadRequestError('image is not base64');
    return withinSearchLimit(Buffer.from(image, 'base64'));
  }
  throw new UnsupportedMediaTypeError('send the image as Content-Type image/* or as JSON {"image": "<base64>"}');
}

function withinSearchLimit(bytes: Buffer): Buffer {
  if (bytes.length > SEARCH_MAX_IMAGE_BYTES) {
    throw new PayloadTooLargeError(
      `the image is ${bytes.length} bytes; POST /search takes images of at most ${SEARCH_MAX_IMAGE_BYTES} bytes (4 MiB): resize or recompress it, or upload it to the images bucket and use GET /neighbors`,
    );
  }
  return bytes;
}
