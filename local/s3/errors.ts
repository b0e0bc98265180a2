/** An S3 error response: HTTP status, S3 error code, message, and any extra response headers. */
export class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const noSuchBucket = (name: string) => new S3Error(404, 'NoSuchBucket', `The specified bucket does not exist: ${name}`);
export const noSuchKey = () => new S3Error(404, 'NoSuchKey', 'The specified key does not exist.');
export const noSuchUpload = () =>
  new S3Error(
    404,
    'NoSuchUpload',
    'The specified multipart upload does not exist. The upload ID might be invalid, or the upload might have been aborted or completed.',
  );
export const preconditionFailed = () => new S3Error(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
export const invalidArgument = (message: string) => new S3Error(400, 'InvalidArgument', message);
export const malformedXml = () =>
  new S3Error(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
export const notImplemented = (what: string) =>
  new S3Error(501, 'NotImplemented', `A header or query you provided implies functionality that is not implemented: ${what}`);
