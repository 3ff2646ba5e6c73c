// The search page's script, served as /app.js: a text query goes as JSON, an image (picked,
// dropped, or a result's own for "more like this") as a multipart upload; answers fill a grid of
// cards that each search for more like them. Browser code: type-checked by the tsconfig.json beside
// it and bundled by esbuild at build time (`npm run build`), not part of the Node build. Every
// value from the index is set as text (textContent), never as markup.

/** One hit of `POST /v1/search`, as the page uses it. */
interface Hit {
  id: string;
  rank: number;
  score: number;
  text: string | null;
  mediaUrl: string | null;
}

/** What the page searches with: a text, or an image file and the name it is shown by. */
type PageQuery = { text: string } | { image: Blob; name: string };

/** Results per search. */
const PAGE_SIZE = 24;
const TOKEN_KEY = 'byol-align-token';

function element<T extends HTMLElement>(selector: string): T {
  const found = document.querySelector<T>(selector);
  if (found === null) throw new Error(`the page has no ${selector}`);
  return found;
}

const form = element<HTMLFormElement>('#form');
const queryBox = element<HTMLInputElement>('#query');
const modalitySelect = element<HTMLSelectElement>('#modality');
const fileInput = element<HTMLInputElement>('#file');
const drop = element<HTMLLabelElement>('#drop');
const tokenBox = element<HTMLInputElement>('#token');
const status = element<HTMLParagraphElement>('#status');
const grid = element<HTMLDivElement>('#grid');

tokenBox.value = sessionStorage.getItem(TOKEN_KEY) ?? '';
tokenBox.addEventListener('change', () => sessionStorage.setItem(TOKEN_KEY, tokenBox.value));

function say(text: string, isError = false): void {
  status.textContent = text;
  status.className = isError ? 'error' : '';
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** GET `path`, or POST `body` to it (a form as multipart, anything else as JSON), with the token if one is set. */
async function api(path: string, body?: FormData | object): Promise<Response> {
  const headers: Record<string, string> = {};
  const token = tokenBox.value;
  if (token) headers.authorization = `Bearer ${token}`;
  let init: RequestInit = { headers };
  // The browser writes a form's content type itself, with its multipart boundary.
  if (body instanceof FormData) init = { method: 'POST', headers, body };
  else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init = { method: 'POST', headers, body: JSON.stringify(body) };
  }
  const response = await fetch(path, init);
  if (!response.ok) {
    const problem = (await response.json().catch(() => ({ error: response.statusText }))) as { error?: string };
    throw new Error(problem.error || response.statusText);
  }
  return response;
}

async function showMedia(img: HTMLImageElement, url: string): Promise<void> {
  try {
    img.src = URL.createObjectURL(await (await api(url)).blob());
  } catch (err) {
    img.alt = `image unavailable: ${message(err)}`;
  }
}

function render(hits: Hit[], label: string): void {
  grid.replaceChildren();
  say(`${hits.length} results for ${label}`);
  for (const hit of hits) {
    const card = document.createElement('button');
    card.type = 'button';
    card.className = 'card';
    card.dataset.id = hit.id;
    const caption = hit.text !== null ? hit.text : hit.id;
    card.setAttribute('aria-label', `rank ${hit.rank}: ${caption}, score ${hit.score.toFixed(3)}; search for more like it`);
    if (hit.mediaUrl) {
      const img = document.createElement('img');
      img.alt = hit.id;
      void showMedia(img, hit.mediaUrl);
      card.append(img);
    }
    const text = document.createElement('span');
    text.className = 'caption';
    text.textContent = caption;
    const score = document.createElement('span');
    score.className = 'score';
    score.textContent = hit.score.toFixed(3);
    card.append(text, score);
    card.addEventListener('click', () => void moreLike(hit));
    grid.append(card);
  }
}

/** The body of a search for `query`: JSON for a text, a multipart form for an image. */
function searchBody(query: PageQuery, modality: string): FormData | object {
  if ('text' in query) return { query: { text: query.text }, k: PAGE_SIZE, ...(modality ? { modality } : {}) };
  const upload = new FormData();
  upload.append('image', query.image, query.name);
  upload.append('k', String(PAGE_SIZE));
  if (modality) upload.append('modality', modality);
  return upload;
}

let latest = 0; // an answer to a search that a newer one replaced is dropped
async function search(query: PageQuery, label: string): Promise<void> {
  const mine = ++latest;
  say(`Searching for ${label}…`);
  try {
    const response = await api('/v1/search', searchBody(query, modalitySelect.value));
    const { results } = (await response.json()) as { results: { hits: Hit[] }[] };
    if (mine === latest) render(results[0]!.hits, label);
  } catch (err) {
    if (mine !== latest) return;
    grid.replaceChildren();
    say(message(err), true);
  }
}

function searchImage(image: Blob, name: string): void {
  void search({ image, name }, `the image ${name}`);
}

async function moreLike(hit: Hit): Promise<void> {
  if (hit.mediaUrl) {
    try {
      searchImage(await (await api(hit.mediaUrl)).blob(), hit.id);
    } catch (err) {
      say(message(err), true);
    }
  } else if (hit.text !== null) void search({ text: hit.text }, `"${hit.text}"`);
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = queryBox.value.trim();
  if (text) void search({ text }, `"${text}"`);
});
modalitySelect.addEventListener('change', () => form.requestSubmit());
fileInput.addEventListener('change', () => {
  const file = fileInput.files?.[0];
  if (file) searchImage(file, file.name);
});
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (file) searchImage(file, file.name);
});

export {}; // a module: its names stay out of the page's global scope
