/**
 * Stateful resources: the buckets, the queues (with their dead-letter queues) and the
 * S3 Vectors bucket. Kept apart from the stateless stack so that code changes never replace data.
 */
import { CfnOutput, Duration, Fn, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { BlockPublicAccess, Bucket, BucketEncryption, type BucketProps, EventType, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
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

    const dataBucket = (id: string, prefix: string, extra: Partial<BucketProps> = {}) =>
      new Bucket(this, id, {
        encryption: BucketEncryption.S3_MANAGED,
        enforceSSL: true,
        blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
        serverAccessLogsBucket: accessLogs,
        serverAccessLogsPrefix: `${prefix}/`,
        removalPolicy: RemovalPolicy.RETAIN,
        ...extra,
      });
    this.imagesBucket = dataBucket('Images', 'images');
    // Versioned: an overwritten or deleted model pointer, manifest or record can be restored for
    // `artifactsNoncurrentDays`; the ledger and derived files rewritten per event expire with them.
    this.artifactsBucket = dataBucket('Artifacts', 'artifacts', {
      versioned: true,
      lifecycleRules: [
        { id: 'noncurrent-versions', noncurrentVersionExpiration: Duration.days(config.artifactsNoncurrentDays), expiredObjectDeleteMarker: true },
        { id: 'incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
    });

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
    // Their depth alarms are with the others, in the stateless stack's Operations construct.
    for (const dlq of [this.ingestDlq, this.embedDlq]) {
      NagSuppressions.addResourceSuppressions(dlq, [{ id: 'AwsSolutions-SQS3', reason: 'This is a dead-letter queue.' }]);
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

    // One vector bucket; an index per encoder version is created by the lifecycle function at rollout
    // time. Its name is generated by CloudFormation (a fixed name would collide with the retained
    // bucket of a destroyed stack on the next deploy) and read back from its ARN (.../bucket/<name>).
    const vectorBucket = new CfnVectorBucket(this, 'Vectors', { encryptionConfiguration: { sseType: 'AES256' } });
    vectorBucket.applyRemovalPolicy(RemovalPolicy.RETAIN);
    this.vectorBucketName = Fn.select(1, Fn.split('/', vectorBucket.attrVectorBucketArn));

    new CfnOutput(this, 'ImagesBucket', { value: this.imagesBucket.bucketName, description: 'Drop images here' });
    new CfnOutput(this, 'ArtifactsBucket', { value: this.artifactsBucket.bucketName });
    new CfnOutput(this, 'VectorBucket', { value: this.vectorBucketName });
    this.vectorBucketArn = vectorBucket.attrVectorBucketArn;
  }
}
