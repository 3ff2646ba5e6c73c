// Search indexes: building them from a data set and a checkpoint, and searching them.
export { buildIndex, deleteItems, type BuildIndexOptions, type BuildIndexResult, type IndexProgress } from './build.js';
export {
  SearchIndex,
  searchIndex,
  CheckpointMismatchError,
  MAX_K,
  type SearchQuery,
  type SearchOptions,
  type SearchRequest,
  type SearchHit,
  type IndexedItem,
  type RowHit,
  type OpenIndexOptions,
} from './search.js';
export { filterSql, IndexQueryError, type Filter, type FilterCondition, type FilterValue, type ColumnType } from './filter.js';
export { DISTANCE, DEFAULT_TABLE, type IndexProvenance } from './table.js';
export type { StoredRow } from './memory.js';
export { DEFAULT_ANN_MIN_ROWS, ANN_INDEX, type AnnSync } from './ann.js';
