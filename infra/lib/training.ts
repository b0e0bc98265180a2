/**
 * GPU training on ECS: an Auto Scaling group of GPU instances (ECS GPU-optimised AMI, Amazon Linux
 * 2023; a preference list of instance types, optionally Spot) behind a capacity provider with
 * managed scaling that starts from zero and returns to zero, and a task definition asking for one
 * GPU with the image built from gpu-trainer/Dockerfile. Runs are started by the functions (through
 * the training lease) with RunTask and the capacity provider strategy (a launch type would never
 * scale the group out); scheduled runs come from EventBridge Scheduler through the lifecycle function.
 */
import * as path from 'node:path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { AutoScalingGroup, OnDemandAllocationStrategy, SpotAllocationStrategy } from 'aws-cdk-lib/aws-autoscaling';
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
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import { ManagedPolicy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
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
    // Amazon Linux 2023 ECS GPU-optimised AMI (NVIDIA driver and container toolkit), the supported successor of AL2.
    const launchTemplate = new LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: EcsOptimizedImage.amazonLinux2023(AmiHardwareType.GPU),
      instanceType: new InstanceType(config.trainingInstanceTypes[0]!),
      role: instanceRole,
      securityGroup,
      userData: UserData.forLinux(),
      requireImdsv2: true,
      associatePublicIpAddress: true,
      detailedMonitoring: true,
      blockDevices: [{ deviceName: '/dev/xvda', volume: BlockDeviceVolume.ebs(100, { encrypted: true, volumeType: EbsDeviceVolumeType.GP3 }) }],
    });
    // Instance types in order of preference: when the first has no capacity in any zone the group
    // launches the next (on-demand: "prioritized"; Spot: price-capacity-optimized over all of them).
    const asg = new AutoScalingGroup(this, 'GpuInstances', {
      vpc,
      vpcSubnets: { subnetType: SubnetType.PUBLIC },
      mixedInstancesPolicy: {
        launchTemplate,
        launchTemplateOverrides: config.trainingInstanceTypes.map((t) => ({ instanceType: new InstanceType(t) })),
        instancesDistribution: {
          onDemandBaseCapacity: 0,
          onDemandPercentageAboveBaseCapacity: config.trainingUseSpot ? 0 : 100,
          onDemandAllocationStrategy: OnDemandAllocationStrategy.PRIORITIZED,
          spotAllocationStrategy: SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
        },
      },
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
      // x86_64 GPU instances: the image is built for linux/amd64 whatever machine runs `cdk deploy`.
      image: ContainerImage.fromAsset(path.join(REPO_ROOT, 'gpu-trainer'), { platform: Platform.LINUX_AMD64 }),
      gpuCount: 1,
      memoryReservationMiB: 12 * 1024,
      logging: LogDrivers.awsLogs({
        streamPrefix: 'trainer',
        logGroup: new LogGroup(this, 'TrainerLogs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY }),
      }),
      environment: {
        ARTIFACTS_BUCKET: props.artifactsBucket.bucketName,
        IMAGES_BUCKET: props.imagesBucket.bucketName,
        AWS_REGION: Stack.of(this).region,
        TRAINER_PRESET: config.trainingPreset,
      },
      command: ['run', '--max-minutes', String(config.trainMaxMinutes)],
      stopTimeout: Duration.seconds(120),
    });
    // The task reads derived images and labels and writes models, only in the artifacts bucket.
    this.taskDefinition.taskRole.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], resources: [props.artifactsBucket.arnForObjects('*')] }),
    );
    this.taskDefinition.taskRole.addToPrincipalPolicy(new PolicyStatement({ actions: ['s3:ListBucket'], resources: [props.artifactsBucket.bucketArn] }));

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
          id: 'CdkNagValidationFailure',
          reason: 'AwsSolutions-EC26 cannot read a mixed-instances group; the launch template encrypts its only EBS volume (gp3, encrypted: true).',
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
    NagSuppressions.addResourceSuppressions(
      instanceRole,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason: "CDK's policy for ECS container instances (ecs:Submit* and the cluster-wide ECS agent actions, which take no resource).",
          appliesTo: ['Action::ecs:Submit*', 'Resource::*'],
        },
      ],
      true,
    );
    NagSuppressions.addResourceSuppressions(
      this.taskDefinition.obtainExecutionRole(),
      [
        {
          id: 'AwsSolutions-IAM5',
          reason: 'ecr:GetAuthorizationToken takes no resource ("*"); image pulls are scoped to the asset repository.',
          appliesTo: ['Resource::*'],
        },
      ],
      true,
    );
    NagSuppressions.addResourceSuppressions(
      this.taskDefinition.taskRole,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason: 'The trainer reads derived images and labels and writes models, runs, pseudo-labels and its lease: objects of the artifacts bucket only.',
          appliesTo: [{ regex: '/^Resource::(<Artifacts[0-9A-F]+\\.Arn>|[A-Za-z0-9]+:ExportsOutputFnGetAttArtifacts[0-9A-F]+Arn[0-9A-F]+)\\/\\*$/g' }],
        },
      ],
      true,
    );
  }
}
