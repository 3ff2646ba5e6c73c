// One rank of tests/data_parallel.test.ts: `node data_parallel_worker.js RANK WORLD PORT STEPS OUT
// [RESUME]` trains the fixture's run data-parallel for STEPS steps (rank 0 first loading the state
// in RESUME, which the others then get by broadcast), saves its state to OUT.rankN and prints each
// step's loss terms as one JSON line. BYOL_ALIGN_TEST_DP_VARIANT picks the fixture's variant;
// BYOL_ALIGN_TEST_DP_GLOO=1 communicates through Gloo alone although both ranks run here.
import { distributed } from '../src/index.js';
import { DataParallel } from '../src/distributed/data_parallel.js';
import { loadState, makeTrainer, saveState, type FixtureVariant } from './data_parallel_fixture.js';

const [rankText, worldText, portText, stepsText, out, resume] = process.argv.slice(2);
const rank = Number(rankText);
const worldSize = Number(worldText);
const timeoutMs = 60000;

const store = distributed.Store.connect({ host: '127.0.0.1', port: Number(portText), isServer: rank === 0, worldSize, timeoutMs });
const group = distributed.ProcessGroup.create(store, { rank, worldSize, hostname: '127.0.0.1', timeoutMs });
const gradientGroup = distributed.ProcessGroup.create(store, { rank, worldSize, hostname: '127.0.0.1', timeoutMs, name: 'gradients' });

// A different initialisation on every rank: the broadcast from rank 0 must make them equal.
const trainer = await makeTrainer({ rank, worldSize }, 5 + rank, (process.env.BYOL_ALIGN_TEST_DP_VARIANT ?? 'full') as FixtureVariant);
if (resume && rank === 0) trainer.loadStateDict(loadState(resume));
const sameHostMemory = process.env.BYOL_ALIGN_TEST_DP_GLOO !== '1';
const parallel = new DataParallel(trainer, { group, gradientGroup, bucketBytes: 4096, sameHostMemory });
const records = await parallel.run({ stopAfter: Number(stepsText) });
saveState(trainer, `${out}.rank${rank}`);
process.stdout.write(
  `${JSON.stringify({ rank, step: trainer.step, terms: records.map((r) => r.terms), stats: parallel.gradientStats(), sharesMemory: group.sharesMemory })}\n`,
);
group.destroy();
gradientGroup.destroy();
