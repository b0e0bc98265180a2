/**
 * One construct with every default of the pipeline's Lambda functions: Node.js 24, the chosen
 * architecture, JSON logs with retention, X-Ray tracing, Powertools settings, and bundling of the
 * native modules (sharp, onnxruntime-node) for the Lambda platform with other platforms' binaries
 * pruned, so an asset stays far below Lambda's 250 MB unzipped limit.
 */
import * as path from 'node:path';
import { type Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Architecture, type IDestination, LoggingFormat, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

export interface PipelineFunctionProps {
  /** `functions/<name>/index.ts` is the entry. */
  readonly name: 'augment' | 'embed' | 'api' | 'lifecycle';
  readonly memorySize: number;
  readonly timeout: Duration;
  readonly architecture: Architecture;
  readonly environment: Record<string, string>;
  /** Bundle sharp and onnxruntime-node as node_modules for the Lambda platform. @default false */
  readonly nativeModules?: boolean;
  readonly logRetention: RetentionDays;
  readonly description: string;
  /** At most this many concurrent invocations (1: never two at once). */
  readonly reservedConcurrentExecutions?: number;
  /** Asynchronous invocations (schedules): where a failed one goes, and how often Lambda retries it. */
  readonly onFailure?: IDestination;
  readonly retryAttempts?: number;
}

export class PipelineFunction extends Construct {
  readonly fn: NodejsFunction;

  constructor(scope: Construct, id: string, props: PipelineFunctionProps) {
    super(scope, id);
    const arm = props.architecture === Architecture.ARM_64;
    const cpu = arm ? 'arm64' : 'x64';
    const logGroup = new LogGroup(this, 'Logs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY });
    this.fn = new NodejsFunction(this, 'Function', {
      entry: path.join(REPO_ROOT, 'functions', props.name, 'index.ts'),
      handler: 'handler',
      runtime: Runtime.NODEJS_24_X,
      architecture: props.architecture,
      memorySize: props.memorySize,
      timeout: props.timeout,
      description: props.description,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      onFailure: props.onFailure,
      retryAttempts: props.retryAttempts,
      logGroup,
      loggingFormat: LoggingFormat.JSON,
      tracing: Tracing.ACTIVE,
      projectRoot: REPO_ROOT,
      depsLockFilePath: path.join(REPO_ROOT, 'package-lock.json'),
      environment: {
        POWERTOOLS_SERVICE_NAME: props.name,
        POWERTOOLS_LOG_LEVEL: 'INFO',
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.CJS,
        target: 'node24',
        minify: true,
        sourceMap: true,
        // The runtime's AWS SDK may predate S3 Vectors: bundle the clients this code was tested with.
        // Functions without native modules never load them (the encoder factory is imported lazily).
        externalModules: props.nativeModules ? [] : ['sharp', 'onnxruntime-node'],
        nodeModules: props.nativeModules ? ['sharp', 'onnxruntime-node'] : [],
        environment: {
          // CDK writes its own package.json for the install (without our allowScripts): run no
          // dependency install script at all. onnxruntime-node's would download CUDA libraries;
          // sharp and onnxruntime-node ship their binaries in the packages.
          npm_config_ignore_scripts: 'true',
          // Install the Lambda platform's optional native packages (sharp's @img/* builds).
          npm_config_os: 'linux',
          npm_config_cpu: cpu,
          npm_config_libc: 'glibc',
        },
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_input: string, output: string) =>
            props.nativeModules
              ? [
                  `rm -rf "${output}/node_modules/onnxruntime-node/bin/napi-v6/darwin" "${output}/node_modules/onnxruntime-node/bin/napi-v6/win32"`,
                  `rm -rf "${output}/node_modules/onnxruntime-node/bin/napi-v6/linux/${arm ? 'x64' : 'arm64'}"`,
                ]
              : [],
        },
      },
    });
  }
}
