// Retrieval examples: captions with their top-5 images and images with their top-5 captions among
// the report's sample. The correct item is framed in green; when it is not in the top 5 it is
// shown after them with its rank. A layout of thumbnails and text rather than a plot, so plain SVG;
// each example is a <g class="example"> and its correct item a <g class="correct" data-rank="N">.
import sharp from 'sharp';
import { escapeXml } from './svg.js';
import { ranking, type EmbeddedSample } from './sample.js';

const GREEN = '#2ca02c';
const THUMB = 72;
const WIDTH = 960;
const ROW = 110;
const TOP = 5;

async function thumbnail(file: string): Promise<string> {
  const png = await sharp(file)
    .resize(THUMB, THUMB, { fit: 'contain', background: '#ffffff' })
    .flatten({ background: '#ffffff' })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** Text cut into lines of at most `width` characters at spaces, at most `lines` of them. */
function wrap(text: string, width: number, lines: number): string[] {
  const out: string[] = [''];
  for (const word of text.split(/\s+/)) {
    const line = out[out.length - 1]!;
    if (line === '' || line.length + 1 + word.length <= width) out[out.length - 1] = line === '' ? word : `${line} ${word}`;
    else out.push(word);
  }
  if (out.length > lines) out.splice(lines, out.length - lines, '…');
  return out;
}

const clip = (text: string, n: number): string => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

/** The SVG of `queries` examples each way (queries spread over the sample). */
export async function retrievalExamples(sample: EmbeddedSample, queries = 3): Promise<string> {
  const { items } = sample;
  const n = items.length;
  const picks = Array.from({ length: queries }, (_, i) => Math.floor((i * n) / queries));
  const thumbs = new Map<number, string>();
  const thumb = async (i: number): Promise<string> => {
    if (!thumbs.has(i)) thumbs.set(i, await thumbnail(items[i]!.image!));
    return thumbs.get(i)!;
  };
  const parts: string[] = [];
  let y = 30;
  const heading = (text: string): void => {
    parts.push(`<text x="8" y="${y}" font-size="15" font-weight="bold">${escapeXml(text)}</text>`);
    y += 16;
  };

  heading(`Text → image: a caption and its top ${TOP} of ${n} images (green: its own image)`);
  for (const q of picks) {
    const order = ranking(sample.textQuery[q]!, sample.imageGallery);
    const rank = order.indexOf(q) + 1;
    const row = [`<g class="example" data-direction="t2i">`];
    wrap(items[q]!.captions[0]!, 40, 4).forEach((line, k) =>
      row.push(`<text x="8" y="${y + 22 + 15 * k}" font-size="12">${escapeXml(line)}</text>`),
    );
    const shown = rank <= TOP ? order.slice(0, TOP) : [...order.slice(0, TOP), q];
    for (const [slot, i] of shown.entries()) {
      const x = 330 + slot * 100 + (slot === TOP ? 30 : 0);
      const r = slot < TOP ? slot + 1 : rank;
      const own = i === q;
      const cell = [
        `<image x="${x}" y="${y + 4}" width="${THUMB}" height="${THUMB}" href="${await thumb(i)}"/>`,
        `<text x="${x + THUMB / 2}" y="${y + THUMB + 20}" font-size="11" text-anchor="middle" fill="${own ? GREEN : '#555'}">${own ? `correct, rank ${r}` : `${r}`}</text>`,
      ];
      if (own)
        cell.push(
          `<rect x="${x - 3}" y="${y + 1}" width="${THUMB + 6}" height="${THUMB + 6}" fill="none" stroke="${GREEN}" stroke-width="3"/>`,
        );
      row.push(own ? `<g class="correct" data-rank="${r}">${cell.join('')}</g>` : cell.join(''));
    }
    if (rank > TOP)
      row.push(
        `<line x1="${330 + TOP * 100 + 2}" x2="${330 + TOP * 100 + 2}" y1="${y + 4}" y2="${y + THUMB + 4}" stroke="#bbb" stroke-dasharray="3 3"/>`,
      );
    row.push('</g>');
    parts.push(row.join('\n'));
    y += ROW;
  }

  y += 20;
  heading(`Image → text: an image and its top ${TOP} of ${n} captions (green: its own caption)`);
  for (const q of picks) {
    const order = ranking(sample.imageQuery[q]!, sample.textGallery);
    const rank = order.indexOf(q) + 1;
    const row = [
      `<g class="example" data-direction="i2t">`,
      `<image x="8" y="${y + 4}" width="${THUMB}" height="${THUMB}" href="${await thumb(q)}"/>`,
    ];
    const shown = rank <= TOP ? order.slice(0, TOP) : [...order.slice(0, TOP), q];
    for (const [slot, i] of shown.entries()) {
      const r = slot < TOP ? slot + 1 : rank;
      const own = i === q;
      const line = `<text x="100" y="${y + 16 + slot * 16 + (slot === TOP ? 4 : 0)}" font-size="12" fill="${own ? GREEN : '#222'}"${own ? ' font-weight="bold"' : ''}>${r}. ${escapeXml(clip(items[i]!.captions[0]!, 100))}${own ? '  (correct)' : ''}</text>`;
      row.push(own ? `<g class="correct" data-rank="${r}">${line}</g>` : line);
    }
    row.push('</g>');
    parts.push(row.join('\n'));
    y += ROW;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}" font-family="sans-serif"><rect width="${WIDTH}" height="${y}" fill="white"/>\n${parts.join('\n')}\n</svg>`;
}
