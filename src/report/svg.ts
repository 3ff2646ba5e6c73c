// SVG helpers for the report: escaping text into markup, and PNG bytes of an SVG through sharp
// (librsvg, with the system's fonts), so the figures need nothing beyond the package's own dependencies.
import sharp from 'sharp';

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/**
 * PNG bytes of an SVG on a white background, at twice its size (sharp's default density is 72 dpi).
 *
 * @example
 * writeFileSync('loss.png', await svgToPng(svg));
 */
export async function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density: 144 }).flatten({ background: '#ffffff' }).png().toBuffer();
}
