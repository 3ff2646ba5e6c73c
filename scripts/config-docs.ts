// Writes docs/config.md from the config schema: node dist/scripts/config-docs.js
import { writeFileSync } from 'node:fs';
import { configReference } from '../src/config/docs.js';

writeFileSync('docs/config.md', configReference());
console.log('wrote docs/config.md');
