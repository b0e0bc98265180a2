/**
 * The trainer's preset names (gpu-trainer/pipeline_trainer/config.py PRESETS holds their values):
 * the deployment's `trainingPreset` is one of these. Exported to schemas/trainer-presets.json
 * (`npm run schemas`), which the trainer's tests hold its PRESETS against.
 */
export const TRAINER_PRESETS = ['cpu-small', 'gpu-resnet18-128', 'gpu-resnet50-224', 'gpu-vits16-224'] as const;
export type TrainerPreset = (typeof TRAINER_PRESETS)[number];

/** The trainer's backbones (model.py ARCHS): what `models import --arch` may name for weights to continue training. */
export const TRAINER_ARCHS = ['small-resnet', 'resnet18', 'resnet50', 'vit-s16'] as const;
export type TrainerArch = (typeof TRAINER_ARCHS)[number];

/** What the ECS task runs unless the deployment says otherwise. */
export const DEFAULT_GPU_PRESET: TrainerPreset = 'gpu-resnet18-128';

export function trainerPresetsDocument(): string {
  return `${JSON.stringify({ presets: TRAINER_PRESETS, archs: TRAINER_ARCHS, defaultGpu: DEFAULT_GPU_PRESET }, null, 2)}\n`;
}
