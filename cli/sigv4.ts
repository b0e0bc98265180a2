/**
 * SigV4 signing of HTTP requests to the deployed, IAM-authorised API (service `execute-api`),
 * with credentials from the default AWS chain (environment, shared config and SSO, web identity,
 * container and instance roles).
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider, Checksum, SourceData } from '@smithy/types';

/** SHA-256 (and HMAC-SHA-256 with a secret) over node:crypto, in the shape the signer expects. */
export class NodeSha256 implements Checksum {
  private h: Hash | Hmac;
  constructor(private readonly secret?: SourceData) {
    this.h = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(this.secret));
  }
  update(data: Uint8Array | string) {
    this.h.update(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset() {
    this.h = this.fresh();
  }
}

function toBuffer(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data as ArrayBuffer);
}

/** The region of an API Gateway URL (`https://<id>.execute-api.<region>.amazonaws.com/...`), else AWS_REGION. */
export function regionOf(endpoint: string, env: Record<string, string | undefined> = process.env): string {
  const m = /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com/.exec(new URL(endpoint).hostname);
  const region = m?.[1] ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) throw new Error(`cannot tell the region of ${endpoint}: set AWS_REGION`);
  return region;
}

/** A URL's query as the signer takes it: one string per name, or every value of a repeated one. */
export function queryOf(url: URL): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const k of new Set(url.searchParams.keys())) {
    const all = url.searchParams.getAll(k);
    query[k] = all.length === 1 ? all[0]! : all;
  }
  return query;
}

export interface SignedRequestInput {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: Buffer;
}

export class ApiSigner {
  private readonly signer: SignatureV4;

  constructor(region: string, credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider = defaultProvider()) {
    this.signer = new SignatureV4({ service: 'execute-api', region, credentials, sha256: NodeSha256, uriEscapePath: true });
  }

  /** The headers to send: the caller's, plus host, x-amz-date, x-amz-content-sha256, the session token and Authorization. */
  async sign(input: SignedRequestInput): Promise<Record<string, string>> {
    const query = queryOf(input.url);
    const body = input.body ?? Buffer.alloc(0);
    const signed = await this.signer.sign({
      method: input.method,
      protocol: input.url.protocol,
      hostname: input.url.hostname,
      port: input.url.port ? Number(input.url.port) : undefined,
      path: decodeURIComponent(input.url.pathname),
      query,
      headers: {
        ...Object.fromEntries(Object.entries(input.headers).map(([k, v]) => [k.toLowerCase(), v])),
        host: input.url.host,
        'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
      },
      body,
    });
    return signed.headers as Record<string, string>;
  }
}
