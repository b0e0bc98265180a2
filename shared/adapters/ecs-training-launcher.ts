/** TrainingLauncher over Amazon ECS: RunTask through the GPU capacity provider (never a launch type, which would not scale the group out). */
import { RunTaskCommand, type ECSClient } from '@aws-sdk/client-ecs';
import { trainerCommand, type TrainingLauncher, type TrainingRequest } from '../ports/training-launcher';

export interface EcsTrainingTarget {
  clusterArn: string;
  taskDefinitionArn: string;
  capacityProvider: string;
  containerName: string;
}

export class EcsTrainingLauncher implements TrainingLauncher {
  constructor(
    private readonly client: ECSClient,
    private readonly target: EcsTrainingTarget,
  ) {}

  async launch(request: TrainingRequest): Promise<void> {
    const command = trainerCommand(request);
    const out = await this.client.send(
      new RunTaskCommand({
        cluster: this.target.clusterArn,
        taskDefinition: this.target.taskDefinitionArn,
        capacityProviderStrategy: [{ capacityProvider: this.target.capacityProvider, weight: 1 }],
        count: 1,
        startedBy: request.jobId.slice(0, 36),
        overrides: { containerOverrides: [{ name: this.target.containerName, command }] },
      }),
    );
    const failure = out.failures?.[0];
    if (failure || !out.tasks?.length) throw new Error(`ECS RunTask failed: ${failure?.reason ?? 'no task started'} ${failure?.detail ?? ''}`.trim());
  }
}
