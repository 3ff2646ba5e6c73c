// Multipart image uploads: a `multipart/form-data` body of image files (and the request's other
// fields as text) read into an object that the route's multipart schema validates, under the same
// byte limit as a JSON body, then reshaped into the route's JSON body so one handler serves both.
import type {} from '@fastify/multipart'; // its request methods: isMultipart, parts
import type { FastifyRequest, FastifyServerOptions, preHandlerAsyncHookHandler, preValidationAsyncHookHandler } from 'fastify';

/** Form fields besides the files, at most (a search has four: k, offset, modality, filter). */
export const MAX_FORM_FIELDS = 16;
/** Bytes in one form field, at most (a filter of 1000 ids fits). */
export const MAX_FIELD_BYTES = 256 * 1024;

/** A plugin of the Ajv that Fastify validates with. */
type AjvPlugin = Extract<NonNullable<NonNullable<FastifyServerOptions['ajv']>['plugins']>[number], (...args: never[]) => unknown>;

/**
 * The schema of an uploaded file: validated as the Buffer the form reader made of it (the
 * `isFile` keyword below), described to OpenAPI as a binary string (`openApiSchema`, docs.ts).
 */
export const fileSchema = { isFile: true } as const;

/**
 * Adds the `isFile` keyword to Fastify's Ajv: true when the value is an uploaded file's bytes.
 *
 * @example
 * Fastify({ ajv: { plugins: [fileKeyword] } });
 */
export const fileKeyword: AjvPlugin = (ajv) =>
  ajv.addKeyword({
    keyword: 'isFile',
    schemaType: 'boolean',
    compile: (isFile: boolean) => (value: unknown) => Buffer.isBuffer(value) === isFile,
    error: { message: 'must be an uploaded file' },
  });

/** A 4xx about a request's body, with a message for the client (the server's error handler sends it). */
export class BodyError extends Error {
  constructor(
    readonly statusCode: 400 | 413,
    message: string,
  ) {
    super(message);
    this.name = 'BodyError';
  }
}

type FormLimits = NonNullable<Parameters<FastifyRequest['parts']>[0]>['limits'];

/** The parser's limits for a form under `bodyLimit` bytes with at most `maxFiles` files. */
export function formLimits(bodyLimit: number, maxFiles: number): FormLimits {
  return {
    fileSize: bodyLimit,
    files: maxFiles,
    fields: MAX_FORM_FIELDS,
    fieldSize: MAX_FIELD_BYTES,
    parts: maxFiles + MAX_FORM_FIELDS,
    headerPairs: 64,
  };
}

/**
 * How a field's text becomes the value its JSON twin has: counts are integers and a filter is a
 * JSON object. Text that does not convert is kept as text, so the schema names the field.
 */
const FIELD_VALUE: Record<string, (text: string) => unknown> = {
  k: (text) => (/^-?\d{1,9}$/.test(text) ? Number(text) : text),
  offset: (text) => (/^-?\d{1,9}$/.test(text) ? Number(text) : text),
  filter: (text) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  },
};

/** An error the multipart parser raised, as the client should read it. */
function formError(err: unknown, bodyLimit: number, maxFiles: number): Error {
  if (err instanceof BodyError) return err;
  const { code, statusCode, message } = err as { code?: string; statusCode?: number; message?: string };
  switch (code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return new BodyError(413, `an uploaded file is larger than the body limit (${bodyLimit} bytes)`);
    case 'FST_FILES_LIMIT':
      return new BodyError(413, `a form holds at most ${maxFiles} files`);
    case 'FST_FIELDS_LIMIT':
    case 'FST_PARTS_LIMIT':
      return new BodyError(413, `a form holds at most ${maxFiles} files and ${MAX_FORM_FIELDS} other fields`);
    case 'FST_INVALID_JSON_FIELD_ERROR':
      return new BodyError(400, 'a form field declared as application/json is not JSON');
  }
  if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) return new BodyError(400, message ?? 'bad multipart body');
  // busboy's own errors (no boundary, a part cut short, a malformed header) carry no status.
  return new BodyError(400, `malformed multipart body: ${message ?? String(err)}`);
}

/** Every part of a multipart request: files as Buffers, fields converted; each name's values in order. */
async function readForm(request: FastifyRequest, bodyLimit: number, maxFiles: number): Promise<Record<string, unknown[]>> {
  const declared = Number(request.headers['content-length']);
  if (declared > bodyLimit) throw new BodyError(413, `the request body is larger than the body limit (${bodyLimit} bytes)`);
  const form: Record<string, unknown[]> = {};
  let fileBytes = 0; // a chunked body declares no length: the files' sum is bounded instead
  try {
    for await (const part of request.parts({ limits: formLimits(bodyLimit, maxFiles) })) {
      let value: unknown;
      if (part.type === 'file') {
        value = await part.toBuffer();
        fileBytes += (value as Buffer).length;
        if (fileBytes > bodyLimit)
          throw new BodyError(413, `the uploaded files are larger than the body limit (${bodyLimit} bytes) together`);
      } else {
        if (part.valueTruncated || part.fieldnameTruncated)
          throw new BodyError(413, `form field '${part.fieldname}' is longer than ${MAX_FIELD_BYTES} bytes`);
        value = typeof part.value === 'string' ? (FIELD_VALUE[part.fieldname]?.(part.value) ?? part.value) : part.value;
      }
      (form[part.fieldname] ??= []).push(value);
    }
  } catch (err) {
    throw formError(err, bodyLimit, maxFiles);
  }
  return form;
}

/**
 * The hooks that let a route take a multipart form beside JSON: `preValidation` reads the form
 * into `{ [filesField]: [Buffer, ...], field: value, ... }` for the route's multipart schema, and
 * `preHandler` turns the validated form into the JSON body the handler reads. A request with no
 * body at all is refused: with a schema per content type, Fastify validates nothing without one.
 *
 * @example
 * server.post('/v1/embed', { schema, ...imageForm('image', 16 << 20, 64, ({ image }) => ({ inputs: image.map((b) => ({ image: b })) })) }, handler);
 */
export function imageForm<Form extends Record<string, unknown>>(
  filesField: string,
  bodyLimit: number,
  maxFiles: number,
  toBody: (form: Form) => unknown,
): { preValidation: preValidationAsyncHookHandler; preHandler: preHandlerAsyncHookHandler } {
  return {
    preValidation: async (request) => {
      if (!request.isMultipart()) {
        if (request.body === undefined) throw new BodyError(400, 'bad request: the body must be a JSON object or a multipart form');
        return;
      }
      const form = await readForm(request, bodyLimit, maxFiles);
      // Only the files field is a list; a field sent twice stays a list, which its schema refuses.
      request.body = Object.fromEntries(
        Object.entries(form).map(([name, values]) => [name, name === filesField || values.length > 1 ? values : values[0]]),
      );
    },
    preHandler: async (request) => {
      if (request.isMultipart()) request.body = toBody(request.body as Form);
    },
  };
}
