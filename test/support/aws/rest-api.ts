/**
 * API Gateway (REST API, Lambda proxy integration) as the template configures it: the resource
 * tree and methods, IAM (SigV4) authorization on every method, required query parameters
 * validated at the edge, binary media types delivered base64-encoded, and the documented limits:
 * 10 MB request payload (413), Lambda's 6 MB synchronous payload (the invocation fails: 500), and
 * the 29 s integration timeout (504). The stage's base path is `/<stage>`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256, queryOf } from '../../../cli/sigv4';
import { AWS_LIMITS } from '../../../shared/aws-limits';
import { ACCOUNT, REGION, type Deployment } from './cfn';
import { json } from './gateway';
import type { LambdaFunction } from './lambda';

interface Method {
  httpMethod: string;
  path: string;
  authorization: string;
  requiredQuery: string[];
}

export interface ApiCaller {
  accessKeyId: string;
  secretAccessKey: string;
}

export class RestApiStandIn {
  private server?: Server;
  private readonly methods: Method[] = [];
  private readonly binaryTypes: string[];
  readonly stage: string;
  readonly calls: Array<{ method: string; path: string; status: number; ms: number }> = [];
  url = '';

  constructor(
    deployment: Deployment,
    /** The api function (set once the harness has started it). */
    public fn: LambdaFunction,
    private readonly callers: ApiCaller[],
  ) {
    const [[apiId, api]] = deployment.resources('AWS::ApiGateway::RestApi') as unknown as [[string, { Properties: Record<string, unknown> }]];
    this.binaryTypes = (api.Properties.BinaryMediaTypes as string[] | undefined) ?? [];
    const resources = Object.fromEntries(deployment.resources('AWS::ApiGateway::Resource'));
    const pathOf = (ref: unknown): string => {
      const id = (ref as { Ref?: string }).Ref;
      if (!id || !resources[id]) return '';
      return `${pathOf(resources[id].Properties!.ParentId)}/${resources[id].Properties!.PathPart}`;
    };
    for (const [, m] of deployment.resources('AWS::ApiGateway::Method')) {
      const p = m.Properties!;
      const params = (p.RequestParameters ?? {}) as Record<string, boolean>;
      this.methods.push({
        httpMethod: String(p.HttpMethod),
        path: pathOf(p.ResourceId) || '/',
        authorization: String(p.AuthorizationType),
        requiredQuery: Object.entries(params)
          .filter(([k, required]) => required && k.startsWith('method.request.querystring.'))
          .map(([k]) => k.slice('method.request.querystring.'.length)),
      });
    }
    const [[, stage]] = deployment.resources('AWS::ApiGateway::Stage') as unknown as [[string, { Properties: Record<string, unknown> }]];
    this.stage = String(stage.Properties.StageName);
    this.apiId = deployment.ref(apiId);
  }

  private readonly apiId: string;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const started = performance.now();
      this.handle(req, res)
        .then((status) => this.calls.push({ method: req.method ?? '', path: req.url ?? '', status, ms: performance.now() - started }))
        .catch((err) => {
          if (!res.headersSent) this.reply(res, 500, { message: `harness error: ${(err as Error).message}` });
        });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/${this.stage}`;
    return this.url;
  }

  async stop() {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private reply(res: ServerResponse, status: number, body: unknown, errorType?: string): number {
    json(res, status, body, errorType);
    return status;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<number> {
    const url = new URL(req.url ?? '/', 'http://x');
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > AWS_LIMITS.apiGateway.maxPayloadBytes) {
      req.resume();
      return this.reply(res, 413, { message: 'Request Too Long' });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > AWS_LIMITS.apiGateway.maxPayloadBytes) return this.reply(res, 413, { message: 'Request Too Long' });
      chunks.push(c as Buffer);
    }
    const body = Buffer.concat(chunks);
    if (!url.pathname.startsWith(`/${this.stage}/`) && url.pathname !== `/${this.stage}`)
      return this.reply(res, 403, { message: 'Forbidden' }, 'ForbiddenException');
    const path = url.pathname.slice(this.stage.length + 1) || '/';
    const method = this.methods.find((m) => m.path === path && m.httpMethod === req.method);
    // API Gateway answers an unknown resource or method this way (not 404) when IAM authorization is on.
    if (!method) return this.reply(res, 403, { message: 'Missing Authentication Token' }, 'MissingAuthenticationTokenException');
    if (method.authorization === 'AWS_IAM') {
      const problem = await this.verifySignature(req, url, body);
      if (problem)
        return this.reply(res, 403, { message: problem }, problem.startsWith('Missing') ? 'MissingAuthenticationTokenException' : 'InvalidSignatureException');
    }
    const missing = method.requiredQuery.filter((q) => !url.searchParams.has(q));
    if (missing.length > 0) return this.reply(res, 400, { message: `Missing required request parameters: [${missing.join(', ')}]` }, 'BadRequestException');

    const contentType = String(req.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim();
    const binary = this.isBinary(contentType);
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : String(v)]));
    const query = [...url.searchParams.keys()].length > 0 ? Object.fromEntries(url.searchParams) : null;
    const event = {
      resource: path,
      path,
      httpMethod: req.method,
      headers,
      multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
      queryStringParameters: query,
      multiValueQueryStringParameters: query ? Object.fromEntries([...url.searchParams.keys()].map((k) => [k, url.searchParams.getAll(k)])) : null,
      pathParameters: null,
      stageVariables: null,
      requestContext: {
        accountId: ACCOUNT,
        apiId: this.apiId,
        stage: this.stage,
        httpMethod: req.method,
        resourcePath: path,
        path: `/${this.stage}${path}`,
        requestId: `req-${Date.now()}`,
      },
      body: body.length === 0 ? null : binary ? body.toString('base64') : body.toString('utf8'),
      isBase64Encoded: body.length > 0 && binary,
    };
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), AWS_LIMITS.apiGateway.integrationTimeoutMs).unref());
    const out = await Promise.race([this.fn.invoke(event), timeout]);
    if (out === 'timeout') return this.reply(res, 504, { message: 'Endpoint request timed out' });
    // A failed invocation (payload too large, an unhandled error, a timeout) reaches the client as a 500/502, never the function's answer.
    if (out.error) return this.reply(res, out.error.errorType === 'RequestEntityTooLargeException' ? 500 : 502, { message: 'Internal server error' });
    const result = out.result as { statusCode: number; headers?: Record<string, string>; body?: string; isBase64Encoded?: boolean };
    // A base64 body is decoded only when the client's first Accept value is a binary media type, as
    // API Gateway documents; otherwise the client receives the base64 text.
    const firstAccept = String(req.headers.accept ?? '')
      .split(',')[0]!
      .split(';')[0]!
      .trim();
    const decode = result.isBase64Encoded === true && this.isBinary(firstAccept);
    const payload = result.body === undefined ? Buffer.alloc(0) : decode ? Buffer.from(result.body, 'base64') : Buffer.from(result.body, 'utf8');
    res.writeHead(result.statusCode, { ...(result.headers ?? {}), 'content-length': payload.length });
    res.end(payload);
    return result.statusCode;
  }

  private isBinary(mediaType: string): boolean {
    return this.binaryTypes.some((t) => new RegExp(`^${t.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(mediaType));
  }

  /** Recomputes the SigV4 signature over the headers the client signed, with the caller's secret. */
  private async verifySignature(req: IncomingMessage, url: URL, body: Buffer): Promise<string | undefined> {
    const auth = String(req.headers.authorization ?? '');
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)$/.exec(auth);
    if (!m) return 'Missing Authentication Token';
    const [, accessKeyId, , region, service, signedHeaders, signature] = m as unknown as string[];
    const caller = this.callers.find((c) => c.accessKeyId === accessKeyId);
    if (!caller) return 'The security token included in the request is invalid.';
    if (service !== 'execute-api' || region !== REGION) return `Credential should be scoped to correct service: 'execute-api' in ${REGION}.`;
    const names = signedHeaders!.split(';');
    const headers: Record<string, string> = {};
    for (const name of names) headers[name] = String(req.headers[name] ?? '');
    const amzDate = String(req.headers['x-amz-date'] ?? '');
    const date = new Date(
      `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
    );
    if (Number.isNaN(date.getTime()) || Math.abs(Date.now() - date.getTime()) > 5 * 60_000) return 'Signature expired or X-Amz-Date missing';
    const signer = new SignatureV4({
      service: 'execute-api',
      region: REGION,
      credentials: {
        accessKeyId: accessKeyId!,
        secretAccessKey: caller.secretAccessKey,
        ...(req.headers['x-amz-security-token'] ? { sessionToken: String(req.headers['x-amz-security-token']) } : {}),
      },
      sha256: NodeSha256,
      uriEscapePath: true,
    });
    const query = queryOf(url);
    const signed = await signer.sign(
      { method: req.method ?? 'GET', protocol: 'http:', hostname: url.hostname, path: decodeURIComponent(url.pathname), query, headers, body },
      { signingDate: date, signableHeaders: new Set(names), unsignableHeaders: new Set() },
    );
    const expected = /Signature=([0-9a-f]+)/.exec(String(signed.headers.authorization))?.[1];
    if (expected !== signature) return 'The request signature we calculated does not match the signature you provided.';
    return undefined;
  }
}
