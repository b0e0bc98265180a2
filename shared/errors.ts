/**
 * Typed errors. Use cases throw them; each edge (HTTP, SQS batch) maps them in one place.
 */

/** Client errors: the request can never succeed as sent. `status` is the HTTP status. */
export class ClientError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequestError extends ClientError {
  constructor(message: string) {
    super(400, 'bad_request', message);
  }
}

export class NotFoundError extends ClientError {
  constructor(message: string) {
    super(404, 'not_found', message);
  }
}

export class MethodNotAllowedError extends ClientError {
  constructor(message: string) {
    super(405, 'method_not_allowed', message);
  }
}

export class ConflictError extends ClientError {
  constructor(code: string, message: string) {
    super(409, code, message);
  }
}

export class PayloadTooLargeError extends ClientError {
  constructor(message: string) {
    super(413, 'payload_too_large', message);
  }
}

export class UnsupportedMediaTypeError extends ClientError {
  constructor(message: string) {
    super(415, 'unsupported_media_type', message);
  }
}

export class ServiceUnavailableError extends ClientError {
  constructor(code: string, message: string) {
    super(503, code, message);
  }
}

/** An input image that will never be processed successfully (corrupt, not an image, too large). */
export class UnprocessableImageError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'UnprocessableImageError';
  }
}

/** Configuration missing or malformed; the message names the key. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
