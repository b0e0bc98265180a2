/**
 * One Lambda execution environment: loads a function's bundle (the INIT phase, on the first
 * invocation) and runs its handler for one invocation at a time, as Lambda does. The parent sends
 * `{type: 'invoke', id, event, deadline}` and receives `{type: 'result', id, result | error, ms, initMs}`.
 */
const bundle = process.argv[2];
let mod;
process.on('message', async (msg) => {
  if (msg.type !== 'invoke') return;
  let initMs;
  try {
    if (!mod) {
      const t = performance.now();
      mod = require(bundle);
      initMs = performance.now() - t;
    }
    const started = performance.now();
    const context = {
      awsRequestId: msg.id,
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: '$LATEST',
      invokedFunctionArn: process.env.HARNESS_FUNCTION_ARN,
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: `/aws/lambda/${process.env.AWS_LAMBDA_FUNCTION_NAME}`,
      logStreamName: 'harness',
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => msg.deadline - Date.now(),
    };
    try {
      const result = await mod.handler(msg.event, context);
      process.send({ type: 'result', id: msg.id, result: result === undefined ? null : result, ms: performance.now() - started, initMs });
    } catch (err) {
      process.send({
        type: 'result',
        id: msg.id,
        error: { errorType: err?.name, errorMessage: err?.message, stack: err?.stack },
        ms: performance.now() - started,
        initMs,
      });
    }
  } catch (err) {
    process.send({
      type: 'result',
      id: msg.id,
      error: { errorType: 'Runtime.ImportModuleError', errorMessage: err?.message, stack: err?.stack },
      ms: 0,
      initMs,
    });
  }
});
process.send({ type: 'ready' });
