/** The configuration module's public surface. */
export { parseConfigDocuments, parseConfigYAML, decodeYAML, diffPools, configEquals, type ConfigResult, type ParseOptions } from './parse.js';
export { ConfigState } from './state.js';
export { ConfigError, formatProblem, type ConfigProblem } from './problems.js';
export type { Config, Pool, L2Advertisement, ServiceAllocation } from './model.js';
export { EMPTY_CONFIG } from './model.js';
