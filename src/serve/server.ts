// The HTTP API over an open search index: the same library calls as `byol-align search` and
// `embed`, with a JSON schema on every route (the validation and the OpenAPI document at /docs at
// once), bounded bodies (JSON, or multipart forms for image uploads), a bearer token when one is
// set, and a 4xx with a message for every bad request.
import Fastify, { type FastifyError, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import fastifyMultipart from '@fastify/multipart';
import fastifySwagger from '@fastify/swagger';
import { readRegularFile } from '../data/safe_read.js';
import { sniffImageFormat } from '../data/paired.js';
import {
  IndexQueryError,
  MAX_K,
  type IndexedItem,
  type RowHit,
  type SearchIndex,
  type SearchQuery,
  type StoredRow,
} from '../index/index.js';
import { bearerMatches } from './auth.js';
import { BEARER_SCHEME, docsPage, documentedRoute } from './docs.js';
import { PAGE_HTML, pageScript } from './page.js';
import { RequestMetrics } from './metrics.js';
import { fileKeyword, fileSchema, formLimits, imageForm } from './upload.js';
import { QueryBatcher, type QueryBatcherOptions } from './query_batcher.js';

export interface ServerOptions {
  /** The index to serve (the caller opens and closes it). */
  index: SearchIndex;
  /** Require `Authorization: Bearer TOKEN` on /v1/ routes. */
  token?: string;
  /** Largest request body in bytes, JSON or multipart (default 16 MiB: a batch of images). */
  bodyLimit?: number;
  /** Fastify's logger setting (default off). */
  logger?: boolean;
  /** How the searches of concurrent requests are gathered into one batch (src/serve/query_batcher.ts). */
  batching?: QueryBatcherOptions;
  /** Where the server counts its requests (default: a new one). */
  metrics?: RequestMetrics;
  /** What /metrics answers (default: the text of `metrics`; a worker of several adds up all of theirs, src/serve/workers.ts). */
  metricsText?: () => Promise<string>;
}

/** Queries per request, at most. */
export const MAX_QUERIES = 64;
const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;
const MAX_TEXT = 16384;
const MAX_VECTOR = 65536;
const MAX_ID = 1024;

const numbers = { type: 'array', minItems: 1, maxItems: MAX_VECTOR, items: { type: 'number' } } as const;
/** One query: exactly one of text, image (base64 of a PNG, JPEG, WebP or GIF file), vector, embedding. */
const querySchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  properties: {
    text: { type: 'string', minLength: 1, maxLength: MAX_TEXT },
    image: { type: 'string', minLength: 4, pattern: '^[A-Za-z0-9+/]+={0,2}$' },
    vector: numbers,
    embedding: numbers,
  },
} as const;
/** Uploaded image files (PNG, JPEG, WebP or GIF), one query each: the multipart twin of a list of `{image}` queries. */
const imageFilesSchema = {
  type: 'array',
  minItems: 1,
  maxItems: MAX_QUERIES,
  items: fileSchema,
  description: 'image files (PNG, JPEG, WebP or GIF), one query each, in order',
} as const;
const filterSchema = { type: 'object', maxProperties: 32 } as const;
/** The options of a search, the same in a JSON body and a multipart form. */
const searchOptionsSchema = {
  k: { type: 'integer', minimum: 1, maximum: MAX_K },
  offset: { type: 'integer', minimum: 0, maximum: 10 * MAX_K },
  modality: { type: 'string', enum: ['image', 'text', 'vector'] },
  filter: filterSchema,
} as const;
const errorSchema = { type: 'object', properties: { error: { type: 'string' } } } as const;
const itemSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    item: { type: 'string' },
    modality: { type: 'string' },
    text: { type: ['string', 'null'] },
    mediaUrl: { type: ['string', 'null'] },
    metadata: { type: 'object', additionalProperties: true },
  },
} as const;
const hitSchema = {
  ...itemSchema,
  properties: { rank: { type: 'integer' }, score: { type: 'number' }, ...itemSchema.properties },
} as const;

interface QueryBody {
  text?: string;
  /** Base64 text in a JSON body; the file's bytes from a multipart form. */
  image?: string | Uint8Array;
  vector?: number[];
  embedding?: number[];
}

interface SearchBody {
  query?: QueryBody;
  queries?: QueryBody[];
  k?: number;
  offset?: number;
  modality?: string;
  filter?: Record<string, never>;
}

function libraryQuery(q: QueryBody): SearchQuery {
  if (typeof q.image === 'string') return { image: new Uint8Array(Buffer.from(q.image, 'base64')) };
  return q as SearchQuery;
}

/** What a client sees of a row: never the file path of its media, only the URL that serves it. */
function publicItem({ media, ...row }: IndexedItem): Omit<IndexedItem, 'media'> & { mediaUrl: string | null } {
  return { ...row, mediaUrl: media === null ? null : `/v1/items/${encodeURIComponent(row.id)}/media` };
}

/**
 * The JSON of a search's answer, written here rather than by the route's serializer: each row's
 * part (what publicItem shows, in the schema's order) is made once and kept while the row is, and
 * the rows held in memory are the same objects in every answer (bench/RESULTS.md: a tenth of a
 * loaded server's time went to making and serialising the hits' objects).
 */
class SearchAnswerJson {
  readonly #rows = new WeakMap<StoredRow, string>();

  of(results: RowHit[][]): string {
    const hits = (list: RowHit[]): string =>
      list.map(({ rank, score, row }) => `{"rank":${rank},"score":${JSON.stringify(score)},${this.#row(row)}}`).join(',');
    return `{"results":[${results.map((list) => `{"hits":[${hits(list)}]}`).join(',')}]}`;
  }

  #row(row: StoredRow): string {
    let json = this.#rows.get(row);
    if (json === undefined) {
      const { id, item, modality, text, mediaUrl, metadata } = publicItem({
        ...row,
        metadata: JSON.parse(row.metadata) as Record<string, unknown>,
      });
      // Without its braces, to sit after rank and score.
      json = JSON.stringify({ id, item, modality, text, mediaUrl, metadata }).slice(1, -1);
      this.#rows.set(row, json);
    }
    return json;
  }
}

const MIME = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp', gif: 'image/gif' } as const;

// The page's script is a file of its own so the policy can forbid inline scripts.
const PAGE_POLICY = "default-src 'self'; img-src 'self' blob:; style-src 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'";
// The API's page runs no script at all.
const DOCS_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

/**
 * A Fastify server over `index` (not yet listening: call `listen`, or `inject` in tests).
 *
 * @example
 * const index = await SearchIndex.open({ db: 'icons.lance' });
 * const server = buildServer({ index, token: process.env.BYOL_ALIGN_TOKEN });
 * await server.listen({ host: '127.0.0.1', port: 8080 });
 */
export function buildServer(options: ServerOptions): FastifyInstance {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const server = Fastify({
    logger: options.logger ?? false,
    bodyLimit,
    routerOptions: { maxParamLength: MAX_ID }, // a longer id is a 414
    // Unknown fields are refused, not silently dropped; types are not coerced ("3" is not 3).
    // `isFile` validates an uploaded file in a multipart form.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false }, plugins: [fileKeyword] },
  });
  // Bodies are JSON or multipart forms: a text body has no schema to meet, so it is a 415.
  server.removeContentTypeParser('text/plain');

  server.setErrorHandler((error: FastifyError, _request, reply) => {
    if (error.validation) return reply.code(400).send({ error: `bad request: ${error.message}` });
    if (error instanceof IndexQueryError) return reply.code(400).send({ error: error.message });
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500)
      return reply.code(error.statusCode).send({ error: error.message });
    server.log.error(error);
    return reply.code(500).send({ error: 'internal error' });
  });
  server.setNotFoundHandler((request, reply) => reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}` }));

  // The token guards the index's contents (/v1/); the page, its script, the API's description,
  // /healthz and /metrics hold none and answer anyone.
  if (options.token !== undefined) {
    const token = options.token;
    server.addHook('onRequest', async (request, reply) => {
      if (!request.url.startsWith('/v1/')) return;
      if (!bearerMatches(request.headers.authorization, token))
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer')
          .send({ error: 'missing or wrong bearer token (Authorization: Bearer TOKEN)' });
    });
  }

  const metrics = options.metrics ?? new RequestMetrics();
  server.addHook('onResponse', async (request, reply) => {
    metrics.record(request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  });

  // @fastify/swagger learns the routes as they are added, so it loads before them.
  server.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'byol-align search',
        version: '1',
        description: `Search an index of images and captions in one embedding space (${options.index.provenance.space} space, width ${options.index.provenance.dim}).`,
      },
      ...(options.token === undefined ? {} : { components: { securitySchemes: { [BEARER_SCHEME]: { type: 'http', scheme: 'bearer' } } } }),
    },
    transform: documentedRoute(options.token !== undefined),
  });
  server.register(fastifyMultipart, { limits: formLimits(bodyLimit, MAX_QUERIES) });
  server.register(routes(options, bodyLimit, metrics));
  return server;
}

/** Every route of the server. */
function routes(options: ServerOptions, bodyLimit: number, metrics: RequestMetrics): FastifyPluginAsync {
  const { index } = options;
  const batcher = new QueryBatcher(index, options.batching);
  const answerJson = new SearchAnswerJson();
  const script = pageScript(); // read now: a server built without its page fails at once, not at the first visit
  return async (server) => {
    server.get('/', { schema: { hide: true } }, async (_request, reply) =>
      reply.type('text/html; charset=utf-8').header('content-security-policy', PAGE_POLICY).send(PAGE_HTML),
    );
    server.get('/app.js', { schema: { hide: true } }, async (_request, reply) =>
      reply.type('text/javascript; charset=utf-8').header('content-security-policy', PAGE_POLICY).send(script),
    );

    server.get('/docs/json', { schema: { hide: true } }, async () => server.swagger());
    let docsHtml: string | undefined;
    server.get('/docs', { schema: { hide: true } }, async (_request, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .header('content-security-policy', DOCS_POLICY)
        .send((docsHtml ??= docsPage(server.swagger()))),
    );

    server.get('/metrics', { schema: { summary: 'Prometheus text: requests, errors and latency by route' } }, async (_request, reply) =>
      reply.type('text/plain; version=0.0.4').send(options.metricsText === undefined ? metrics.text() : await options.metricsText()),
    );

    server.get(
      '/healthz',
      { schema: { summary: 'Liveness', response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } },
      async () => ({ status: 'ok' }),
    );

    server.post<{ Body: SearchBody }>(
      '/v1/search',
      {
        schema: {
          summary: 'The nearest items to one query or a batch',
          description:
            'A JSON body holds `query` or `queries` (text, base64 image, vector or embedding); a multipart form holds image files in `image` fields, one query each, and the same options as text fields (`filter` as JSON).',
          body: {
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  additionalProperties: false,
                  properties: {
                    query: querySchema,
                    queries: { type: 'array', minItems: 1, maxItems: MAX_QUERIES, items: querySchema },
                    ...searchOptionsSchema,
                  },
                },
              },
              'multipart/form-data': {
                schema: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['image'],
                  properties: { image: imageFilesSchema, ...searchOptionsSchema },
                },
              },
            },
          },
          response: {
            200: {
              type: 'object',
              properties: {
                results: { type: 'array', items: { type: 'object', properties: { hits: { type: 'array', items: hitSchema } } } },
              },
            },
            400: errorSchema,
          },
        },
        ...imageForm('image', bodyLimit, MAX_QUERIES, ({ image, ...rest }: { image: Buffer[] }) => ({
          queries: image.map((bytes) => ({ image: bytes })),
          ...rest,
        })),
      },
      async (request, reply) => {
        const body = request.body;
        if ((body.query === undefined) === (body.queries === undefined))
          throw new IndexQueryError('give exactly one of "query" (one query) or "queries" (a list)');
        const queries = body.queries ?? [body.query!];
        const results = await batcher.search(queries.map(libraryQuery), {
          k: body.k,
          offset: body.offset,
          modality: body.modality,
          where: body.filter,
        });
        // A string with a JSON type goes out as it is (the schema above still documents it).
        return reply.type('application/json; charset=utf-8').send(answerJson.of(results));
      },
    );

    server.post<{ Body: { inputs: QueryBody[] } }>(
      '/v1/embed',
      {
        schema: {
          summary: "Embeddings of texts or images in the index's space",
          description: 'A JSON body holds `inputs` (texts, base64 images, vectors); a multipart form holds image files in `image` fields.',
          body: {
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['inputs'],
                  properties: { inputs: { type: 'array', minItems: 1, maxItems: MAX_QUERIES, items: querySchema } },
                },
              },
              'multipart/form-data': {
                schema: { type: 'object', additionalProperties: false, required: ['image'], properties: { image: imageFilesSchema } },
              },
            },
          },
          response: {
            200: {
              type: 'object',
              properties: {
                space: { type: 'string' },
                dim: { type: 'integer' },
                embeddings: { type: 'array', items: { type: 'array', items: { type: 'number' } } },
              },
            },
            400: errorSchema,
          },
        },
        ...imageForm('image', bodyLimit, MAX_QUERIES, ({ image }: { image: Buffer[] }) => ({
          inputs: image.map((bytes) => ({ image: bytes })),
        })),
      },
      async (request) => {
        const embeddings = await batcher.embed(request.body.inputs.map(libraryQuery));
        return { space: index.provenance.space, dim: index.provenance.dim, embeddings: embeddings.map((e) => Array.from(e)) };
      },
    );

    const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: MAX_ID } } } as const;

    server.get<{ Params: { id: string } }>(
      '/v1/items/:id',
      { schema: { summary: 'An indexed item', params: idParams, response: { 200: itemSchema, 404: errorSchema } } },
      async (request, reply) => {
        const row = await index.item(request.params.id);
        if (row === undefined) return reply.code(404).send({ error: `no item '${request.params.id}' in the index` });
        return publicItem(row);
      },
    );

    // The file served is the one the index recorded for the row: the client names a row, never a path.
    server.get<{ Params: { id: string } }>(
      '/v1/items/:id/media',
      { schema: { summary: "An indexed item's image file", params: idParams } },
      async (request, reply) => {
        const row = await index.item(request.params.id);
        if (row === undefined) return reply.code(404).send({ error: `no item '${request.params.id}' in the index` });
        if (row.media === null) return reply.code(404).send({ error: `item '${row.id}' (${row.modality}) has no media` });
        let bytes: Buffer;
        try {
          bytes = readRegularFile(row.media);
        } catch {
          return reply.code(404).send({ error: `the media of item '${row.id}' is no longer readable; re-index` });
        }
        const format = sniffImageFormat(bytes.subarray(0, 16));
        if (format === null) return reply.code(404).send({ error: `the media of item '${row.id}' is no longer an image; re-index` });
        return reply.header('content-type', MIME[format]).header('x-content-type-options', 'nosniff').send(bytes);
      },
    );
  };
}
