/**
 * `npm run bench -- aws-cost [--images N] [--queries Q]`: what the AWS deployment costs per image
 * ingested, per query and per image re-embedded by a rollout, measured from the calls the AWS-mode
 * harness records (test/support/aws): every S3, SQS and S3 Vectors request each function, poller
 * and user makes, API Gateway requests, and Lambda invocations with their durations at the
 * template's memory sizes, multiplied by the list prices in bench/aws-prices.json.
 *
 * Durations are measured on this machine (x86-64), not on Lambda's Arm cores: Lambda GB-s is the
 * least certain line. SQS receives that returned nothing (idle polling) are reported apart.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CopyObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { AwsHarness } from '../test/support/aws/harness';
import type { CallRecord } from '../test/support/aws/gateway';
import { type BenchContext, flag, ROOT, writeResult } from './lib/common';

const prices = JSON.parse(readFileSync(join(ROOT, 'bench', 'aws-prices.json'), 'utf8'));

const S3_PUT_CLASS = new Set([
  'PutObject',
  'CopyObject',
  'CreateMultipartUpload',
  'UploadPart',
  'CompleteMultipartUpload',
  'ListObjectsV2',
  'ListObjects',
  'ListParts',
  'ListMultipartUploads',
]);
const S3_GET_CLASS = new Set(['GetObject', 'HeadObject', 'HeadBucket']);
const S3_FREE = new Set(['DeleteObject', 'DeleteObjects', 'AbortMultipartUpload']);

interface Phase {
  calls: CallRecord[];
  invocations: Record<string, { count: number; ms: number; memoryMb: number }>;
  apiRequests: number;
}

/** Cost lines (dollars) and request counts of a phase, divided by `units`. */
function price(phase: Phase, units: number) {
  const per = (n: number) => n / units;
  const count = (pred: (c: CallRecord) => boolean) => phase.calls.filter(pred).length;
  const s3Put = count((c) => c.service === 's3' && S3_PUT_CLASS.has(c.operation));
  const s3Get = count((c) => c.service === 's3' && S3_GET_CLASS.has(c.operation));
  const s3Delete = count((c) => c.service === 's3' && S3_FREE.has(c.operation));
  const sqs = count((c) => c.service === 'sqs' && !(c.operation === 'ReceiveMessage' && c.returned === 0));
  const emptyPolls = count((c) => c.service === 'sqs' && c.operation === 'ReceiveMessage' && c.returned === 0);
  const putVectors = phase.calls.filter((c) => c.operation === 'PutVectors');
  const putVectorBytes = putVectors.reduce((n, c) => n + (c.logicalBytes ?? 0), 0);
  const queries = count((c) => c.operation === 'QueryVectors');
  const otherVectors = count((c) => c.service === 's3vectors' && c.operation !== 'PutVectors' && c.operation !== 'QueryVectors');
  const lambda = Object.entries(phase.invocations).map(([fn, v]) => ({ fn, invocations: v.count, gbSeconds: (v.ms / 1000) * (v.memoryMb / 1024) }));
  const byOperation: Record<string, number> = {};
  for (const c of phase.calls) byOperation[`${c.service}:${c.operation}`] = (byOperation[`${c.service}:${c.operation}`] ?? 0) + 1;
  const lines = {
    's3 PUT/COPY/POST/LIST': per(s3Put) * (prices.s3.putCopyPostListPer1000 / 1000),
    's3 GET/HEAD': per(s3Get) * (prices.s3.getAndOtherPer1000 / 1000),
    'sqs requests': per(sqs) * (prices.sqs.perMillionRequests / 1e6),
    's3vectors PutVectors (logical GB)': per(putVectorBytes / 1024 ** 3) * prices.s3Vectors.putPerLogicalGb,
    's3vectors QueryVectors': per(queries) * (prices.s3Vectors.queryPerMillion / 1e6),
    'lambda GB-s': per(lambda.reduce((n, l) => n + l.gbSeconds, 0)) * prices.lambda.perGbSecondArm,
    'lambda requests': per(lambda.reduce((n, l) => n + l.invocations, 0)) * (prices.lambda.perMillionRequests / 1e6),
    'api gateway requests': per(phase.apiRequests) * (prices.apiGateway.perMillionRequests / 1e6),
  };
  const total = Object.values(lines).reduce((a, b) => a + b, 0);
  const perMillion = Object.fromEntries(Object.entries(lines).map(([k, v]) => [k, round(v * 1e6)]));
  return {
    requestsPerUnit: {
      s3PutClass: round(per(s3Put)),
      s3GetClass: round(per(s3Get)),
      s3DeleteFree: round(per(s3Delete)),
      sqs: round(per(sqs)),
      putVectorsCalls: round(per(putVectors.length)),
      putVectorsLogicalBytes: round(per(putVectorBytes)),
      queryVectors: round(per(queries)),
      otherS3VectorsUnpriced: round(per(otherVectors)),
      lambda: lambda.map((l) => ({ fn: l.fn, invocations: round(per(l.invocations)), gbSeconds: round(per(l.gbSeconds), 5) })),
      apiGateway: round(per(phase.apiRequests)),
    },
    byOperationPerUnit: Object.fromEntries(Object.entries(byOperation).map(([k, v]) => [k, round(per(v))])),
    emptyPolls,
    dollarsPerMillion: perMillion,
    dollarsPerMillionTotal: round(total * 1e6),
  };
}

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** An ordinary photo stand-in: a 640x480 JPEG with structure and noise (about 60-90 KB). */
async function photo(i: number): Promise<Buffer> {
  const w = 640;
  const h = 480;
  const data = Buffer.alloc(w * h * 3);
  let seed = i * 2654435761;
  for (let y = 0; y < h; y += 1) {
    for (let x = 0; x < w; x += 1) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const o = (y * w + x) * 3;
      data[o] = (x * (1 + (i % 5)) + (seed >>> 28)) & 255;
      data[o + 1] = (y * (1 + (i % 3)) + (seed >>> 27)) & 255;
      data[o + 2] = ((x + y) * (i % 7) + (seed >>> 26)) & 255;
    }
  }
  return sharp(data, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
}

export async function awsCostBench(ctx: BenchContext): Promise<void> {
  const images = Number(flag(ctx.args, 'images') ?? (ctx.quick ? '8' : '200'));
  const queryCount = Number(flag(ctx.args, 'queries') ?? (ctx.quick ? '4' : '100'));
  const h = await AwsHarness.start();
  try {
    const mark = () => ({
      calls: h.gateway.calls.length,
      api: h.api.calls.length,
      inv: Object.fromEntries(Object.entries(h.functions).map(([n, f]) => [n, f.invocations.length])),
    });
    const phaseSince = (m: ReturnType<typeof mark>): Phase => ({
      calls: h.gateway.calls.slice(m.calls).filter((c) => c.role !== 'admin' || c.operation === 'PutObject'),
      apiRequests: h.api.calls.length - m.api,
      invocations: Object.fromEntries(
        Object.entries(h.functions).map(([n, f]) => {
          const inv = f.invocations.slice(m.inv[n]);
          return [n, { count: inv.length, ms: inv.reduce((s, x) => s + x.ms, 0), memoryMb: f.memoryMb }];
        }),
      ),
    });
    const waitIndexed = async (expected: number) => {
      for (let i = 0; i < 600; i += 1) {
        const health = (await h.request('GET', '/health')).body as { indexed: number; pending: number };
        if (health.indexed >= expected && health.pending === 0) return;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error(`not all ${expected} images were indexed:\n${h.logs()}`);
    };

    await h.lifecycleTick();
    await h.waitForTasks();
    await h.lifecycleTick();
    // Warm every function once (cold starts are reported by the embedding bench, not priced per image).
    await h.admin.s3.send(new PutObjectCommand({ Bucket: h.imagesBucket, Key: 'warmup/0.jpg', Body: await photo(0), ContentType: 'image/jpeg' }));
    await waitIndexed(1);
    await h.request('GET', `/neighbors?key=${encodeURIComponent('warmup/0.jpg')}&k=10`);

    console.log(`  ingesting ${images} images (640x480 JPEG) through the AWS composition`);
    const bodies = await Promise.all(Array.from({ length: images }, (_, i) => photo(i + 1)));
    const ingestMark = mark();
    for (const [i, body] of bodies.entries()) {
      await h.admin.s3.send(
        new PutObjectCommand({ Bucket: h.imagesBucket, Key: `photos/${String(i).padStart(6, '0')}.jpg`, Body: body, ContentType: 'image/jpeg' }),
      );
    }
    await waitIndexed(images + 1);
    const ingestPhase = phaseSince(ingestMark);
    // The health polls above are the benchmark's, not ingest's.
    ingestPhase.calls = ingestPhase.calls.filter((c) => !c.role.startsWith('Api'));
    ingestPhase.apiRequests = 0;
    ingestPhase.invocations.api = { count: 0, ms: 0, memoryMb: h.functions.api.memoryMb };

    const queryMark = mark();
    const searchBody = await photo(9999);
    for (let q = 0; q < queryCount; q += 1) {
      if (q % 5 === 4) await h.request('POST', '/search?k=10', { body: searchBody, contentType: 'image/jpeg' });
      else await h.request('GET', `/neighbors?key=${encodeURIComponent(`photos/${String(q % images).padStart(6, '0')}.jpg`)}&k=10`);
    }
    const queryPhase = phaseSince(queryMark);

    // A rollout: v1, a copy of v0 published as a candidate that passed its gate, re-embeds everything.
    const get = async (key: string) =>
      Buffer.from(await (await h.admin.s3.send(new GetObjectCommand({ Bucket: h.artifactsBucket, Key: key }))).Body!.transformToByteArray());
    const manifest = JSON.parse((await get('models/v0/manifest.json')).toString());
    for (const file of ['encoder.onnx', 'encoder.pt']) {
      await h.admin.s3.send(
        new CopyObjectCommand({ Bucket: h.artifactsBucket, Key: `models/v1/${file}`, CopySource: `${h.artifactsBucket}/models/v0/${file}` }),
      );
    }
    const v1 = { ...manifest, version: 'v1', parent: 'v0', createdAt: new Date().toISOString(), gate: { passed: true, reasons: ['benchmark copy of v0'] } };
    await h.admin.s3.send(new PutObjectCommand({ Bucket: h.artifactsBucket, Key: 'models/v1/manifest.json', Body: JSON.stringify(v1) }));
    const pointer = JSON.parse((await get('models/serving.json')).toString());
    await h.admin.s3.send(
      new PutObjectCommand({ Bucket: h.artifactsBucket, Key: 'models/candidate.json', Body: JSON.stringify({ ...pointer, version: 'v1', index: 'emb-v1' }) }),
    );
    const rolloutMark = mark();
    const t0 = Date.now();
    let ticks = 0;
    for (;;) {
      ticks += 1;
      const tick = (await h.lifecycleTick()) as { rollout: { state: string } };
      if (tick.rollout.state === 'flipped') break;
      if (Date.now() - t0 > 600_000) throw new Error('the rollout did not finish in 10 minutes');
      await new Promise((r) => setTimeout(r, 2000));
    }
    const rolloutPhase = phaseSince(rolloutMark);
    const rolloutSeconds = (Date.now() - t0) / 1000;

    const result = {
      machine: 'this machine: 2 cores, x86-64 (Lambda durations measured here, priced at the template memory sizes on Arm)',
      images,
      queries: queryCount,
      prices: 'bench/aws-prices.json',
      perImageIngested: price(ingestPhase, images),
      perQuery: price(queryPhase, queryCount),
      perImageReembeddedByRollout: { ...price(rolloutPhase, images + 1), lifecycleTicks: ticks, seconds: round(rolloutSeconds, 1) },
    };
    const show = (name: string, r: ReturnType<typeof price>) =>
      console.log(
        `  ${name}: $${r.dollarsPerMillionTotal} per million (${Object.entries(r.dollarsPerMillion)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')})`,
      );
    show('ingest', result.perImageIngested);
    show('query', result.perQuery);
    show('rollout re-embedding', result.perImageReembeddedByRollout);
    writeResult(ctx, 'aws-cost', result);
  } finally {
    await h.stop();
  }
}
