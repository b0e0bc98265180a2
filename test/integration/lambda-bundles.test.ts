/**
 * Bundles the Lambda functions for real (esbuild, plus sharp and onnxruntime-node installed for
 * linux/arm64 with the other platforms' binaries pruned) and measures each asset's unzipped size
 * against Lambda's 250 MB limit. Needs the npm registry.
 */
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../infra/lib/app';

function du(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((sum, name) => sum + du(join(path, name)), 0);
}

const LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024;

describe('Lambda bundles', () => {
  it('stay well under 250 MB unzipped, with only the Lambda platform\u2019s native binaries', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'cdk-bundles-'));
    const { stateless } = buildApp(new App({ outdir, context: { 'aws:cdk:bundling-stacks': ['ImagePipelineStateless'] } }));
    const template = Template.fromStack(stateless);
    const functions = template.findResources('AWS::Lambda::Function');
    const sizes: Record<string, number> = {};
    for (const [id, fn] of Object.entries(functions)) {
      const name = ['Augment', 'Embed', 'Api', 'Lifecycle'].find((n) => id.startsWith(`${n}Function`));
      if (!name) continue;
      const key = JSON.stringify(fn.Properties.Code.S3Key);
      const hash = /([0-9a-f]{64})\.zip/.exec(key)![1]!;
      const dir = join(outdir, `asset.${hash}`);
      sizes[name] = du(dir);
      if (name !== 'Lifecycle') {
        const onnxBin = join(dir, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
        expect(readdirSync(onnxBin)).toEqual(['linux']);
        expect(readdirSync(join(onnxBin, 'linux'))).toEqual(['arm64']);
        expect(
          readdirSync(join(dir, 'node_modules', '@img'))
            .filter((d) => d.startsWith('sharp-'))
            .sort(),
        ).toEqual(['sharp-libvips-linux-arm64', 'sharp-linux-arm64']);
      }
    }
    console.log(
      `unzipped Lambda assets (MB): ${Object.entries(sizes)
        .map(([n, b]) => `${n} ${(b / 1048576).toFixed(1)}`)
        .join(', ')}`,
    );
    expect(Object.keys(sizes).sort()).toEqual(['Api', 'Augment', 'Embed', 'Lifecycle']);
    for (const size of Object.values(sizes)) expect(size).toBeLessThan(LAMBDA_UNZIPPED_LIMIT);
  }, 600_000);
});
