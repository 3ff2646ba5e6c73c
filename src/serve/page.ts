// The search page served at `/`: a text box, an image upload (file picker or drag and drop), a
// modality switch and a grid of results; a result searches for more like it. The markup is here;
// the script is src/serve/page/app.ts, bundled by esbuild at build time (`npm run build`) into
// dist/src/serve/page/app.js, which the package ships: nothing is built or fetched at run time.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>byol-align search</title>
<style>
  body { font: 15px system-ui, sans-serif; margin: 1.5rem; color: #222; }
  form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
  #query { flex: 1 1 20rem; padding: .5rem; font-size: 1rem; }
  #drop { border: 2px dashed #999; padding: .5rem 1rem; border-radius: 6px; }
  #drop.over { border-color: #06c; background: #eef5ff; }
  #status { margin: 1rem 0; color: #555; }
  #status.error { color: #b00; }
  #grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(9rem, 1fr)); gap: .75rem; }
  .card { display: flex; flex-direction: column; align-items: center; gap: .25rem; padding: .5rem; border: 1px solid #ccc;
          border-radius: 6px; background: #fff; cursor: pointer; font: inherit; text-align: center; }
  .card:hover, .card:focus { border-color: #06c; outline: 2px solid #06c; }
  .card img { width: 96px; height: 96px; object-fit: contain; image-rendering: pixelated; }
  .score { color: #777; font-size: .8rem; }
  .visually-hidden { position: absolute; left: -9999px; }
</style>
</head>
<body>
<h1>byol-align search</h1>
<form id="form" role="search">
  <label class="visually-hidden" for="query">Text query</label>
  <input id="query" type="search" placeholder="Describe what to find, then press Enter" autofocus>
  <label for="modality">Show</label>
  <select id="modality">
    <option value="">everything</option>
    <option value="image">images</option>
    <option value="text">captions</option>
  </select>
  <label id="drop" for="file">Drop an image here or choose one <input id="file" type="file" accept="image/png,image/jpeg,image/webp,image/gif"></label>
  <label for="token">Token</label>
  <input id="token" type="password" size="12" autocomplete="off" placeholder="if the server needs one">
  <button type="submit">Search</button>
</form>
<p id="status" role="status" aria-live="polite"></p>
<div id="grid" aria-label="results"></div>
<script src="/app.js"></script>
</body>
</html>
`;

/** Where the build writes the page's bundled script, beside this module's compiled file. */
const PAGE_SCRIPT_FILE = fileURLToPath(new URL('./page/app.js', import.meta.url));

let pageScriptText: string | undefined;

/**
 * The page's script as the build bundled it (read once).
 *
 * @example
 * reply.type('text/javascript; charset=utf-8').send(pageScript());
 */
export function pageScript(): string {
  if (pageScriptText === undefined) {
    try {
      pageScriptText = readFileSync(PAGE_SCRIPT_FILE, 'utf8');
    } catch {
      throw new Error(`the search page's script ${PAGE_SCRIPT_FILE} is missing: build it with npm run build`);
    }
  }
  return pageScriptText;
}
