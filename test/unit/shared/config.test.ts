import { ConfigError } from '../../../shared/errors';
import { parseLambdaConfig, parseLocalStackConfig } from '../../../shared/config';

describe('parseLocalStackConfig', () => {
  it('uses the contract defaults', () => {
    expect(parseLocalStackConfig({})).toMatchObject({ dataDir: '.data', s3Port: 4566, apiPort: 3000, host: '127.0.0.1', augmentViews: 2 });
    expect(parseLocalStackConfig({}).rolloutBacklog).toBe(1000);
    expect(parseLocalStackConfig({ ROLLOUT_BACKLOG: '250' }).rolloutBacklog).toBe(250);
    expect(() => parseLocalStackConfig({ ROLLOUT_BACKLOG: '0' })).toThrow(/ROLLOUT_BACKLOG must be an integer between 1 and 1000000/);
  });

  it('fails fast naming a malformed key', () => {
    expect(() => parseLocalStackConfig({ API_PORT: 'eighty' })).toThrow(ConfigError);
    expect(() => parseLocalStackConfig({ API_PORT: '70000' })).toThrow(/API_PORT must be an integer between 0 and 65535, got "70000"/);
  });
});

describe('parseLambdaConfig', () => {
  const base = { IMAGES_BUCKET: 'img', ARTIFACTS_BUCKET: 'art', VECTOR_BUCKET_NAME: 'vec' };

  it('names every missing required key', () => {
    expect(() => parseLambdaConfig({ IMAGES_BUCKET: 'img' })).toThrow(/ARTIFACTS_BUCKET is required.*VECTOR_BUCKET_NAME is required/);
    expect(() => parseLambdaConfig(base, { embedQueue: true })).toThrow(/EMBED_QUEUE_URL is required/);
  });

  it('reads the training target only when all of it is set', () => {
    expect(parseLambdaConfig(base).training).toBeUndefined();
    const full = { ...base, TRAIN_CLUSTER_ARN: 'c', TRAIN_TASK_DEFINITION_ARN: 't', TRAIN_CAPACITY_PROVIDER: 'cp', TRAIN_CONTAINER_NAME: 'trainer' };
    expect(parseLambdaConfig(full, { training: true }).training).toEqual({
      clusterArn: 'c',
      taskDefinitionArn: 't',
      capacityProvider: 'cp',
      containerName: 'trainer',
    });
  });
});
