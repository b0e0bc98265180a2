process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
/** Jest projects: `unit` (fast, in-memory fakes and mocks), `integration` (real local servers on
 * loopback), `e2e` (the whole embedded stack as a user runs it), `aws` (the AWS composition against moto with
 * IAM, Lambda's pollers and API Gateway as the template configures them), `browser` (the web console in
 * the system Chromium against the embedded stack). */
const tsJest = ['ts-jest', { diagnostics: false }];
const base = {
  testEnvironment: '<rootDir>/test/support/jest-node-environment.js',
  transform: { '^.+\\.ts$': tsJest },
  moduleFileExtensions: ['ts', 'js', 'json'],
  setupFilesAfterEnv: ['<rootDir>/test/support/after-each.ts'],
};

module.exports = {
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    { ...base, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.ts'] },
    { ...base, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.test.ts'] },
    { ...base, displayName: 'aws', testMatch: ['<rootDir>/test/aws/**/*.test.ts'] },
    { ...base, displayName: 'browser', testMatch: ['<rootDir>/test/browser/**/*.test.ts'] },
  ],
};
