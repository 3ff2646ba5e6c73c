// A PNG written byte by byte for the data tests, so they need no image library to make inputs.
import { crc32, deflateSync } from 'node:zlib';

/**
 * An 8-bit RGB PNG of `width`×`height` in its header whose data is one scanline of red pixels:
 * a complete 1×1 red image by default; taller headers describe an image the data does not hold
 * (enough for tests that only read the header, such as size limits).
 */
export function pngBytes(width = 1, height = 1): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type RGB
  const scanline = Buffer.alloc(1 + 3 * width); // filter 0, then R G B per pixel
  for (let x = 0; x < width; x++) scanline[1 + 3 * x] = 255;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(scanline)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
