/**
 * IAM as AWS evaluates it, over the synthesized templates: each role's identity policies (inline
 * AWS::IAM::Policy resources and a role's own Policies) and the resource policies of the buckets
 * and queues, evaluated by @cloud-copilot/iam-simulate (an IAM policy simulator written from AWS's
 * policy evaluation logic, not by this project). The harness asks it about every call it sees.
 */
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { ACCOUNT, type Deployment, queueArnOf } from './cfn';

type PolicyDocument = { Version?: string; Statement: unknown[] };

export interface Decision {
  allowed: boolean;
  /** Allowed, ImplicitlyDenied, ExplicitlyDenied, or the simulator's validation error. */
  result: string;
}

export class IamPolicies {
  private readonly identity = new Map<string, PolicyDocument[]>();
  private readonly resourcePolicies = new Map<string, PolicyDocument>();
  private readonly cache = new Map<string, Promise<Decision>>();
  /** Grants removed by a test (mutation check): `role logical id -> action`. */
  private readonly revoked = new Set<string>();

  constructor(private readonly deployment: Deployment) {
    for (const [, policy] of deployment.resources('AWS::IAM::Policy')) {
      const props = policy.Properties!;
      const doc = deployment.resolve(props.PolicyDocument) as PolicyDocument;
      for (const role of (props.Roles ?? []) as Array<{ Ref: string }>) this.add(role.Ref, doc);
    }
    for (const [id, role] of deployment.resources('AWS::IAM::Role')) {
      for (const p of (role.Properties?.Policies ?? []) as Array<{ PolicyDocument: unknown }>)
        this.add(id, deployment.resolve(p.PolicyDocument) as PolicyDocument);
    }
    for (const [, bp] of deployment.resources('AWS::S3::BucketPolicy')) {
      const bucket = deployment.resolveString(bp.Properties!.Bucket);
      this.resourcePolicies.set(`arn:aws:s3:::${bucket}`, deployment.resolve(bp.Properties!.PolicyDocument) as PolicyDocument);
    }
    for (const [, qp] of deployment.resources('AWS::SQS::QueuePolicy')) {
      const doc = deployment.resolve(qp.Properties!.PolicyDocument) as PolicyDocument;
      for (const q of qp.Properties!.Queues as unknown[]) {
        const url = deployment.resolveString(q);
        this.resourcePolicies.set(queueArnOf(url), doc);
      }
    }
  }

  private add(roleId: string, doc: PolicyDocument) {
    const list = this.identity.get(roleId) ?? [];
    list.push(doc);
    this.identity.set(roleId, list);
  }

  roleArn(roleId: string): string {
    return this.deployment.attr(roleId, 'Arn');
  }

  /** Removes `action` from every statement of the role's policies (the mutation check). */
  revoke(roleId: string, action: string) {
    this.revoked.add(`${roleId} ${action}`);
    this.cache.clear();
  }

  restore() {
    this.revoked.clear();
    this.cache.clear();
  }

  private policiesOf(roleId: string): PolicyDocument[] {
    const docs = this.identity.get(roleId) ?? [];
    const revoked = [...this.revoked].filter((r) => r.startsWith(`${roleId} `)).map((r) => r.slice(roleId.length + 1));
    if (revoked.length === 0) return docs;
    return docs.map((doc) => ({
      ...doc,
      Statement: doc.Statement.map((s) => {
        const st = s as { Action?: string | string[] };
        const actions = Array.isArray(st.Action) ? st.Action : st.Action ? [st.Action] : [];
        const kept = actions.filter((a) => !revoked.includes(a));
        return { ...st, Action: kept.length > 0 ? kept : 'none:None' };
      }),
    }));
  }

  /** Whether the role may perform `action` on `resource`. The request is over TLS, as every SDK call in AWS is. */
  async authorize(roleId: string, action: string, resource: string, context: Record<string, string> = {}): Promise<Decision> {
    const key = JSON.stringify([roleId, action, resource, context]);
    let decision = this.cache.get(key);
    if (!decision) {
      decision = this.simulate(roleId, action, resource, context);
      this.cache.set(key, decision);
    }
    return decision;
  }

  private async simulate(roleId: string, action: string, resource: string, context: Record<string, string>): Promise<Decision> {
    const resourcePolicy = this.resourcePolicyFor(resource);
    const response = await runSimulation(
      {
        identityPolicies: this.policiesOf(roleId).map((policy, i) => ({ name: `${roleId}-${i}`, policy })),
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        ...(resourcePolicy ? { resourcePolicy } : {}),
        request: {
          action,
          principal: this.roleArn(roleId),
          resource: { accountId: resource.startsWith('arn:aws:s3:::') ? ACCOUNT : (resource.split(':')[4] ?? ACCOUNT), resource },
          contextVariables: { 'aws:SecureTransport': 'true', 'aws:PrincipalAccount': ACCOUNT, ...context },
        },
      } as Parameters<typeof runSimulation>[0],
      {},
    );
    if (response.resultType === 'error') return { allowed: false, result: `simulator error: ${JSON.stringify(response.errors).slice(0, 500)}` };
    return { allowed: response.overallResult === 'Allowed', result: response.overallResult };
  }

  private resourcePolicyFor(resource: string): PolicyDocument | undefined {
    if (resource.startsWith('arn:aws:s3:::')) return this.resourcePolicies.get(`arn:aws:s3:::${resource.slice(13).split('/')[0]}`);
    return this.resourcePolicies.get(resource);
  }

  /** Whether a service principal (s3.amazonaws.com delivering an event) may act on a resource under its resource policy. */
  async authorizeService(service: string, action: string, resource: string, sourceArn: string): Promise<Decision> {
    const resourcePolicy = this.resourcePolicyFor(resource);
    if (!resourcePolicy) return { allowed: false, result: 'no resource policy' };
    const response = await runSimulation(
      {
        identityPolicies: [],
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        resourcePolicy,
        request: {
          action,
          principal: service,
          resource: { accountId: ACCOUNT, resource },
          contextVariables: { 'aws:SourceArn': sourceArn, 'aws:SourceAccount': ACCOUNT, 'aws:SecureTransport': 'true' },
        },
      } as Parameters<typeof runSimulation>[0],
      {},
    );
    if (response.resultType === 'error') return { allowed: false, result: `simulator error: ${JSON.stringify(response.errors).slice(0, 500)}` };
    return { allowed: response.overallResult === 'Allowed', result: response.overallResult };
  }
}
