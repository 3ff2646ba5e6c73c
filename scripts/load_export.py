#!/usr/bin/env python3
"""Checks a `byol-align export` folder in PyTorch: python3 scripts/load_export.py EXPORT_DIR

The module that does it ships in the package: python/byol_align_export.py (load_export,
encode_image, encode_text; see docs/cli.md). Exit status 0 when PyTorch reproduces the
projections in EXPORT_DIR/check.safetensors, 1 when it does not.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from byol_align_export import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
