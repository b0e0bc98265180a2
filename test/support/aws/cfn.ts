/**
 * The synthesized CloudFormation templates of the deployment, read the way CloudFormation reads
 * them: every value the AWS-mode harness uses (function environments, role policies, queue
 * settings, event source mappings, bucket notifications, API resources) comes from here, with the
 * intrinsic functions resolved against the physical names the harness gave the resources.
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../../infra/lib/app';

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';

/** A queue's URL at the harness endpoint, from its ARN or name (SQS URLs are <endpoint>/<account>/<name>). */
export function queueUrlOf(endpoint: string, arnOrName: string): string {
  return `${endpoint}/${ACCOUNT}/${arnOrName.split(':').pop()}`;
}

/** A queue's ARN, from its URL or name. */
export function queueArnOf(urlOrName: string): string {
  return `arn:aws:sqs:${REGION}:${ACCOUNT}:${urlOrName.split('/').pop()}`;
}

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
}
export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, { Value: unknown; Export?: { Name: unknown } }>;
}

export interface Synthesized {
  stateful: CfnTemplate;
  stateless: CfnTemplate;
}

/** Synthesizes both stacks (bundling skipped: the harness bundles the functions itself, for this platform). */
export function synthesize(pipelineContext: Record<string, unknown> = {}): Synthesized {
  const { stateful, stateless } = buildApp(new App({ context: { 'aws:cdk:bundling-stacks': [], pipeline: pipelineContext } }));
  return { stateful: Template.fromStack(stateful).toJSON() as CfnTemplate, stateless: Template.fromStack(stateless).toJSON() as CfnTemplate };
}

interface Physical {
  ref: string;
  attrs: Record<string, string>;
}

/** Physical names and attributes of every resource of both templates, and the stateful stack's exports. */
export class Deployment {
  private readonly physical = new Map<string, Physical>();
  private readonly exports = new Map<string, string>();

  constructor(
    readonly templates: Synthesized,
    /** Where the harness's AWS endpoint is (queue URLs point at it). */
    private readonly endpoint: string,
  ) {
    for (const template of [templates.stateful, templates.stateless]) {
      for (const [id, resource] of Object.entries(template.Resources)) this.physical.set(id, this.name(id, resource, template));
      for (const output of Object.values(template.Outputs ?? {})) {
        if (output.Export) this.exports.set(this.resolveString(output.Export.Name, template), this.resolveString(output.Value, template));
      }
    }
  }

  resources(type: string, template?: CfnTemplate): Array<[string, CfnResource]> {
    const all = template ? [template] : [this.templates.stateful, this.templates.stateless];
    return all.flatMap((t) => Object.entries(t.Resources).filter(([, r]) => r.Type === type));
  }

  resource(logicalId: string): CfnResource {
    const r = this.templates.stateful.Resources[logicalId] ?? this.templates.stateless.Resources[logicalId];
    if (!r) throw new Error(`no resource ${logicalId} in the templates`);
    return r;
  }

  ref(logicalId: string): string {
    const p = this.physical.get(logicalId);
    if (!p) throw new Error(`no resource ${logicalId} in the templates`);
    return p.ref;
  }

  attr(logicalId: string, name: string): string {
    const value = this.physical.get(logicalId)?.attrs[name];
    if (value === undefined) throw new Error(`the harness knows no attribute ${name} of ${logicalId}`);
    return value;
  }

  /** Resolves Ref, Fn::GetAtt, Fn::Join, Fn::ImportValue, Fn::Select, Fn::Split, Fn::Sub and pseudo parameters. */
  resolve(value: unknown, template?: CfnTemplate): unknown {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v, template));
    if (value === null || typeof value !== 'object') return value;
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (keys.length === 1) {
      const [fn] = keys as [string];
      const arg = obj[fn];
      switch (fn) {
        case 'Ref':
          return this.refOf(arg as string);
        case 'Fn::GetAtt': {
          const [id, name] = Array.isArray(arg) ? (arg as string[]) : String(arg).split('.');
          return this.attr(id!, name!);
        }
        case 'Fn::Join': {
          const [sep, parts] = arg as [string, unknown[]];
          return (this.resolve(parts, template) as unknown[]).map(String).join(sep);
        }
        case 'Fn::ImportValue': {
          const name = this.resolveString(arg, template);
          const exported = this.exports.get(name);
          if (exported === undefined) throw new Error(`no export named ${name}`);
          return exported;
        }
        case 'Fn::Select': {
          const [index, list] = arg as [unknown, unknown];
          return (this.resolve(list, template) as unknown[])[Number(this.resolve(index, template))];
        }
        case 'Fn::Split': {
          const [sep, s] = arg as [string, unknown];
          return this.resolveString(s, template).split(sep);
        }
        case 'Fn::Sub': {
          const [text, vars] = Array.isArray(arg) ? (arg as [string, Record<string, unknown>]) : [arg as string, {}];
          return text.replace(/\$\{([^}]+)\}/g, (_, name: string) =>
            name in vars
              ? this.resolveString(vars[name], template)
              : name.includes('.')
                ? this.attr(...(name.split('.') as [string, string]))
                : this.refOf(name),
          );
        }
        default:
          break;
      }
    }
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, this.resolve(v, template)]));
  }

  resolveString(value: unknown, template?: CfnTemplate): string {
    const v = this.resolve(value, template);
    if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`expected a string, got ${JSON.stringify(v)}`);
    return String(v);
  }

  private refOf(name: string): string {
    switch (name) {
      case 'AWS::AccountId':
        return ACCOUNT;
      case 'AWS::Region':
        return REGION;
      case 'AWS::Partition':
        return 'aws';
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::StackName':
        return 'stack';
      case 'AWS::NoValue':
        return '';
      default:
        return this.ref(name);
    }
  }

  /** The physical name CloudFormation would give: the declared name where the template has one, else a generated one. */
  private name(id: string, resource: CfnResource, template: CfnTemplate): Physical {
    const props = resource.Properties ?? {};
    const declared = (key: string): string | undefined => {
      const v = props[key];
      if (v === undefined) return undefined;
      // Declared names may use pseudo parameters only (never other resources), so resolve them now.
      return this.resolveString(v, template);
    };
    const generated = `${id
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '')
      .slice(0, 40)}-gen`;
    switch (resource.Type) {
      case 'AWS::S3::Bucket': {
        const name = declared('BucketName') ?? generated;
        return { ref: name, attrs: { Arn: `arn:aws:s3:::${name}`, DomainName: `${name}.s3.amazonaws.com` } };
      }
      case 'AWS::SQS::Queue': {
        const name = declared('QueueName') ?? generated;
        const url = queueUrlOf(this.endpoint, name);
        return { ref: url, attrs: { Arn: queueArnOf(name), QueueName: name, QueueUrl: url } };
      }
      case 'AWS::S3Vectors::VectorBucket': {
        const name = declared('VectorBucketName') ?? generated;
        const arn = `arn:aws:s3vectors:${REGION}:${ACCOUNT}:bucket/${name}`;
        return { ref: arn, attrs: { VectorBucketArn: arn, VectorBucketName: name } };
      }
      case 'AWS::IAM::Role': {
        const name = declared('RoleName') ?? generated;
        return { ref: name, attrs: { Arn: `arn:aws:iam::${ACCOUNT}:role/${name}`, RoleId: `AROA${id.slice(0, 16).toUpperCase()}` } };
      }
      case 'AWS::Lambda::Function': {
        const name = declared('FunctionName') ?? generated;
        return { ref: name, attrs: { Arn: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}` } };
      }
      case 'AWS::ECS::Cluster': {
        const name = declared('ClusterName') ?? generated;
        return { ref: name, attrs: { Arn: `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${name}` } };
      }
      case 'AWS::ECS::TaskDefinition': {
        const family = declared('Family') ?? generated;
        const arn = `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${family}:1`;
        return { ref: arn, attrs: { TaskDefinitionArn: arn } };
      }
      case 'AWS::SNS::Topic': {
        const name = declared('TopicName') ?? generated;
        const arn = `arn:aws:sns:${REGION}:${ACCOUNT}:${name}`;
        return { ref: arn, attrs: { TopicArn: arn, TopicName: name } };
      }
      case 'AWS::Logs::LogGroup': {
        const name = declared('LogGroupName') ?? generated;
        return { ref: name, attrs: { Arn: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${name}:*` } };
      }
      case 'AWS::ApiGateway::RestApi':
        return { ref: generated, attrs: { RootResourceId: `${generated}-root` } };
      case 'AWS::Scheduler::ScheduleGroup':
      case 'AWS::Scheduler::Schedule': {
        const name = declared('Name') ?? generated;
        return { ref: name, attrs: { Arn: `arn:aws:scheduler:${REGION}:${ACCOUNT}:schedule/default/${name}` } };
      }
      default:
        return { ref: generated, attrs: { Arn: `arn:aws:${resource.Type.split('::')[1]!.toLowerCase()}:${REGION}:${ACCOUNT}:${generated}` } };
    }
  }
}
