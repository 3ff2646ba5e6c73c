// byol-align's public API.
export * from './engine/index.js';
