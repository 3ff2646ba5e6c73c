// The OpenAPI document of the server's routes and the page at /docs that shows it. The document is
// made by @fastify/swagger from the routes' own JSON schemas (the validation and the documentation
// at once); the page is HTML written here from that document, with no script and nothing fetched
// from elsewhere, so it works offline and under a policy that allows no script at all.
import type { FastifySchema } from 'fastify';
import type { SwaggerTransform } from '@fastify/swagger';

/** The name of the bearer-token scheme in the document's components. */
export const BEARER_SCHEME = 'bearerToken';

/** A copy of `schema` in which every uploaded file (`isFile`, upload.ts) is OpenAPI's binary string. */
function openApiSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(openApiSchema);
  if (schema === null || typeof schema !== 'object') return schema;
  const { isFile, ...rest } = schema as Record<string, unknown>;
  if (isFile === true) return { ...rest, type: 'string', format: 'binary' };
  return Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, openApiSchema(value)]));
}

/**
 * The swagger transform: files as binary strings, and the bearer token on the /v1/ routes when
 * the server has one (the only routes it guards, server.ts).
 */
export function documentedRoute(tokenRequired: boolean): SwaggerTransform {
  return ({ schema, url }) => {
    const documented = openApiSchema(schema) as FastifySchema;
    if (tokenRequired && url.startsWith('/v1/')) documented.security = [{ [BEARER_SCHEME]: [] }];
    return { schema: documented, url };
  };
}

/** The parts of an OpenAPI 3 document that the page shows. */
interface OpenApiDocument {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, OpenApiOperation>>;
}
interface OpenApiOperation {
  summary?: string;
  description?: string;
  security?: unknown[];
  parameters?: { name: string; in: string; required?: boolean; schema?: unknown; description?: string }[];
  requestBody?: { content: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
}

const escapeHtml = (text: string): string =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');

/** Text of a summary or description (CommonMark in OpenAPI), with its `code` spans kept as code. */
const prose = (text: string): string => escapeHtml(text).replaceAll(/`([^`]+)`/g, '<code>$1</code>');

const schemaBlock = (schema: unknown): string => `<pre>${escapeHtml(JSON.stringify(schema, null, 2))}</pre>`;

function operationHtml(path: string, method: string, op: OpenApiOperation): string {
  const parts = [`<section><h2><code>${escapeHtml(method.toUpperCase())} ${escapeHtml(path)}</code></h2>`];
  if (op.summary) parts.push(`<p><strong>${prose(op.summary)}</strong></p>`);
  if (op.description) parts.push(`<p>${prose(op.description)}</p>`);
  parts.push(op.security?.length ? '<p>Needs <code>Authorization: Bearer TOKEN</code>.</p>' : '');
  for (const p of op.parameters ?? [])
    parts.push(
      `<p>Parameter <code>${escapeHtml(p.name)}</code> (${escapeHtml(p.in)}${p.required ? ', required' : ''})</p>`,
      p.schema === undefined ? '' : `<details><summary>schema</summary>${schemaBlock(p.schema)}</details>`,
    );
  for (const [type, media] of Object.entries(op.requestBody?.content ?? {}))
    parts.push(
      `<h3>Body: <code>${escapeHtml(type)}</code></h3>`,
      `<details open><summary>schema</summary>${schemaBlock(media.schema)}</details>`,
    );
  for (const [status, response] of Object.entries(op.responses ?? {})) {
    parts.push(`<h3>${escapeHtml(status)}${response.description ? `: ${escapeHtml(response.description)}` : ''}</h3>`);
    for (const [type, media] of Object.entries(response.content ?? {}))
      parts.push(`<details><summary><code>${escapeHtml(type)}</code></summary>${schemaBlock(media.schema)}</details>`);
  }
  parts.push('</section>');
  return parts.join('\n');
}

/**
 * The page at /docs: every operation of `document` with its parameters, bodies and answers.
 *
 * @example
 * reply.type('text/html; charset=utf-8').send(docsPage(server.swagger()));
 */
export function docsPage(document: unknown): string {
  const { info, paths } = document as OpenApiDocument;
  const operations = Object.entries(paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => operationHtml(path, method, op)),
  );
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(info.title)}: API</title>
<style>
  body { font: 15px system-ui, sans-serif; margin: 1.5rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
  section { border-top: 1px solid #ccc; margin-top: 1.5rem; }
  h2 { font-size: 1.15rem; } h3 { font-size: 1rem; margin-bottom: .25rem; }
  pre { background: #f6f6f6; padding: .5rem; overflow-x: auto; font-size: .85rem; }
</style>
</head>
<body>
<h1>${escapeHtml(info.title)} <small>API ${escapeHtml(info.version)}</small></h1>
${info.description ? `<p>${prose(info.description)}</p>` : ''}
<p>The OpenAPI document: <a href="/docs/json">/docs/json</a>.</p>
${operations.join('\n')}
</body>
</html>
`;
}
