/**
 * The documented AWS service limits this code meets, in one place: the adapters batch and cap by
 * them, the API derives its request limits from them, and the AWS-mode harness enforces them.
 * Sources: Amazon S3 Vectors "Limitations and restrictions"; API Gateway "Quotas" (REST APIs);
 * Lambda "Quotas" (invocation payload); Amazon SQS "Quotas" (messages).
 */
export const AWS_LIMITS = {
  s3Vectors: {
    maxTopK: 100,
    putVectorsPerCall: 500,
    deleteVectorsPerCall: 500,
    getVectorsPerCall: 100,
    listVectorsPageSize: 1000,
    /** Filterable + non-filterable metadata per vector. */
    totalMetadataBytes: 40 * 1024,
    filterableMetadataBytes: 2 * 1024,
    metadataKeysPerVector: 50,
    nonFilterableKeysPerIndex: 10,
    requestPayloadBytes: 20 * 1024 * 1024,
  },
  apiGateway: {
    /** REST API request and response payload. */
    maxPayloadBytes: 10 * 1024 * 1024,
    /** REST API integration timeout (the default and, for Regional APIs, the usual ceiling). */
    integrationTimeoutMs: 29_000,
  },
  lambda: {
    /** Synchronous invocation request payload (the event's JSON), per Lambda's quotas. */
    syncPayloadBytes: 6 * 1024 * 1024,
  },
  sqs: {
    /** The message size this pipeline designs for (the classic SQS limit; S3 events and our messages are far below it). */
    maxMessageBytes: 256 * 1024,
    maxBatchEntries: 10,
  },
} as const;
