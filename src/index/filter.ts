// Metadata filters as data, not SQL: a client (a CLI user, an HTTP request) names columns and
// values; this module checks each column against the table's own and each value against the
// column's type, and writes the SQL itself, quoting every literal. Nothing a client sends reaches
// LanceDB's parser as SQL text.

/** A value a filter compares a column with. */
export type FilterValue = string | number | boolean;

/** One column's condition: a value (equality) or comparisons, all of which must hold. */
export type FilterCondition =
  | FilterValue
  | {
      eq?: FilterValue;
      ne?: FilterValue;
      gt?: number | string;
      gte?: number | string;
      lt?: number | string;
      lte?: number | string;
      in?: FilterValue[];
    };

/**
 * Conditions by column, all of which must hold.
 *
 * @example
 * const filter: Filter = { modality: 'image', width: { gte: 100 }, split: { in: ['val', 'test'] } };
 */
export type Filter = Record<string, FilterCondition>;

/** The type of a filterable column. */
export type ColumnType = 'string' | 'number' | 'boolean';

/** A query the index cannot answer as asked: an unknown column, a value of the wrong type, a bad vector. */
export class IndexQueryError extends Error {
  override readonly name = 'IndexQueryError';
}

const OPERATORS = { eq: '=', ne: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;
const MAX_IN_VALUES = 1000;

function literal(column: string, type: ColumnType, value: unknown, where: string): string {
  if (type === 'string') {
    if (typeof value !== 'string')
      throw new IndexQueryError(`filter ${where}: column '${column}' holds strings, got ${JSON.stringify(value)}`);
    return `'${value.replaceAll("'", "''")}'`;
  }
  if (type === 'number') {
    if (typeof value !== 'number' || !Number.isFinite(value))
      throw new IndexQueryError(`filter ${where}: column '${column}' holds numbers, got ${JSON.stringify(value)}`);
    return String(value);
  }
  if (typeof value !== 'boolean')
    throw new IndexQueryError(`filter ${where}: column '${column}' holds true/false, got ${JSON.stringify(value)}`);
  return value ? 'TRUE' : 'FALSE';
}

/**
 * The SQL predicate of `filter` over a table with `columns`, or undefined for an empty filter.
 * Unknown columns, operators and mistyped values are an IndexQueryError naming them.
 *
 * @example
 * filterSql({ modality: 'image' }, new Map([['modality', 'string']])); // "`modality` = 'image'"
 */
export function filterSql(filter: unknown, columns: ReadonlyMap<string, ColumnType>): string | undefined {
  if (filter === undefined || filter === null) return undefined;
  if (typeof filter !== 'object' || Array.isArray(filter))
    throw new IndexQueryError(`filter: expected an object of column conditions, e.g. {"modality": "image"}, got ${JSON.stringify(filter)}`);
  const clauses: string[] = [];
  for (const [column, condition] of Object.entries(filter as Record<string, unknown>)) {
    const type = columns.get(column);
    if (type === undefined)
      throw new IndexQueryError(`filter: unknown column '${column}'; the table's filterable columns are ${[...columns.keys()].join(', ')}`);
    const name = `\`${column}\``; // column names come from the table's schema, never from the client
    if (typeof condition !== 'object' || condition === null) {
      clauses.push(`${name} = ${literal(column, type, condition, column)}`);
      continue;
    }
    if (Array.isArray(condition)) throw new IndexQueryError(`filter ${column}: a list of values goes under "in", e.g. {"in": [...]}`);
    const entries = Object.entries(condition as Record<string, unknown>);
    if (entries.length === 0) throw new IndexQueryError(`filter ${column}: no condition`);
    for (const [op, value] of entries) {
      if (op === 'in') {
        if (!Array.isArray(value) || value.length === 0 || value.length > MAX_IN_VALUES)
          throw new IndexQueryError(`filter ${column}.in: expected a list of 1 to ${MAX_IN_VALUES} values`);
        clauses.push(`${name} IN (${value.map((v, i) => literal(column, type, v, `${column}.in[${i}]`)).join(', ')})`);
      } else if (Object.hasOwn(OPERATORS, op)) {
        const ordered = op !== 'eq' && op !== 'ne';
        if (ordered && type === 'boolean') throw new IndexQueryError(`filter ${column}.${op}: true/false columns take eq, ne or in`);
        clauses.push(`${name} ${OPERATORS[op as keyof typeof OPERATORS]} ${literal(column, type, value, `${column}.${op}`)}`);
      } else throw new IndexQueryError(`filter ${column}: unknown operator '${op}'; use eq, ne, gt, gte, lt, lte or in`);
    }
  }
  return clauses.length === 0 ? undefined : clauses.map((c) => `(${c})`).join(' AND ');
}
