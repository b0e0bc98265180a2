/**
 * Operations: one SNS topic every alarm notifies (with an email subscription from the config),
 * the alarms, and one CloudWatch dashboard. Each alarm's meaning and what to do is in the README's
 * runbook, under the alarm's name.
 */
import { Duration, Names, Stack } from 'aws-cdk-lib';
import type { RestApi } from 'aws-cdk-lib/aws-apigateway';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  SingleValueWidget,
  Stats,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ICluster } from 'aws-cdk-lib/aws-ecs';
import { Rule } from 'aws-cdk-lib/aws-events';
import { CloudWatchLogGroup } from 'aws-cdk-lib/aws-events-targets';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import type { PipelineConfig } from './config';
import type { PipelineFunction } from './pipeline-function';

export const METRICS_NAMESPACE = 'ImagePipeline';

export interface OperationsProps {
  readonly config: PipelineConfig;
  readonly functions: Record<'augment' | 'embed' | 'api' | 'lifecycle', PipelineFunction>;
  readonly queues: { ingest: IQueue; embed: IQueue };
  readonly deadLetterQueues: { ingest: IQueue; embed: IQueue };
  /** Failed asynchronous (scheduled) invocations of the lifecycle function. */
  readonly lifecycleFailures: IQueue;
  readonly api: RestApi;
  readonly trainingCluster: ICluster;
  readonly logRetention: RetentionDays;
}

/** Alarm names, stable: the README's runbook has a section for each. */
export const ALARMS = {
  functionErrors: (fn: string) => `${fn}-errors`,
  functionThrottles: (fn: string) => `${fn}-throttles`,
  queueAge: (q: string) => `${q}-queue-age`,
  deadLetters: (q: string) => `${q}-dead-letters`,
  api5xx: 'api-5xx',
  apiLatency: 'api-p99-latency',
  trainerFailed: 'trainer-task-failed',
  schedulerFailed: 'training-schedule-failed',
  lifecycleFailed: 'lifecycle-failed',
} as const;

export class Operations extends Construct {
  readonly topic: Topic;
  readonly alarms: Alarm[] = [];
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: OperationsProps) {
    super(scope, id);
    const { config, functions, queues, deadLetterQueues, api } = props;
    const prefix = config.namePrefix;
    this.topic = new Topic(this, 'Alarms', { topicName: `${prefix}-alarms`, displayName: 'Image pipeline alarms', enforceSSL: true });
    if (config.alarmEmail) this.topic.addSubscription(new EmailSubscription(config.alarmEmail));
    NagSuppressions.addResourceSuppressions(this.topic, [
      {
        id: 'AwsSolutions-SNS2',
        reason: 'Alarm notifications carry alarm names and states only; CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key.',
      },
    ]);
    const action = new SnsAction(this.topic);
    const alarm = (name: string, description: string, metric: Metric | MathExpression, threshold: number, evaluationPeriods = 1) => {
      const a = new Alarm(this, name, {
        alarmName: `${prefix}-${name}`,
        alarmDescription: `${description} Runbook: README, "Runbook", ${name}.`,
        metric,
        threshold,
        evaluationPeriods,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      a.addAlarmAction(action);
      this.alarms.push(a);
      return a;
    };
    const five = Duration.minutes(5);

    for (const [name, f] of Object.entries(functions)) {
      alarm(ALARMS.functionErrors(name), `The ${name} function failed (errors or timeouts).`, f.fn.metricErrors({ period: five, statistic: Stats.SUM }), 1);
      alarm(ALARMS.functionThrottles(name), `The ${name} function was throttled.`, f.fn.metricThrottles({ period: five, statistic: Stats.SUM }), 1);
    }
    for (const [name, q] of Object.entries(queues)) {
      alarm(
        ALARMS.queueAge(name),
        `The oldest message in the ${name} queue has waited over 15 minutes: images are not being processed.`,
        q.metricApproximateAgeOfOldestMessage({ period: five, statistic: Stats.MAXIMUM }),
        15 * 60,
        2,
      );
    }
    for (const [name, q] of Object.entries(deadLetterQueues)) {
      alarm(
        ALARMS.deadLetters(name),
        `Messages in the ${name} dead-letter queue: inputs that failed ${config.maxReceiveCount} times.`,
        q.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: Stats.MAXIMUM }),
        1,
      );
    }
    alarm(ALARMS.api5xx, 'The API answered 5xx five times or more in 5 minutes.', api.metricServerError({ period: five, statistic: Stats.SUM }), 5);
    alarm(ALARMS.apiLatency, 'The API p99 latency was over 5 s for 15 minutes.', api.metricLatency({ period: five, statistic: 'p99' }), 5000, 3);
    alarm(
      ALARMS.lifecycleFailed,
      'A scheduled lifecycle invocation failed (it went to its on-failure queue).',
      props.lifecycleFailures.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: Stats.MAXIMUM }),
      1,
    );

    // Trainer task failures: ECS task state changes of the training cluster that stopped with a
    // non-zero exit code (or never started), matched by EventBridge and kept in a log group.
    const failedTasks = new Rule(this, 'TrainerTaskFailed', {
      description: 'Training tasks that stopped with a non-zero exit code or failed to start',
      eventPattern: {
        source: ['aws.ecs'],
        detailType: ['ECS Task State Change'],
        detail: {
          clusterArn: [props.trainingCluster.clusterArn],
          lastStatus: ['STOPPED'],
          $or: [{ containers: { exitCode: [{ 'anything-but': 0 }] } }, { stopCode: ['TaskFailedToStart', 'SpotInterruption', 'TerminationNotice'] }],
        } as Record<string, unknown>,
      },
      targets: [new CloudWatchLogGroup(new LogGroup(this, 'TrainerFailures', { retention: props.logRetention }))],
    });
    NagSuppressions.addResourceSuppressionsByPath(
      Stack.of(this),
      `/${Stack.of(this).stackName}/EventsLogGroupPolicy${Names.uniqueId(failedTasks)}/CustomResourcePolicy/Resource`,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason: "CDK's custom resource that writes the log group's resource policy for EventBridge (logs:PutResourcePolicy takes no resource).",
          appliesTo: ['Resource::*'],
        },
      ],
    );
    alarm(
      ALARMS.trainerFailed,
      'A training task stopped with a non-zero exit code or could not start (events in the TrainerFailures log group).',
      new Metric({
        namespace: 'AWS/Events',
        metricName: 'MatchedEvents',
        dimensionsMap: { RuleName: failedTasks.ruleName },
        period: five,
        statistic: Stats.SUM,
      }),
      1,
    );
    // EventBridge Scheduler: target errors and dropped invocations of the default schedule group.
    const scheduler = (metricName: string) =>
      new Metric({ namespace: 'AWS/Scheduler', metricName, dimensionsMap: { ScheduleGroup: 'default' }, period: five, statistic: Stats.SUM });
    alarm(
      ALARMS.schedulerFailed,
      'EventBridge Scheduler could not invoke the scheduled training (target errors or dropped invocations).',
      new MathExpression({
        expression: 'FILL(errors, 0) + FILL(dropped, 0)',
        usingMetrics: { errors: scheduler('TargetErrorCount'), dropped: scheduler('InvocationDroppedCount') },
        period: five,
        label: 'failed schedule invocations',
      }),
      1,
    );

    const custom = (metricName: string, service: string, statistic: string = Stats.SUM) =>
      new Metric({ namespace: METRICS_NAMESPACE, metricName, dimensionsMap: { service }, period: Duration.minutes(1), statistic });
    this.dashboard = new Dashboard(this, 'Dashboard', { dashboardName: `${prefix}`, defaultInterval: Duration.hours(3) });
    this.dashboard.addWidgets(
      new TextWidget({ markdown: `# ${prefix}\nAlarms notify the SNS topic \`${prefix}-alarms\`; what each means: README, "Runbook".`, width: 24, height: 2 }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Ingest rate (images/min)',
        left: [custom('ImagesAugmented', 'augment'), custom('ImagesEmbedded', 'embed'), custom('ImagesQuarantined', 'augment')],
        width: 8,
      }),
      new GraphWidget({
        title: 'End-to-end lag: upload to searchable (ms)',
        left: [custom('EndToEndLag', 'embed', Stats.p(50)), custom('EndToEndLag', 'embed', Stats.p(99))],
        right: [
          queues.ingest.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1) }),
          queues.embed.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1) }),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: 'Query latency (ms)',
        left: [api.metricLatency({ statistic: 'p50', period: Duration.minutes(1) }), api.metricLatency({ statistic: 'p99', period: Duration.minutes(1) })],
        right: [api.metricServerError({ period: Duration.minutes(1) }), api.metricClientError({ period: Duration.minutes(1) })],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new SingleValueWidget({ title: 'Index size (vectors, serving model)', metrics: [custom('IndexSize', 'lifecycle', Stats.MAXIMUM)], width: 8 }),
      new GraphWidget({
        title: 'Training runs and rollouts',
        left: [custom('TrainingRunsStarted', 'lifecycle'), custom('RolloutsCompleted', 'lifecycle')],
        right: [custom('RolloutRemaining', 'lifecycle', Stats.MAXIMUM)],
        width: 8,
      }),
      new GraphWidget({
        title: 'Queues and dead letters',
        left: [queues.ingest.metricApproximateNumberOfMessagesVisible(), queues.embed.metricApproximateNumberOfMessagesVisible()],
        right: [deadLetterQueues.ingest.metricApproximateNumberOfMessagesVisible(), deadLetterQueues.embed.metricApproximateNumberOfMessagesVisible()],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      ...Object.entries(functions).map(
        ([name, f]) =>
          new GraphWidget({
            title: `${name}: invocations, errors, throttles, duration p99`,
            left: [f.fn.metricInvocations(), f.fn.metricErrors(), f.fn.metricThrottles()],
            right: [f.fn.metricDuration({ statistic: 'p99' })],
            width: 6,
          }),
      ),
    );
  }
}
