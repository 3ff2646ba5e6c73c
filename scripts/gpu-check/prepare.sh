#!/usr/bin/env bash
# Fills .gpu/ (git-ignored) with what scripts/gpu-check/run.sh needs on a lent GPU machine, which
# has PyTorch with CUDA, g++ and python3 but no Node.js, no node_modules, no data and no network:
#   node.xz         this machine's Node binary
#   inc/            the Node-API and node-addon-api headers
#   dist.tar.xz     the compiled JavaScript (npm run build, here: there is no tsc there)
#   modules.tar.xz  the production node_modules less @lancedb/lancedb (its 161 MB binary does not
#                   fit the 64 MiB that travels; only the vector index needs it), other platforms'
#                   binaries, type declarations and source maps
#   icons.tar.xz    every third image of the icon set's training split, for `bench align` (the
#                   whole split packs to 27 MB, too much beside the rest)
# and prints the size that travels (the files git does not ignore, plus .gpu), which must stay
# under 64 MiB. Run from anywhere in the checkout; node.xz, modules and icons are kept when current.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
G=.gpu
mkdir -p $G/inc
git check-ignore -q $G || echo '/.gpu/' >> .git/info/exclude

node_bin=$(readlink -f "$(command -v node)")
[ $G/node.xz -nt "$node_bin" ] || nice xz -T2 -6 -c "$node_bin" > $G/node.xz
nodeinc=$(dirname "$node_bin")/../include/node
cp "$nodeinc"/{js_native_api.h,js_native_api_types.h,node_api.h,node_api_types.h} $G/inc/
cp node_modules/node-addon-api/napi*.h $G/inc/

npm run build >/dev/null
tar -c dist | nice xz -T2 -6 > $G/dist.tar.xz

if [ ! $G/modules.tar.xz -nt package-lock.json ]; then
  node dist/scripts/gpu-check/modules.js @lancedb/lancedb > $G/modules.txt
  tar -c --exclude='*.d.ts' --exclude='*.d.mts' --exclude='*.d.cts' --exclude='*.map' --exclude='*.md' \
    --exclude='*darwin*.node' --exclude='*win32*.node' --exclude='*android*.node' --exclude='*arm*.node' \
    --exclude='*musl*.node' -T $G/modules.txt | nice xz -T2 -6 > $G/modules.tar.xz
fi

icons=data/icons
if [ ! -f $G/icons.tar.xz ]; then
  [ -f $icons/captions_train.json ] || { echo "no $icons/captions_train.json: run npm run data:icons first" >&2; exit 1; }
  subset=$(mktemp -d)
  # Every third image with all its captions: 8,291 of 24,872, more than bench align's 18 batches of 256.
  node -e '
    const fs = require("node:fs");
    const coco = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const images = coco.images.filter((_, i) => i % 3 === 0);
    const ids = new Set(images.map((im) => im.id));
    const annotations = coco.annotations.filter((a) => ids.has(a.image_id));
    const info = { ...coco.info, subset: "every third image of the training split (scripts/gpu-check/prepare.sh)" };
    fs.writeFileSync(process.argv[2] + "/captions_train.json", JSON.stringify({ ...coco, info, images, annotations }));
    fs.writeFileSync(process.argv[2] + "/files.txt", images.map((im) => "images/" + im.file_name).join("\n") + "\n");
  ' $icons/captions_train.json "$subset"
  tar -c -C "$subset" captions_train.json -C "$PWD/$icons" -T "$subset/files.txt" | nice xz -T2 -6 > $G/icons.tar.xz
  rm -rf "$subset"
fi

ls -l $G/*.xz
travels=$( (git ls-files -co --exclude-standard -z; find $G -type f -print0) | du -cb --files0-from=- | tail -1 | cut -f1)
echo "travels: $((travels / 1048576)) MiB of 64 MiB (tracked and untracked files, plus $G)"
[ "$travels" -lt $((64 * 1048576)) ] || { echo "over 64 MiB: the device tool would refuse the call" >&2; exit 1; }
