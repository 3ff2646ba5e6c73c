// The body of one image-decode worker thread (see image_pool.ts): it takes chunks of file paths,
// decodes each with decodeImage, writes the pixels of the whole chunk into one buffer (as CHW
// planes or as HWC), and transfers that buffer back, so nothing is copied on the way out.
// Chunks are handled one after another in arrival order; within a chunk a few images are in
// flight at once, so libuv's threads stay busy while this thread copies pixels.
import { parentPort } from 'node:worker_threads';
import { decodeImage, hwcToChw, ImageDecodeError } from './image_decode.js';
import type { WorkerReply, WorkerRequest } from './image_pool.js';

const IMAGES_IN_FLIGHT = 4;

async function decodeChunk(request: WorkerRequest): Promise<WorkerReply> {
  const { id, paths, options, layout } = request;
  const { size, channels } = options;
  const perImage = size * size * channels;
  const pixels = new Uint8Array(paths.length * perImage);
  const failures: Extract<WorkerReply, { pixels: ArrayBuffer }>['failures'] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < paths.length) {
      const index = next++;
      try {
        const image = await decodeImage(paths[index]!, options);
        if (layout === 'chw') hwcToChw(image, pixels, index * perImage);
        else pixels.set(image.data, index * perImage);
      } catch (err) {
        if (!(err instanceof ImageDecodeError)) throw err;
        failures.push({ index, file: err.file, kind: err.kind, problem: err.problem });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(IMAGES_IN_FLIGHT, paths.length) }, lane));
  return { id, pixels: pixels.buffer, failures };
}

const port = parentPort;
if (port === null) throw new Error('image_worker.js runs as a worker thread of ImageDecodePool, not as a program');
let queue: Promise<void> = Promise.resolve();
port.on('message', (request: WorkerRequest) => {
  queue = queue.then(async () => {
    let reply: WorkerReply;
    try {
      reply = await decodeChunk(request);
    } catch (err) {
      reply = { id: request.id, fatal: (err as Error)?.stack ?? String(err) };
    }
    port.postMessage(reply, 'pixels' in reply ? [reply.pixels] : []);
  });
});
