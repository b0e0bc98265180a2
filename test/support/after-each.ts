import { closeFakePipelines } from './pipeline';

afterEach(async () => {
  await closeFakePipelines();
});
