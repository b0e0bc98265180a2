/**
 * One retry and timeout policy for every AWS SDK client, in Lambda and in the embedded stack:
 * throttling, 5xx, connection resets and timeouts are retried by the SDK's standard strategy
 * (exponential backoff with full jitter, a retry-token bucket), up to `maxAttempts` tries.
 * What still fails goes back to the queue, whose own backoff and DLQ take over.
 */
export interface ClientPolicy {
  maxAttempts: number;
  retryMode: 'standard';
  requestHandler: { connectionTimeout: number; requestTimeout: number; throwOnRequestTimeout: boolean };
}

export function clientPolicy(overrides: { maxAttempts?: number; requestTimeoutMs?: number } = {}): ClientPolicy {
  return {
    maxAttempts: overrides.maxAttempts ?? 5,
    retryMode: 'standard',
    // Without throwOnRequestTimeout the SDK only logs a warning and keeps waiting on a stuck request.
    requestHandler: { connectionTimeout: 3_000, requestTimeout: overrides.requestTimeoutMs ?? 30_000, throwOnRequestTimeout: true },
  };
}
