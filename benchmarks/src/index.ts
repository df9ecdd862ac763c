export { benchCommand, benchUsage } from './bench.js';
