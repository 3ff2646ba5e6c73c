// Where the aligner's tensors live: the device helpers of src/nn/device.ts, which the
// single-modality BYOL trainer uses too, under the names the aligner's callers import.
export { cpuCopy, modelDevice, moveModule, onDevice } from '../nn/device.js';
