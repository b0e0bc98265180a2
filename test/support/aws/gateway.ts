/**
 * The AWS endpoint of the AWS-mode harness: every SDK call of the functions (and of the trainer
 * task, and of the SQS pollers acting for a function) arrives here signed with its role's access
 * key, is classified into the IAM action(s) and resource ARN(s) AWS would authorize, evaluated
 * against that role's policies from the synthesized template, and then forwarded to moto.
 *
 * What AWS does and moto does not, encoded from AWS's documentation:
 * - S3 answers a read of a missing key with 403 AccessDenied, not 404, when the caller lacks
 *   s3:ListBucket on the bucket.
 * - S3 event notifications (as the template's bucket notification configures them, delivered
 *   only when the queue policy lets s3.amazonaws.com send), with sequencers.
 * - S3 Vectors limits (topK <= 100, PutVectors/DeleteVectors <= 500, GetVectors <= 100, metadata
 *   sizes) and QueryVectors itself, which moto lacks: an exact search over the index's vectors
 *   (listed from moto), the narrowest stand-in for the documented operation.
 * - SQS StartMessageMoveTask (moto answers 500): moves a DLQ's messages back to their source queue.
 * - ECS RunTask: authorized (with iam:PassRole for the task's roles) and handed to the harness,
 *   which runs the trainer container's command locally under the task role.
 * A call the role may not make is answered with AccessDenied and recorded as a violation.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetIndexCommand, paginateListVectors, S3VectorsClient } from '@aws-sdk/client-s3vectors';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { s3EventBody, type S3EventInput } from '../../../shared/s3-event';
import { AWS_LIMITS } from '../../../shared/aws-limits';
import { ACCOUNT, type Deployment, queueArnOf, queueUrlOf, REGION } from './cfn';
import type { IamPolicies } from './iam';

export const ADMIN_ACCESS_KEY = 'harness-admin';

export interface CallRecord {
  /** The role's logical id (or the admin key). */
  role: string;
  service: string;
  /** The operation, e.g. `GetObject`, `SendMessageBatch`. */
  operation: string;
  /** The IAM actions authorized for it. */
  actions: string[];
  resource: string;
  status: number;
  /** S3 reads: whether the key existed. */
  existed?: boolean;
  ms: number;
  /** Items in a batch call (vectors, messages, keys); 1 otherwise. */
  items: number;
  /** ReceiveMessage: how many messages came back (an empty poll is 0). */
  returned?: number;
  /** Request body bytes. */
  bytesIn: number;
  /** PutVectors: the logical bytes written (vector data, keys, metadata), which S3 Vectors bills. */
  logicalBytes?: number;
  at: number;
}

export interface Violation {
  role: string;
  operation: string;
  action: string;
  resource: string;
  result: string;
}

interface Authorization {
  action: string;
  resource: string;
  context?: Record<string, string>;
}

interface Classified {
  logicalBytes?: number;
  service: string;
  operation: string;
  checks: Authorization[];
  items: number;
  /** The primary resource, for the record. */
  resource: string;
}

export interface RunTaskRequest {
  role: string;
  cluster: string;
  taskDefinition: string;
  command: string[];
}

type Fault = (c: Classified & { role: string }) => boolean;

interface NotificationTarget {
  queueArn: string;
  events: string[];
}

/** An AWS JSON answer (with the error type header AWS services set on errors). */
export const json = (res: ServerResponse, status: number, body: unknown, errorType?: string) => {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
  });
  res.end(text);
};

export class AwsGateway {
  readonly calls: CallRecord[] = [];
  readonly violations: Violation[] = [];
  private server?: Server;
  private readonly roles = new Map<string, string>();
  private readonly notifications = new Map<string, NotificationTarget[]>();
  private readonly faults: Fault[] = [];
  private sequence = 0x1000_0000_0000n;
  private readonly sqs: SQSClient;
  private readonly vectors: S3VectorsClient;
  endpoint = '';
  onRunTask: (request: RunTaskRequest) => Promise<void> = async () => {
    throw new Error('no trainer runner configured');
  };

  private iam!: IamPolicies;
  private deployment!: Deployment;

  constructor(private readonly moto: string) {
    const direct = { endpoint: moto, region: REGION, credentials: { accessKeyId: ADMIN_ACCESS_KEY, secretAccessKey: 'x' } };
    this.sqs = new SQSClient(direct);
    this.vectors = new S3VectorsClient(direct);
  }

  /** The deployment is known once the gateway listens (its queue URLs point here). */
  configure(deployment: Deployment, iam: IamPolicies) {
    this.deployment = deployment;
    this.iam = iam;
    for (const [, n] of deployment.resources('Custom::S3BucketNotifications')) {
      const props = deployment.resolve(n.Properties) as {
        BucketName: string;
        NotificationConfiguration: { QueueConfigurations?: Array<{ QueueArn: string; Events: string[] }> };
      };
      this.notifications.set(
        props.BucketName,
        (props.NotificationConfiguration.QueueConfigurations ?? []).map((q) => ({ queueArn: q.QueueArn, events: q.Events })),
      );
    }
  }

  /** Credentials for a role: the access key names the role, as an assumed-role session's does in AWS. */
  credentialsFor(roleLogicalId: string) {
    const accessKeyId = `role-${roleLogicalId}`;
    this.roles.set(accessKeyId, roleLogicalId);
    return { accessKeyId, secretAccessKey: 'harness-secret' };
  }

  /** A user's access key, allowed everything (a person with admin rights uploading with the CLI or aws s3). */
  trustUser(accessKeyId: string) {
    this.roles.set(accessKeyId, 'admin');
  }

  /** Answers matching calls with a 500 InternalError (a transient failure) while `fault` says so. */
  injectFault(fault: Fault): () => void {
    this.faults.push(fault);
    return () => this.faults.splice(this.faults.indexOf(fault), 1);
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        if (!res.headersSent) json(res, 500, { message: `harness error: ${(err as Error).stack}` });
        else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 1000;
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.endpoint;
  }

  async stop(): Promise<void> {
    this.sqs.destroy();
    this.vectors.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const started = performance.now();
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const auth = /Credential=([^/]+)\/\d{8}\/[^/]+\/([^/]+)\//.exec(req.headers.authorization ?? '');
    if (!auth) return json(res, 403, { message: 'the harness only accepts SigV4-signed requests' }, 'MissingAuthenticationTokenException');
    const [, accessKeyId, service] = auth as unknown as [string, string, string];
    const role = accessKeyId === ADMIN_ACCESS_KEY ? 'admin' : this.roles.get(accessKeyId);
    const admin = role === 'admin';
    if (!role) return json(res, 403, { message: `unknown access key ${accessKeyId}` }, 'InvalidClientTokenId');
    const url = new URL(req.url ?? '/', 'http://x');
    const classified = this.classify(service, req.method ?? 'GET', url, req.headers, body);
    let returned: number | undefined;
    const record = (status: number, existed?: boolean) =>
      this.calls.push({
        ...(returned === undefined ? {} : { returned }),
        ...(classified.logicalBytes === undefined ? {} : { logicalBytes: classified.logicalBytes }),
        bytesIn: body.length,
        role,
        service: classified.service,
        operation: classified.operation,
        actions: classified.checks.map((c) => c.action),
        resource: classified.resource,
        status,
        ...(existed === undefined ? {} : { existed }),
        ms: performance.now() - started,
        items: classified.items,
        at: Date.now(),
      });

    if (!admin) {
      if (classified.operation === 'Unclassified') {
        this.violations.push({
          role,
          operation: `${req.method} ${req.url}`,
          action: '?',
          resource: '?',
          result: `the harness cannot tell which ${service} action this is`,
        });
        record(403);
        return this.denied(res, service, req.method === 'HEAD');
      }
      for (const check of classified.checks) {
        const decision = await this.iam.authorize(role, check.action, check.resource, check.context);
        if (!decision.allowed) {
          this.violations.push({ role, operation: classified.operation, action: check.action, resource: check.resource, result: decision.result });
          record(403);
          return this.denied(res, service, req.method === 'HEAD');
        }
      }
      const limit = this.limitViolation(classified, body);
      if (limit) {
        record(400);
        return json(res, 400, { message: limit }, 'ValidationException');
      }
      if (this.faults.some((f) => f({ ...classified, role }))) {
        record(500);
        if (service === 's3') return this.s3Error(res, 500, 'InternalError', 'We encountered an internal error. Please try again.', req.method === 'HEAD');
        return json(res, 500, { message: 'injected fault' }, 'InternalServerError');
      }
    }

    if (service === 's3vectors' && classified.operation === 'QueryVectors') {
      const status = await this.queryVectors(res, JSON.parse(body.toString('utf8')));
      return record(status);
    }
    if (service === 'sqs' && classified.operation === 'StartMessageMoveTask') {
      const status = await this.startMessageMoveTask(res, JSON.parse(body.toString('utf8')));
      return record(status);
    }
    if (service === 'ecs' && classified.operation === 'RunTask') {
      const input = JSON.parse(body.toString('utf8'));
      const command = (input.overrides?.containerOverrides?.[0]?.command ?? []) as string[];
      await this.onRunTask({ role, cluster: input.cluster, taskDefinition: input.taskDefinition, command });
      json(res, 200, { tasks: [{ taskArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:task/${Date.now()}`, lastStatus: 'PROVISIONING' }], failures: [] });
      return record(200);
    }

    if (service === 's3vectors' && classified.operation === 'CreateIndex') {
      const input = JSON.parse(body.toString('utf8'));
      this.nonFilterableByIndex.set(classified.resource, new Set(input.metadataConfiguration?.nonFilterableMetadataKeys ?? []));
    }
    // S3 deletes: whether the key existed decides whether S3 sends an ObjectRemoved event.
    const deletedKeys = service === 's3' ? await this.existingDeleteTargets(classified, body) : [];
    const upstream = await this.forward(req, body);
    let status = upstream.status;
    let existed: boolean | undefined;
    if (service === 's3' && (classified.operation === 'GetObject' || classified.operation === 'HeadObject')) {
      existed = status !== 404;
      if (status === 404 && !admin) {
        const bucketArn = `arn:aws:s3:::${classified.resource.slice(13).split('/')[0]}`;
        const list = await this.iam.authorize(role, 's3:ListBucket', bucketArn);
        if (!list.allowed) {
          // AWS: "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403".
          status = 403;
          this.violations.push({
            role,
            operation: classified.operation,
            action: 's3:ListBucket',
            resource: bucketArn,
            result: `read of a missing key (${classified.resource}) without s3:ListBucket: S3 answers 403 AccessDenied, not 404`,
          });
          record(403, false);
          return this.s3Error(res, 403, 'AccessDenied', 'Access Denied', req.method === 'HEAD');
        }
      }
    }
    if (service === 'sqs' && classified.operation === 'ReceiveMessage' && status === 200) {
      returned = (JSON.parse(upstream.body.toString('utf8') || '{}').Messages ?? []).length;
    }
    const headers = { ...upstream.headers };
    delete headers['transfer-encoding'];
    delete headers.connection;
    headers['content-length'] = String(upstream.body.length);
    res.writeHead(status, headers);
    res.end(upstream.body);
    record(status, existed);
    if (service === 's3' && status < 300) await this.notify(classified, upstream.headers, deletedKeys);
  }

  private denied(res: ServerResponse, service: string, head: boolean) {
    if (service === 's3') return this.s3Error(res, 403, 'AccessDenied', 'Access Denied', head);
    return json(
      res,
      service === 'sqs' ? 400 : 403,
      { __type: 'AccessDeniedException', message: 'User is not authorized to perform this action' },
      'AccessDeniedException',
    );
  }

  private s3Error(res: ServerResponse, status: number, code: string, message: string, head: boolean) {
    const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
    res.writeHead(status, { 'content-type': 'application/xml', 'content-length': head ? 0 : Buffer.byteLength(xml) });
    res.end(head ? undefined : xml);
  }

  private forward(req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
    const target = new URL(this.moto);
    return new Promise((resolve, reject) => {
      const headers = { ...req.headers, 'content-length': String(body.length) };
      delete headers['transfer-encoding'];
      const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (upRes) => {
        const chunks: Buffer[] = [];
        upRes.on('data', (c: Buffer) => chunks.push(c));
        upRes.on('end', () =>
          resolve({
            status: upRes.statusCode ?? 500,
            headers: Object.fromEntries(Object.entries(upRes.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)])),
            body: Buffer.concat(chunks),
          }),
        );
        upRes.on('error', reject);
      });
      up.on('error', reject);
      up.end(body);
    });
  }

  // ---- classification: request -> IAM actions and resources ------------------------------------

  private classify(service: string, method: string, url: URL, headers: IncomingMessage['headers'], body: Buffer): Classified {
    if (service === 's3') return classifyS3(method, url, headers, body);
    const target = String(headers['x-amz-target'] ?? '');
    if (service === 'sqs') {
      const op = target.split('.')[1] ?? 'Unclassified';
      const input = body.length ? JSON.parse(body.toString('utf8')) : {};
      const queueArn = (url: string | undefined) => (url ? queueArnOf(url) : '?');
      const actionOf: Record<string, string> = {
        SendMessageBatch: 'SendMessage',
        DeleteMessageBatch: 'DeleteMessage',
        ChangeMessageVisibilityBatch: 'ChangeMessageVisibility',
      };
      if (op === 'StartMessageMoveTask') {
        const source = input.SourceArn as string;
        const destination = (input.DestinationArn as string | undefined) ?? this.sourceQueueOf(source);
        // As documented: the caller needs these on the DLQ, and SendMessage on the destination.
        return {
          service,
          operation: op,
          items: 1,
          resource: source,
          checks: [
            ...['sqs:StartMessageMoveTask', 'sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'].map((action) => ({
              action,
              resource: source,
            })),
            { action: 'sqs:SendMessage', resource: destination },
          ],
        };
      }
      if (op === 'ListMessageMoveTasks')
        return { service, operation: op, items: 1, resource: input.SourceArn, checks: [{ action: 'sqs:ListMessageMoveTasks', resource: input.SourceArn }] };
      const resource = queueArn(input.QueueUrl);
      const items = Array.isArray(input.Entries) ? input.Entries.length : op === 'ReceiveMessage' ? (input.MaxNumberOfMessages ?? 1) : 1;
      return { service, operation: op, items, resource, checks: [{ action: `sqs:${actionOf[op] ?? op}`, resource }] };
    }
    if (service === 's3vectors') {
      const op = url.pathname.slice(1);
      const input = body.length ? JSON.parse(body.toString('utf8')) : {};
      const bucket = (input.vectorBucketName as string | undefined) ?? String(input.vectorBucketArn ?? input.indexArn ?? '').split('/')[1] ?? '?';
      const bucketArn = `arn:aws:s3vectors:${REGION}:${ACCOUNT}:bucket/${bucket}`;
      const index = (input.indexName as string | undefined) ?? String(input.indexArn ?? '').split('/')[3];
      const resource = index ? `${bucketArn}/index/${index}` : bucketArn;
      const items = Array.isArray(input.vectors) ? input.vectors.length : Array.isArray(input.keys) ? input.keys.length : 1;
      // GetVectors and QueryVectors with metadata also need s3vectors:GetVectors (documented for QueryVectors with returnMetadata/filter).
      const checks = [{ action: `s3vectors:${op}`, resource }];
      if (op === 'QueryVectors' && (input.returnMetadata || input.filter)) checks.push({ action: 's3vectors:GetVectors', resource });
      const logicalBytes =
        op === 'PutVectors'
          ? (input.vectors as Array<{ key: string; data: { float32: number[] }; metadata?: unknown }>).reduce(
              (n, v) => n + 4 * v.data.float32.length + Buffer.byteLength(v.key) + Buffer.byteLength(JSON.stringify(v.metadata ?? {})),
              0,
            )
          : undefined;
      return { service, operation: op, items, resource, checks, ...(logicalBytes === undefined ? {} : { logicalBytes }) };
    }
    if (service === 'ecs') {
      const op = target.split('.')[1] ?? 'Unclassified';
      const input = body.length ? JSON.parse(body.toString('utf8')) : {};
      if (op !== 'RunTask') return { service, operation: 'Unclassified', items: 1, resource: '?', checks: [] };
      const taskDef = String(input.taskDefinition);
      const [, td] = this.deployment.resources('AWS::ECS::TaskDefinition')[0]!;
      const roles = [td.Properties!.TaskRoleArn, td.Properties!.ExecutionRoleArn].filter(Boolean).map((r) => this.deployment.resolveString(r));
      return {
        service,
        operation: op,
        items: 1,
        resource: taskDef,
        checks: [
          { action: 'ecs:RunTask', resource: taskDef, context: { 'ecs:cluster': String(input.cluster) } },
          ...roles.map((r) => ({ action: 'iam:PassRole', resource: r, context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } })),
        ],
      };
    }
    return { service, operation: 'Unclassified', items: 1, resource: '?', checks: [] };
  }

  private sourceQueueOf(dlqArn: string): string {
    for (const [, q] of this.deployment.resources('AWS::SQS::Queue')) {
      const redrive = q.Properties?.RedrivePolicy ? (this.deployment.resolve(q.Properties.RedrivePolicy) as { deadLetterTargetArn: string }) : undefined;
      if (redrive?.deadLetterTargetArn === dlqArn) return queueArnOf(this.deployment.resolveString(q.Properties!.QueueName));
    }
    return '?';
  }

  /** Documented request limits moto does not check. */
  private limitViolation(c: Classified, body: Buffer): string | undefined {
    const L = AWS_LIMITS;
    if (c.service === 's3vectors') {
      const input = body.length ? JSON.parse(body.toString('utf8')) : {};
      if (c.operation === 'PutVectors' && c.items > L.s3Vectors.putVectorsPerCall)
        return `PutVectors takes at most ${L.s3Vectors.putVectorsPerCall} vectors, got ${c.items}`;
      if (c.operation === 'DeleteVectors' && c.items > L.s3Vectors.deleteVectorsPerCall)
        return `DeleteVectors takes at most ${L.s3Vectors.deleteVectorsPerCall} keys, got ${c.items}`;
      if (c.operation === 'GetVectors' && c.items > L.s3Vectors.getVectorsPerCall)
        return `GetVectors takes at most ${L.s3Vectors.getVectorsPerCall} keys, got ${c.items}`;
      if (c.operation === 'QueryVectors' && !(input.topK >= 1 && input.topK <= L.s3Vectors.maxTopK))
        return `topK must be between 1 and ${L.s3Vectors.maxTopK}, got ${input.topK}`;
      if (body.length > L.s3Vectors.requestPayloadBytes) return `request payload is ${body.length} bytes; the limit is ${L.s3Vectors.requestPayloadBytes}`;
      if (c.operation === 'PutVectors') {
        for (const v of input.vectors as Array<{ key: string; metadata?: Record<string, unknown> }>) {
          const problem = metadataProblem(v.metadata ?? {}, this.nonFilterableByIndex.get(c.resource) ?? new Set());
          if (problem) return `vector ${v.key}: ${problem}`;
        }
      }
    }
    if (c.service === 'sqs') {
      const input = body.length ? JSON.parse(body.toString('utf8')) : {};
      if (Array.isArray(input.Entries) && input.Entries.length > L.sqs.maxBatchEntries) return `at most ${L.sqs.maxBatchEntries} entries per batch`;
      const bodies: string[] = Array.isArray(input.Entries)
        ? input.Entries.map((e: { MessageBody?: string }) => e.MessageBody ?? '')
        : input.MessageBody
          ? [input.MessageBody]
          : [];
      const total = bodies.reduce((n, b) => n + Buffer.byteLength(b), 0);
      if (total > L.sqs.maxMessageBytes) return `messages total ${total} bytes; the limit is ${L.sqs.maxMessageBytes}`;
      if (c.operation === 'ReceiveMessage' && input.MaxNumberOfMessages > L.sqs.maxBatchEntries)
        return `MaxNumberOfMessages is at most ${L.sqs.maxBatchEntries}`;
    }
    return undefined;
  }

  /** Non-filterable metadata keys per index, as its CreateIndex call declared them. */
  private readonly nonFilterableByIndex = new Map<string, Set<string>>();

  // ---- stand-ins ---------------------------------------------------------------------------------

  private async queryVectors(res: ServerResponse, input: Record<string, unknown>): Promise<number> {
    const vectorBucketName = (input.vectorBucketName as string | undefined) ?? String(input.indexArn ?? '').split('/')[1];
    const indexName = (input.indexName as string | undefined) ?? String(input.indexArn ?? '').split('/')[3];
    let metric = 'cosine';
    try {
      const idx = await this.vectors.send(new GetIndexCommand({ vectorBucketName, indexName }));
      metric = idx.index?.distanceMetric ?? 'cosine';
    } catch (err) {
      json(res, 404, { message: (err as Error).message }, 'NotFoundException');
      return 404;
    }
    const query = (input.queryVector as { float32: number[] }).float32;
    const scored: Array<{ key: string; distance: number; metadata: Record<string, unknown> }> = [];
    for await (const page of paginateListVectors({ client: this.vectors }, { vectorBucketName, indexName, returnData: true, returnMetadata: true })) {
      for (const v of page.vectors ?? []) {
        const metadata = (v.metadata ?? {}) as Record<string, unknown>;
        if (input.filter && !matchesFilter(metadata, input.filter)) continue;
        scored.push({ key: v.key!, distance: distance(metric, query, v.data!.float32!), metadata });
      }
    }
    scored.sort((a, b) => a.distance - b.distance);
    const top = scored.slice(0, input.topK as number).map((v) => ({
      key: v.key,
      ...(input.returnDistance ? { distance: v.distance } : {}),
      ...(input.returnMetadata ? { metadata: v.metadata } : {}),
    }));
    json(res, 200, { vectors: top, distanceMetric: metric });
    return 200;
  }

  private async startMessageMoveTask(res: ServerResponse, input: { SourceArn: string; DestinationArn?: string }): Promise<number> {
    const destination = input.DestinationArn ?? this.sourceQueueOf(input.SourceArn);
    const urlOf = (arn: string) => queueUrlOf(this.endpoint, arn);
    let moved = 0;
    for (;;) {
      const got = await this.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: urlOf(input.SourceArn), MaxNumberOfMessages: 10, VisibilityTimeout: 30, WaitTimeSeconds: 0 }),
      );
      const messages = got.Messages ?? [];
      if (messages.length === 0) break;
      await this.sqs.send(
        new SendMessageBatchCommand({ QueueUrl: urlOf(destination), Entries: messages.map((m, i) => ({ Id: String(i), MessageBody: m.Body! })) }),
      );
      await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: urlOf(input.SourceArn),
          Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
      moved += messages.length;
    }
    json(res, 200, { TaskHandle: `harness-move-${Date.now()}-${moved}` });
    return 200;
  }

  // ---- S3 event notifications ------------------------------------------------------------------

  private async existingDeleteTargets(c: Classified, body: Buffer): Promise<string[]> {
    if (c.operation !== 'DeleteObject' && c.operation !== 'DeleteObjects') return [];
    const [bucket, ...rest] = c.resource.slice(13).split('/');
    const keys = c.operation === 'DeleteObject' ? [rest.join('/')] : deleteKeys(body);
    const out: string[] = [];
    for (const key of keys) {
      const head = await fetch(`${this.moto}/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`, {
        method: 'HEAD',
        headers: { authorization: `AWS4-HMAC-SHA256 Credential=${ADMIN_ACCESS_KEY}/20260101/${REGION}/s3/aws4_request, SignedHeaders=host, Signature=0` },
      });
      if (head.status === 200) out.push(`${bucket}/${key}`);
    }
    return out;
  }

  private async notify(c: Classified, headers: Record<string, string>, deleted: string[]) {
    const events: S3EventInput[] = [];
    const next = () => {
      this.sequence += 1n;
      return this.sequence.toString(16).toUpperCase().padStart(18, '0');
    };
    if (c.operation === 'PutObject' || c.operation === 'CopyObject' || c.operation === 'CompleteMultipartUpload') {
      const [bucket, ...rest] = c.resource.slice(13).split('/');
      const eventName =
        c.operation === 'PutObject' ? 'ObjectCreated:Put' : c.operation === 'CopyObject' ? 'ObjectCreated:Copy' : 'ObjectCreated:CompleteMultipartUpload';
      events.push({ eventName, bucket: bucket!, key: rest.join('/'), etag: (headers.etag ?? '').replace(/"/g, ''), sequencer: next(), region: REGION });
    }
    for (const target of deleted) {
      const [bucket, ...rest] = target.split('/');
      events.push({ eventName: 'ObjectRemoved:Delete', bucket: bucket!, key: rest.join('/'), sequencer: next(), region: REGION });
    }
    for (const event of events) {
      for (const target of this.notifications.get(event.bucket) ?? []) {
        if (!target.events.some((pattern) => new RegExp(`^${pattern.replace(/\*/g, '.*')}$`).test(`s3:${event.eventName}`))) continue;
        const allowed = await this.iam.authorizeService('s3.amazonaws.com', 'sqs:SendMessage', target.queueArn, `arn:aws:s3:::${event.bucket}`);
        if (!allowed.allowed) {
          this.violations.push({
            role: 's3.amazonaws.com',
            operation: 'event notification',
            action: 'sqs:SendMessage',
            resource: target.queueArn,
            result: allowed.result,
          });
          continue;
        }
        await this.sqs.send(new SendMessageCommand({ QueueUrl: queueUrlOf(this.endpoint, target.queueArn), MessageBody: s3EventBody(event) }));
      }
    }
  }
}

function classifyS3(method: string, url: URL, headers: IncomingMessage['headers'], body: Buffer): Classified {
  const [, bucket = '', ...rest] = url.pathname.split('/');
  const key = rest.map((s) => decodeURIComponent(s)).join('/');
  const q = url.searchParams;
  const bucketArn = `arn:aws:s3:::${bucket}`;
  const objectArn = `${bucketArn}/${key}`;
  const one = (operation: string, action: string, resource: string, extra: Authorization[] = []): Classified => ({
    service: 's3',
    operation,
    items: 1,
    resource,
    checks: [{ action, resource }, ...extra],
  });
  if (!key) {
    if (method === 'GET' && q.has('list-type')) return one('ListObjectsV2', 's3:ListBucket', bucketArn);
    if (method === 'GET' && q.has('uploads')) return one('ListMultipartUploads', 's3:ListBucketMultipartUploads', bucketArn);
    if (method === 'GET' && q.has('versions')) return one('ListObjectVersions', 's3:ListBucketVersions', bucketArn);
    if (method === 'GET' && [...q.keys()].length === 0) return one('ListObjects', 's3:ListBucket', bucketArn);
    if (method === 'HEAD') return one('HeadBucket', 's3:ListBucket', bucketArn);
    if (method === 'POST' && q.has('delete')) {
      const keys = deleteKeys(body);
      return {
        service: 's3',
        operation: 'DeleteObjects',
        items: keys.length,
        resource: objectArn,
        checks: keys.map((k) => ({ action: 's3:DeleteObject', resource: `${bucketArn}/${k}` })),
      };
    }
    return { service: 's3', operation: 'Unclassified', items: 1, resource: bucketArn, checks: [] };
  }
  if ([...q.keys()].some((k) => ['tagging', 'acl', 'retention', 'legal-hold', 'attributes', 'torrent', 'restore', 'select'].includes(k))) {
    return { service: 's3', operation: 'Unclassified', items: 1, resource: objectArn, checks: [] };
  }
  if (method === 'GET' && q.has('uploadId')) return one('ListParts', 's3:ListMultipartUploadParts', objectArn);
  if (method === 'GET') return one('GetObject', 's3:GetObject', objectArn);
  if (method === 'HEAD') return one('HeadObject', 's3:GetObject', objectArn);
  if (method === 'PUT' && q.has('uploadId')) return one('UploadPart', 's3:PutObject', objectArn);
  if (method === 'PUT' && headers['x-amz-copy-source']) {
    const source = decodeURIComponent(String(headers['x-amz-copy-source']).split('?')[0]!).replace(/^\//, '');
    return one('CopyObject', 's3:PutObject', objectArn, [{ action: 's3:GetObject', resource: `arn:aws:s3:::${source}` }]);
  }
  if (method === 'PUT') return one('PutObject', 's3:PutObject', objectArn);
  if (method === 'POST' && q.has('uploads')) return one('CreateMultipartUpload', 's3:PutObject', objectArn);
  if (method === 'POST' && q.has('uploadId')) return one('CompleteMultipartUpload', 's3:PutObject', objectArn);
  if (method === 'DELETE' && q.has('uploadId')) return one('AbortMultipartUpload', 's3:AbortMultipartUpload', objectArn);
  if (method === 'DELETE') return one('DeleteObject', 's3:DeleteObject', objectArn);
  return { service: 's3', operation: 'Unclassified', items: 1, resource: objectArn, checks: [] };
}

function deleteKeys(body: Buffer): string[] {
  const unescapeXml = (s: string) =>
    s
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&apos;/g, "'")
      .replace(/&amp;/g, '&');
  return [...body.toString('utf8').matchAll(/<Key>([\s\S]*?)<\/Key>/g)].map((m) => unescapeXml(m[1]!));
}

function distance(metric: string, a: number[], b: number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  let sq = 0;
  for (let i = 0; i < a.length; i += 1) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
    sq += (a[i]! - b[i]!) ** 2;
  }
  return metric === 'euclidean' ? Math.sqrt(sq) : 1 - dot / (Math.sqrt(na * nb) || 1);
}

/** S3 Vectors metadata filters: $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $and, $or, and implicit equality. */
export function matchesFilter(metadata: Record<string, unknown>, filter: unknown): boolean {
  const f = filter as Record<string, unknown>;
  return Object.entries(f).every(([field, cond]) => {
    if (field === '$and') return (cond as unknown[]).every((c) => matchesFilter(metadata, c));
    if (field === '$or') return (cond as unknown[]).some((c) => matchesFilter(metadata, c));
    const value = metadata[field];
    const values = Array.isArray(value) ? value : [value];
    if (cond === null || typeof cond !== 'object' || Array.isArray(cond)) return values.includes(cond);
    return Object.entries(cond as Record<string, unknown>).every(([op, operand]) => {
      switch (op) {
        case '$eq':
          return values.includes(operand);
        case '$ne':
          return !values.includes(operand);
        case '$in':
          return (operand as unknown[]).some((o) => values.includes(o));
        case '$nin':
          return !(operand as unknown[]).some((o) => values.includes(o));
        case '$exists':
          return (value !== undefined) === operand;
        case '$gt':
          return typeof value === 'number' && value > (operand as number);
        case '$gte':
          return typeof value === 'number' && value >= (operand as number);
        case '$lt':
          return typeof value === 'number' && value < (operand as number);
        case '$lte':
          return typeof value === 'number' && value <= (operand as number);
        default:
          throw new Error(`unsupported filter operator ${op}`);
      }
    });
  });
}

/** S3 Vectors' per-vector metadata limits (documented): total size, key count, filterable size. */
export function metadataProblem(metadata: Record<string, unknown>, nonFilterable: Set<string>): string | undefined {
  const L = AWS_LIMITS.s3Vectors;
  const keys = Object.keys(metadata);
  if (keys.length > L.metadataKeysPerVector) return `${keys.length} metadata keys; the limit is ${L.metadataKeysPerVector}`;
  const total = Buffer.byteLength(JSON.stringify(metadata));
  if (total > L.totalMetadataBytes) return `metadata is ${total} bytes; the limit is ${L.totalMetadataBytes}`;
  const filterable = Buffer.byteLength(JSON.stringify(Object.fromEntries(Object.entries(metadata).filter(([k]) => !nonFilterable.has(k)))));
  if (filterable > L.filterableMetadataBytes) return `filterable metadata is ${filterable} bytes; the limit is ${L.filterableMetadataBytes}`;
  return undefined;
}
