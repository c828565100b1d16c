/**
 * readBody: the bytes of a request body, read as raw-body reads them for koa-body.
 *
 * Both readers of raw request bodies use it: the fast dispatcher (server/fast-path.ts, JSON
 * bodies, which must answer as koa-body does) and the specification upload
 * (server/routes/engine-specs.ts, JSON5 and YAML, possibly compressed). Each turns the bytes into
 * text, and the errors into its answers, its own way.
 *
 * The errors are shaped like raw-body's (http-errors: status, statusCode, expose, type), so that
 * bodyError (server/errors.ts) answers them as it answers koa-body's:
 * - 413 `entity.too.large`: a declared Content-Length over the limit (refused before reading), or
 *   more than `limit` bytes received (after decoding);
 * - 415 `encoding.unsupported`: a Content-Encoding other than identity, gzip, x-gzip, deflate, br;
 * - 400 `request.size.invalid`: an uncompressed body whose length is not its Content-Length;
 * - 400 `request.aborted`: the client went away;
 * - a decoder's own error (a body that is not the gzip it claims to be) as it is.
 * On an error the request is left paused, as raw-body leaves it, so the answer can still be sent.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';

/** The decoders of the Content-Encodings a body may have. */
const DECODERS: Record<string, () => Transform> = { gzip: createGunzip, 'x-gzip': createGunzip, deflate: createInflate, br: createBrotliDecompress };

/** An error shaped like raw-body's (http-errors: status, statusCode, expose, type). */
function httpError(status: number, message: string, type: string): Error {
  return Object.assign(new Error(message), { status, statusCode: status, expose: true, type });
}

const tooLarge = (): Error => httpError(413, 'request entity too large', 'entity.too.large');

/**
 * The body's bytes: at most `limit` bytes once decoded (a larger Content-Length is refused before
 * reading), Content-Encoding decoded. Rejects with the errors listed in the module comment.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  // raw-body's reading of the header, as co-body passes it (`~~len`).
  const length = declared ? ~~declared : null;
  if (length !== null && length > limit) {
    req.pause();
    return Promise.reject(tooLarge());
  }
  const encoding = (req.headers['content-encoding'] || 'identity').toLowerCase();
  let decoder: Transform | undefined;
  if (encoding !== 'identity') {
    const make = DECODERS[encoding];
    if (!make) {
      req.pause();
      return Promise.reject(httpError(415, `Unsupported Content-Encoding: ${encoding}`, 'encoding.unsupported'));
    }
    decoder = req.pipe(make());
  }
  const source: Readable = decoder ?? req;
  // The length is checked only when the bytes read are the bytes sent (co-body: identity only).
  const expected = encoding === 'identity' ? length : null;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let complete = false;
    const finish = (err: Error | null, bytes?: Buffer): void => {
      if (complete) return;
      complete = true;
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onEnd);
      req.off('aborted', onAborted);
      if (err) {
        req.unpipe();
        req.pause();
        decoder?.destroy();
        reject(err);
      } else {
        resolve(bytes!);
      }
    };
    const onData = (chunk: Buffer): void => {
      if (complete) return;
      received += chunk.length;
      if (received > limit) finish(tooLarge());
      else chunks.push(chunk);
    };
    const onEnd = (err?: Error): void => {
      if (err) return finish(err);
      if (expected !== null && received !== expected) return finish(httpError(400, 'request size did not match content length', 'request.size.invalid'));
      finish(null, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
    };
    const onAborted = (): void => finish(httpError(400, 'request aborted', 'request.aborted'));
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', onEnd);
    req.on('aborted', onAborted);
  });
}
