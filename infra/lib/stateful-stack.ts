/**
 * Stateful resources: the buckets, the queues (with their dead-letter queues and alarms) and the
 * S3 Vectors bucket. Kept apart from the stateless stack so that code changes never replace data.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { BlockPublicAccess, Bucket, BucketEncryption, EventType, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { SqsDestination } from 'aws-cdk-lib/aws-s3-notifications';
import { CfnVectorBucket } from 'aws-cdk-lib/aws-s3vectors';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { NagSuppressions } from 'cdk-nag';
import type { Construct } from 'constructs';
import type { PipelineConfig } from './config';

export interface StatefulStackProps extends StackProps {
  readonly config: PipelineConfig;
}

export class StatefulStack extends Stack {
  readonly imagesBucket: Bucket;
  readonly artifactsBucket: Bucket;
  readonly ingestQueue: Queue;
  readonly embedQueue: Queue;
  readonly ingestDlq: Queue;
  readonly embedDlq: Queue;
  readonly vectorBucketName: string;
  readonly vectorBucketArn: string;

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, props);
    const { config } = props;

    const accessLogs = new Bucket(this, 'AccessLogs', {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    NagSuppressions.addResourceSuppressions(accessLogs, [
      { id: 'AwsSolutions-S1', reason: 'This is the access-log bucket itself; logging it into itself would loop.' },
    ]);

    const dataBucket = (id: string, prefix: string) =>
      new Bucket(this, id, {
        encryption: BucketEncryption.S3_MANAGED,
        enforceSSL: true,
        blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
        serverAccessLogsBucket: accessLogs,
        serverAccessLogsPrefix: `${prefix}/`,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    this.imagesBucket = dataBucket('Images', 'images');
    this.artifactsBucket = dataBucket('Artifacts', 'artifacts');

    // SQS-managed encryption: S3 event notifications can publish to it (a KMS key would need S3 in its key policy).
    const queue = (id: string, visibility: Duration, deadLetter?: Queue) =>
      new Queue(this, id, {
        queueName: `${config.namePrefix}-${id.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase()}`,
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        visibilityTimeout: visibility,
        retentionPeriod: Duration.days(14),
        ...(deadLetter ? { deadLetterQueue: { queue: deadLetter, maxReceiveCount: config.maxReceiveCount } } : {}),
      });
    this.ingestDlq = queue('IngestDlq', Duration.seconds(30));
    this.embedDlq = queue('EmbedDlq', Duration.seconds(30));
    // Visibility timeout at least 6x the consuming function's timeout (AWS's guidance for SQS event sources).
    this.ingestQueue = queue('Ingest', Duration.seconds(6 * config.augmentTimeoutSeconds), this.ingestDlq);
    this.embedQueue = queue('Embed', Duration.seconds(6 * config.embedTimeoutSeconds), this.embedDlq);
    for (const dlq of [this.ingestDlq, this.embedDlq]) {
      NagSuppressions.addResourceSuppressions(dlq, [{ id: 'AwsSolutions-SQS3', reason: 'This is a dead-letter queue.' }]);
      new Alarm(this, `${dlq.node.id}Depth`, {
        alarmDescription: `Messages in ${dlq.node.id}: inputs that failed ${config.maxReceiveCount} times; inspect and redrive`,
        metric: dlq.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1) }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    }

    this.imagesBucket.addEventNotification(EventType.OBJECT_CREATED, new SqsDestination(this.ingestQueue));
    this.imagesBucket.addEventNotification(EventType.OBJECT_REMOVED, new SqsDestination(this.ingestQueue));
    NagSuppressions.addStackSuppressions(this, [
      {
        id: 'AwsSolutions-IAM4',
        reason:
          "CDK's BucketNotificationsHandler custom resource (it configures the bucket notification at deploy time) uses AWSLambdaBasicExecutionRole for its logs.",
        appliesTo: ['Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole'],
      },
      {
        id: 'AwsSolutions-IAM5',
        reason: "CDK's BucketNotificationsHandler needs s3:PutBucketNotification on the bucket, expressed by CDK with a wildcard resource.",
      },
    ]);

    // One vector bucket; an index per encoder version is created by the lifecycle function at rollout time.
    this.vectorBucketName = `${config.namePrefix}-vectors-${this.account}-${this.region}`;
    const vectorBucket = new CfnVectorBucket(this, 'Vectors', {
      vectorBucketName: this.vectorBucketName,
      encryptionConfiguration: { sseType: 'AES256' },
    });
    vectorBucket.applyRemovalPolicy(RemovalPolicy.RETAIN);

    new CfnOutput(this, 'ImagesBucket', { value: this.imagesBucket.bucketName, description: 'Drop images here' });
    new CfnOutput(this, 'ArtifactsBucket', { value: this.artifactsBucket.bucketName });
    new CfnOutput(this, 'VectorBucket', { value: this.vectorBucketName });
    this.vectorBucketArn = vectorBucket.attrVectorBucketArn;
  }
}
