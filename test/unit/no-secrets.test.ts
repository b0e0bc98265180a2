/** No credentials in the repository: AWS access keys, private keys or secret-looking assignments. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../..');
const PATTERNS: Array<[string, RegExp]> = [
  ['AWS access key id', /\b(AKIA|ASIA)[0-9A-Z]{16}\b/],
  ['private key', /-----BEGIN (RSA |EC |OPENSSH |)PRIVATE KEY-----/],
  ['AWS secret access key assignment', /aws_secret_access_key\s*[=:]\s*['"]?[A-Za-z0-9/+]{40}\b/i],
];

describe('repository', () => {
  it('contains no credentials in tracked files', () => {
    const files = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' })
      .split('\n')
      .filter((f) => f && !f.endsWith('package-lock.json') && !/\.(png|onnx|npy|gz)$/.test(f));
    const findings: string[] = [];
    for (const f of files) {
      let text: string;
      try {
        text = readFileSync(join(root, f), 'utf8');
      } catch {
        continue;
      }
      for (const [what, re] of PATTERNS) if (re.test(text) && f !== 'test/unit/no-secrets.test.ts') findings.push(`${f}: ${what}`);
    }
    expect(findings).toEqual([]);
  });
});
