// `npm run bench`: every benchmark, each as a ratio against a baseline run beside it.
import { benchColdStart } from './cold-start.ts';

const cold = await benchColdStart();
console.log(
  `cold start, Node hello (median of ${cold.runs}): direct spawn ${cold.directMs.toFixed(1)} ms, ` +
    `through cellhost ${cold.cellhostMs.toFixed(1)} ms, ratio ${cold.ratio.toFixed(2)}× ` +
    `(isolation: ${Object.entries(cold.isolation).map(([k, v]) => `${k}=${v ? 'on' : 'off'}`).join(', ')})`,
);
process.exit(0);
