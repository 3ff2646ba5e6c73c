// The search page served at `/`: a text box, an image upload (file picker or drag and drop), a
// modality switch and a grid of results; a result searches for more like it. Plain browser
// JavaScript with no dependencies and nothing fetched from elsewhere, so the server needs no build
// step for it; every value from the index is set as text (textContent), never as markup.

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

export const PAGE_SCRIPT = `'use strict';
const $ = (selector) => document.querySelector(selector);
const grid = $('#grid');
$('#token').value = sessionStorage.getItem('byol-align-token') || '';
$('#token').addEventListener('change', () => sessionStorage.setItem('byol-align-token', $('#token').value));

function say(text, isError) {
  $('#status').textContent = text;
  $('#status').className = isError ? 'error' : '';
}

async function api(path, body) {
  const headers = body ? { 'content-type': 'application/json' } : {};
  const token = $('#token').value;
  if (token) headers.authorization = 'Bearer ' + token;
  const response = await fetch(path, body ? { method: 'POST', headers, body: JSON.stringify(body) } : { headers });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({ error: response.statusText }));
    throw new Error(problem.error || response.statusText);
  }
  return response;
}

function base64Of(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(',')[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

async function showMedia(img, url) {
  try {
    img.src = URL.createObjectURL(await (await api(url)).blob());
  } catch (err) {
    img.alt = 'image unavailable: ' + err.message;
  }
}

function render(hits, label) {
  grid.replaceChildren();
  say(hits.length + ' results for ' + label);
  for (const hit of hits) {
    const card = document.createElement('button');
    card.type = 'button';
    card.className = 'card';
    card.dataset.id = hit.id;
    const caption = hit.text !== null ? hit.text : hit.id;
    card.setAttribute('aria-label', 'rank ' + hit.rank + ': ' + caption + ', score ' + hit.score.toFixed(3) + '; search for more like it');
    if (hit.mediaUrl) {
      const img = document.createElement('img');
      img.alt = hit.id;
      showMedia(img, hit.mediaUrl);
      card.append(img);
    }
    const text = document.createElement('span');
    text.className = 'caption';
    text.textContent = caption;
    const score = document.createElement('span');
    score.className = 'score';
    score.textContent = hit.score.toFixed(3);
    card.append(text, score);
    card.addEventListener('click', () => moreLike(hit));
    grid.append(card);
  }
}

let latest = 0; // an answer to a search that a newer one replaced is dropped
async function search(query, label) {
  const mine = ++latest;
  say('Searching for ' + label + '…');
  const modality = $('#modality').value;
  try {
    const response = await api('/v1/search', Object.assign({ query, k: 24 }, modality ? { modality } : {}));
    const { results } = await response.json();
    if (mine === latest) render(results[0].hits, label);
  } catch (err) {
    if (mine !== latest) return;
    grid.replaceChildren();
    say(err.message, true);
  }
}

async function searchImage(blob, name) {
  search({ image: await base64Of(blob) }, 'the image ' + name);
}

async function moreLike(hit) {
  if (hit.mediaUrl) {
    try {
      searchImage(await (await api(hit.mediaUrl)).blob(), hit.id);
    } catch (err) {
      say(err.message, true);
    }
  } else search({ text: hit.text }, '"' + hit.text + '"');
}

$('#form').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('#query').value.trim();
  if (text) search({ text }, '"' + text + '"');
});
$('#modality').addEventListener('change', () => $('#form').requestSubmit());
$('#file').addEventListener('change', () => {
  const file = $('#file').files[0];
  if (file) searchImage(file, file.name);
});
const drop = $('#drop');
drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  const file = event.dataTransfer.files[0];
  if (file) searchImage(file, file.name);
});
`;
