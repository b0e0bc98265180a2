/** Builds the app: both stacks, and cdk-nag's AwsSolutions checks over everything. */
import { App, Aspects, Tags } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parsePipelineConfig } from './config';
import { StatefulStack } from './stateful-stack';
import { StatelessStack } from './stateless-stack';

export function buildApp(app: App = new App()) {
  const config = parsePipelineConfig(app.node.tryGetContext('pipeline'));
  const env = { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION };
  const stateful = new StatefulStack(app, `${pascal(config.namePrefix)}Stateful`, {
    env,
    config,
    description: 'Image pipeline: buckets, queues, vector bucket',
  });
  const stateless = new StatelessStack(app, `${pascal(config.namePrefix)}Stateless`, {
    env,
    config,
    description: 'Image pipeline: functions, API, training',
    imagesBucket: stateful.imagesBucket,
    artifactsBucket: stateful.artifactsBucket,
    ingestQueue: stateful.ingestQueue,
    embedQueue: stateful.embedQueue,
    ingestDlq: stateful.ingestDlq,
    embedDlq: stateful.embedDlq,
    vectorBucketName: stateful.vectorBucketName,
    vectorBucketArn: stateful.vectorBucketArn,
  });
  stateless.addStackDependency(stateful);
  Tags.of(app).add('project', config.namePrefix);
  Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
  return { app, config, stateful, stateless };
}

function pascal(s: string): string {
  return s.replace(/(^|-)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());
}
