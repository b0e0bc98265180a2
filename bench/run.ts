/**
 * `npm run bench -- <name> [--quick] [...]`: runs a benchmark and writes its JSON under bench/results/.
 *
 *   trainer   the trainer on Fashion-MNIST (60k unlabelled + 100 labels): kNN, linear probe,
 *             pseudo-label accuracy on the 10k test images, images/s; --minutes N (default 20)
 *
 * --quick runs a benchmark small enough for CI, only to show it still runs; its numbers mean nothing.
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..');
const [name, ...rest] = process.argv.slice(2);
const quick = rest.includes('--quick');

const benches: Record<string, () => number> = {
  trainer: () => {
    const minutesAt = rest.indexOf('--minutes');
    const minutes = minutesAt >= 0 ? rest[minutesAt + 1]! : quick ? '0.5' : '20';
    const out = join(root, 'bench', 'results', quick ? 'trainer-quick.json' : `trainer-${process.env.BENCH_DEVICE ?? 'cpu'}.json`);
    const args = ['bench/trainer_bench.py', '--minutes', minutes, '--out', out, ...(quick ? ['--quick'] : [])];
    return spawnSync(join(root, '.venv/bin/python'), args, { cwd: root, stdio: 'inherit' }).status ?? 1;
  },
};

const selected = name === undefined || name === '--quick' ? Object.keys(benches) : [name];
let failed = 0;
for (const bench of selected) {
  const run = benches[bench];
  if (!run) {
    console.error(`unknown benchmark "${bench}"; available: ${Object.keys(benches).join(', ')}`);
    process.exit(2);
  }
  console.log(`[bench] ${bench}${quick ? ' (quick)' : ''}`);
  if (run() !== 0) failed += 1;
}
process.exit(failed ? 1 : 0);
