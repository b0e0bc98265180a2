/**
 * Serves a Lambda API Gateway (REST, proxy) handler over local HTTP: each request becomes an
 * APIGatewayProxyEvent, as API Gateway would build it, and the result becomes the response.
 * Bodies over the limit are refused with 413 before they are read in full.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { MAX_BODY_BYTES } from '../functions/api/http';
import { serveConsole, type ConsoleAssets } from './console-assets';

/** Content types API Gateway is configured to pass as binary (base64): see binaryMediaTypes in infra/. */
const BINARY_TYPES = [/^image\//, /^application\/octet-stream/];
/** How much of an oversized body is read and discarded after the 413 before the connection is dropped. */
const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;

export class LocalApiServer {
  private constructor(private readonly server: Server) {}

  /** `console`: the web console's files, served at `/` and under `/console/` before any API route. */
  static async start(
    handler: (e: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>,
    host: string,
    port: number,
    consoleAssets?: ConsoleAssets,
  ): Promise<LocalApiServer> {
    const server = createServer((req, res) => {
      if (consoleAssets && serveConsole(consoleAssets, req, res)) return;
      void serve(handler, req, res);
    });
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => checkContinue(req, res, () => void serve(handler, req, res)));
    server.requestTimeout = 60_000;
    server.headersTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return new LocalApiServer(server);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

async function serve(handler: (e: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const body = await readBody(req);
    if (body === 'too-large') return tooLarge(req, res);
    const result = await handler(toEvent(req, body));
    const payload = result.isBase64Encoded ? Buffer.from(result.body, 'base64') : Buffer.from(result.body ?? '', 'utf8');
    res.writeHead(result.statusCode, { ...(result.headers as Record<string, string>), 'content-length': payload.length }).end(payload);
  } catch (err) {
    // A client that hangs up mid-request is not a server error: nothing to answer, nothing to log.
    if (req.destroyed && ['ECONNRESET', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE'].includes((err as NodeJS.ErrnoException).code ?? '')) return;
    console.error('[api] adapter error', err);
    if (!res.headersSent) {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'internal', message: 'internal error' } }));
    }
  }
}

/** The request body, or 'too-large' as soon as it (declared or received) passes MAX_BODY_BYTES. */
function readBody(req: IncomingMessage): Promise<Buffer | 'too-large'> {
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return Promise.resolve('too-large');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.off('data', onData).off('end', onEnd).off('error', reject);
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve(Buffer.concat(chunks));
    req.on('data', onData).once('end', onEnd).once('error', reject);
  });
}

/**
 * Answers 413 at once but ends the response only once the rest of the body has been read and
 * discarded (up to DRAIN_LIMIT_BYTES): clients that send the whole body before reading the answer
 * (Python's urllib, most SDKs) would otherwise see a broken pipe instead of the 413, since the
 * connection closes when the response ends. A client that sends past the limit is cut off.
 */
function tooLarge(req: IncomingMessage, res: ServerResponse): void {
  const body = JSON.stringify({ error: { code: 'payload_too_large', message: `request body exceeds ${MAX_BODY_BYTES} bytes` } });
  res.writeHead(413, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.write(body);
  let drained = 0;
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_LIMIT_BYTES) {
      res.once('finish', () => req.socket.destroy());
      res.end();
    }
  });
  req.once('end', () => res.end());
  req.resume();
}

/** A client waiting for "100 Continue" is refused before it sends a body over the limit. */
function checkContinue(req: IncomingMessage, res: ServerResponse, serveRequest: () => void): void {
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) {
    const body = JSON.stringify({ error: { code: 'payload_too_large', message: `request body exceeds ${MAX_BODY_BYTES} bytes` } });
    res.writeHead(413, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    return;
  }
  res.writeContinue();
  serveRequest();
}

export function toEvent(req: IncomingMessage, body: Buffer): APIGatewayProxyEvent {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const value = req.rawHeaders[i + 1]!;
    headers[name] = value;
    multiValueHeaders[name] ??= [];
    multiValueHeaders[name].push(value);
  }
  const query: Record<string, string> = {};
  const multiQuery: Record<string, string[]> = {};
  for (const [k, v] of url.searchParams) {
    query[k] = v;
    multiQuery[k] ??= [];
    multiQuery[k].push(v);
  }
  const contentType = String(req.headers['content-type'] ?? '');
  const binary = BINARY_TYPES.some((re) => re.test(contentType));
  const hasQuery = Object.keys(query).length > 0;
  return {
    resource: url.pathname,
    path: url.pathname,
    httpMethod: req.method ?? 'GET',
    headers,
    multiValueHeaders,
    queryStringParameters: hasQuery ? query : null,
    multiValueQueryStringParameters: hasQuery ? multiQuery : null,
    pathParameters: null,
    stageVariables: null,
    body: body.length === 0 ? null : binary ? body.toString('base64') : body.toString('utf8'),
    isBase64Encoded: body.length > 0 && binary,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      authorizer: null,
      protocol: `HTTP/${req.httpVersion}`,
      httpMethod: req.method ?? 'GET',
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        user: null,
        userAgent: String(req.headers['user-agent'] ?? ''),
        userArn: null,
      },
      path: url.pathname,
      stage: 'local',
      requestId: randomUUID(),
      requestTimeEpoch: Date.now(),
      resourceId: 'local',
      resourcePath: url.pathname,
    },
  };
}
