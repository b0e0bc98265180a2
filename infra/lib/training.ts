/**
 * GPU training on ECS: an Auto Scaling group of GPU instances (ECS GPU-optimised AMI) behind a
 * capacity provider with managed scaling that starts from zero and returns to zero, a task
 * definition asking for one GPU with the image built from gpu-trainer/Dockerfile, and an
 * EventBridge Scheduler schedule that runs it through the capacity provider strategy (a launch
 * type would never scale the group out).
 */
import * as path from 'node:path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { AutoScalingGroup } from 'aws-cdk-lib/aws-autoscaling';
import {
  BlockDeviceVolume,
  EbsDeviceVolumeType,
  FlowLogDestination,
  GatewayVpcEndpointAwsService,
  InstanceType,
  LaunchTemplate,
  SecurityGroup,
  SubnetType,
  UserData,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import {
  AmiHardwareType,
  AsgCapacityProvider,
  Cluster,
  ContainerImage,
  ContainerInsights,
  Ec2TaskDefinition,
  EcsOptimizedImage,
  LogDrivers,
  NetworkMode,
} from 'aws-cdk-lib/aws-ecs';
import { ManagedPolicy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { CfnSchedule } from 'aws-cdk-lib/aws-scheduler';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import type { PipelineConfig } from './config';
import { REPO_ROOT } from './pipeline-function';

export const TRAINER_CONTAINER = 'trainer';

export interface TrainingProps {
  readonly config: PipelineConfig;
  readonly imagesBucket: IBucket;
  readonly artifactsBucket: IBucket;
  readonly logRetention: RetentionDays;
}

export class Training extends Construct {
  readonly cluster: Cluster;
  readonly taskDefinition: Ec2TaskDefinition;
  readonly capacityProvider: AsgCapacityProvider;

  constructor(scope: Construct, id: string, props: TrainingProps) {
    super(scope, id);
    const { config } = props;

    // Public subnets and no NAT gateway: instances reach ECR and AWS APIs directly (nothing listens
    // inbound), S3 through a gateway endpoint. The group is empty between runs, so this costs nothing idle.
    const vpc = new Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: SubnetType.PUBLIC }],
      gatewayEndpoints: { S3: { service: GatewayVpcEndpointAwsService.S3 } },
      flowLogs: {
        all: {
          destination: FlowLogDestination.toCloudWatchLogs(
            new LogGroup(this, 'FlowLogs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY }),
          ),
        },
      },
    });
    this.cluster = new Cluster(this, 'Cluster', { vpc, clusterName: `${config.namePrefix}-training`, containerInsightsV2: ContainerInsights.ENABLED });

    const securityGroup = new SecurityGroup(this, 'InstanceSg', { vpc, description: 'GPU training instances: no inbound traffic', allowAllOutbound: true });
    const instanceRole = new Role(this, 'InstanceRole', {
      assumedBy: new ServicePrincipal('ec2.amazonaws.com'),
      managedPolicies: [
        ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonEC2ContainerServiceforEC2Role'),
        ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore'),
      ],
    });
    const launchTemplate = new LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: EcsOptimizedImage.amazonLinux2(AmiHardwareType.GPU),
      instanceType: new InstanceType(config.trainingInstanceType),
      role: instanceRole,
      securityGroup,
      userData: UserData.forLinux(),
      requireImdsv2: true,
      associatePublicIpAddress: true,
      detailedMonitoring: true,
      blockDevices: [{ deviceName: '/dev/xvda', volume: BlockDeviceVolume.ebs(100, { encrypted: true, volumeType: EbsDeviceVolumeType.GP3 }) }],
      ...(config.trainingUseSpot ? { spotOptions: {} } : {}),
    });
    const asg = new AutoScalingGroup(this, 'GpuInstances', {
      vpc,
      vpcSubnets: { subnetType: SubnetType.PUBLIC },
      launchTemplate,
      minCapacity: 0,
      maxCapacity: config.trainingMaxInstances,
    });
    this.capacityProvider = new AsgCapacityProvider(this, 'Gpu', {
      autoScalingGroup: asg,
      capacityProviderName: `${config.namePrefix}-gpu`,
      enableManagedScaling: true,
      enableManagedTerminationProtection: false,
      // ECS drains instances itself before scale-in (no SNS/Lambda drain hook needed).
      enableManagedDraining: true,
      targetCapacityPercent: 100,
    });
    this.cluster.addAsgCapacityProvider(this.capacityProvider);

    this.taskDefinition = new Ec2TaskDefinition(this, 'Task', { networkMode: NetworkMode.BRIDGE });
    this.taskDefinition.addContainer(TRAINER_CONTAINER, {
      image: ContainerImage.fromAsset(path.join(REPO_ROOT, 'gpu-trainer')),
      gpuCount: 1,
      memoryReservationMiB: 12 * 1024,
      logging: LogDrivers.awsLogs({
        streamPrefix: 'trainer',
        logGroup: new LogGroup(this, 'TrainerLogs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY }),
      }),
      environment: { ARTIFACTS_BUCKET: props.artifactsBucket.bucketName, IMAGES_BUCKET: props.imagesBucket.bucketName, AWS_REGION: Stack.of(this).region },
      command: ['run', '--max-minutes', String(config.trainMaxMinutes)],
      stopTimeout: Duration.seconds(120),
    });
    // The task reads derived images and labels and writes models, only in the artifacts bucket.
    this.taskDefinition.taskRole.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], resources: [props.artifactsBucket.arnForObjects('*')] }),
    );
    this.taskDefinition.taskRole.addToPrincipalPolicy(new PolicyStatement({ actions: ['s3:ListBucket'], resources: [props.artifactsBucket.bucketArn] }));

    if (config.trainingSchedule) {
      const schedulerRole = new Role(this, 'SchedulerRole', { assumedBy: new ServicePrincipal('scheduler.amazonaws.com') });
      schedulerRole.addToPolicy(new PolicyStatement({ actions: ['ecs:RunTask'], resources: [this.taskDefinition.taskDefinitionArn] }));
      schedulerRole.addToPolicy(
        new PolicyStatement({
          actions: ['iam:PassRole'],
          resources: [this.taskDefinition.taskRole.roleArn, this.taskDefinition.obtainExecutionRole().roleArn],
          conditions: { StringLike: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
        }),
      );
      new CfnSchedule(this, 'Schedule', {
        description: 'Scheduled training run (the trainer takes the training lease, so it never overlaps another run)',
        scheduleExpression: config.trainingSchedule,
        flexibleTimeWindow: { mode: 'OFF' },
        target: {
          arn: this.cluster.clusterArn,
          roleArn: schedulerRole.roleArn,
          ecsParameters: {
            taskDefinitionArn: this.taskDefinition.taskDefinitionArn,
            taskCount: 1,
            capacityProviderStrategy: [{ capacityProvider: this.capacityProvider.capacityProviderName, weight: 1 }],
          },
          retryPolicy: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 3600 },
        },
      });
    }

    NagSuppressions.addResourceSuppressions(
      this,
      [
        {
          id: 'AwsSolutions-IAM4',
          reason: 'AmazonEC2ContainerServiceforEC2Role and AmazonSSMManagedInstanceCore are the AWS-maintained policies for ECS container instances.',
          appliesTo: [
            'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role',
            'Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore',
          ],
        },
        {
          id: 'AwsSolutions-AS3',
          reason: 'Scaling notifications are not needed: the capacity provider scales the group and ECS task events record every run.',
        },
        { id: 'AwsSolutions-EC23', reason: 'The security group has no inbound rules at all.' },
        { id: 'AwsSolutions-ECS2', reason: 'Environment variables carry bucket names and the region only, no secrets.' },
      ],
      true,
    );
  }
}
