// LanceDB logs warnings (a table about to be created, deprecations) on stderr, where they would
// interleave with the command's own output; errors only, unless the user asks with LANCEDB_LOG.
// Imported before @lancedb/lancedb, whose native logger reads the variable when it loads.
process.env.LANCEDB_LOG ??= 'error';
